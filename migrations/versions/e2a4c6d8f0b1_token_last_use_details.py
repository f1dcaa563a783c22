"""where and by what client an access token was last used (console, issue 25)

Revision ID: e2a4c6d8f0b1
Revises: c9e1f3a5b7d9
Create Date: 2026-12-06 12:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e2a4c6d8f0b1'
down_revision = 'c9e1f3a5b7d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_tokens') as batch_op:
        batch_op.add_column(sa.Column('last_used_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_used_user_agent', sa.String(length=512), nullable=True))


def downgrade():
    with op.batch_alter_table('access_tokens') as batch_op:
        batch_op.drop_column('last_used_user_agent')
        batch_op.drop_column('last_used_address')
