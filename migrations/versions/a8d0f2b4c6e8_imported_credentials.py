"""imported credentials from GeoNode and Crafter: a client secret may be kept as the
Django password hash django-oauth-toolkit stored (issue 17)

Revision ID: a8d0f2b4c6e8
Revises: f7c9e1a3b5d7
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a8d0f2b4c6e8'
down_revision = 'f7c9e1a3b5d7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('applications') as batch_op:
        batch_op.alter_column('client_secret_hash', existing_type=sa.String(length=64),
                              type_=sa.String(length=256), existing_nullable=True)


def downgrade():
    # A kept Django hash does not fit the narrow column: such clients need a new secret.
    op.execute("UPDATE applications SET client_secret_hash = NULL WHERE length(client_secret_hash) > 64")
    with op.batch_alter_table('applications') as batch_op:
        batch_op.alter_column('client_secret_hash', existing_type=sa.String(length=256),
                              type_=sa.String(length=64), existing_nullable=True)
