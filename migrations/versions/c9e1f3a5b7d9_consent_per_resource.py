"""consent per resource, and the resources a grant was given (issue 22, point 9)

Consents: the scopes a user granted for each resource server (RFC 8707) are kept apart
from the scopes granted for tokens that name no resource. Existing consents were given
without a specific resource: they keep covering requests that name none, and a request
that names a resource asks the user again.

Tokens: the resources a grant was given at /authorize, carried through refreshes, so a
refresh may narrow the audience to some of them but never widen it. Existing refreshable
tokens keep their own audience as their grant's.

Revision ID: c9e1f3a5b7d9
Revises: a8d0f2b4c6e8
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c9e1f3a5b7d9'
down_revision = 'a8d0f2b4c6e8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consents') as batch_op:
        batch_op.add_column(sa.Column('resource_scopes', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table('access_tokens') as batch_op:
        batch_op.add_column(sa.Column('granted_resources', sa.Text(), nullable=True))
    op.execute("UPDATE access_tokens SET granted_resources = audience "
               "WHERE refresh_token_hash IS NOT NULL AND audience IS NOT NULL")


def downgrade():
    # Consents given for a resource only are dropped: the user is asked again.
    with op.batch_alter_table('access_tokens') as batch_op:
        batch_op.drop_column('granted_resources')
    with op.batch_alter_table('consents') as batch_op:
        batch_op.drop_column('resource_scopes')
