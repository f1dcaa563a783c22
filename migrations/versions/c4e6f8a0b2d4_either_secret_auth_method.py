"""confidential clients accept HTTP Basic and the form body unless registered for one

The column now holds one method or both secret methods (space-separated), so it widens.
Clients registered before had `client_secret_post` as the only default (the CLI offered
no other), so those accept both from now on (RFC 6749 §2.3.1: Basic MUST be supported).

Revision ID: c4e6f8a0b2d4
Revises: b3d5e7f9a1c2
Create Date: 2026-11-29 11:55:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4e6f8a0b2d4'
down_revision = 'b3d5e7f9a1c2'
branch_labels = None
depends_on = None

EITHER = 'client_secret_basic client_secret_post'


def upgrade():
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('token_endpoint_auth_method', existing_type=sa.String(length=32),
                              type_=sa.String(length=64), existing_nullable=False)
    op.execute(sa.text("UPDATE applications SET token_endpoint_auth_method = :either "
                       "WHERE client_type = 'confidential' AND token_endpoint_auth_method = 'client_secret_post'")
               .bindparams(either=EITHER))


def downgrade():
    op.execute(sa.text("UPDATE applications SET token_endpoint_auth_method = 'client_secret_post' "
                       "WHERE token_endpoint_auth_method = :either").bindparams(either=EITHER))
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('token_endpoint_auth_method', existing_type=sa.String(length=64),
                              type_=sa.String(length=32), existing_nullable=False)
