"""staged signing keys and resource audiences (issue 15)

Signing keys: `signs_from` (when a key starts signing; a staged rotation publishes the
next key before that) replaces `retired_at` (a key now retires when the next one starts
signing), and `signed_until` keeps a key published until a long-lived JWT it signed has
expired. Existing keys sign from their creation, and `signed_until` is filled from the
JWT access tokens each one signed, so no token loses its key.

Audiences (RFC 8707): the resources an application may ask tokens for, the resources a
code was asked for, and the audience each token was issued for.

Revision ID: f7c9e1a3b5d7
Revises: e6b8d0f2a4c6
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f7c9e1a3b5d7'
down_revision = 'e6b8d0f2a4c6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signs_from', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('signed_until', sa.DateTime(), nullable=True))
    op.execute("UPDATE signing_keys SET signs_from = created_at")
    # A key signed the JWT access tokens made between its creation and its retirement.
    op.execute("""
        UPDATE signing_keys SET signed_until = (
            SELECT MAX(t.expires_at) FROM access_tokens t
            WHERE t.hint LIKE 'jwt!_%' ESCAPE '!' AND t.created_at >= signing_keys.created_at
              AND (signing_keys.retired_at IS NULL OR t.created_at <= signing_keys.retired_at))
    """)
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.alter_column('signs_from', existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_column('retired_at')

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resources', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource', sa.Text(), nullable=True))
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_column('audience')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('resource')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('resources')

    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(), nullable=True))
    # A key retires when the next one starts signing; a key still waiting to sign is dropped
    # (it never signed, and the old rule would let it sign at once).
    op.execute("""
        DELETE FROM signing_keys WHERE signs_from > (
            SELECT MAX(k.signs_from) FROM signing_keys k WHERE k.signs_from <= CURRENT_TIMESTAMP)
    """)
    op.execute("""
        UPDATE signing_keys SET retired_at = (
            SELECT MIN(k.signs_from) FROM signing_keys k WHERE k.signs_from > signing_keys.signs_from)
    """)
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_column('signed_until')
        batch_op.drop_column('signs_from')
