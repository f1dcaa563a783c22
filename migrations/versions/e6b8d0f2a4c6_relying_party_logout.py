"""relying parties: post-logout redirect URIs (issue 15, RP-Initiated Logout 1.0)

Each application lists the exact URIs /end_session may send a browser back to; existing
applications get none.

Revision ID: e6b8d0f2a4c6
Revises: d5a7c9e1f3b5
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e6b8d0f2a4c6'
down_revision = 'd5a7c9e1f3b5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('applications') as batch_op:
        batch_op.add_column(sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))


def downgrade():
    with op.batch_alter_table('applications') as batch_op:
        batch_op.drop_column('post_logout_redirect_uris')
