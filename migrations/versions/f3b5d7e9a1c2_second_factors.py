"""second factors: passkeys, authenticator codes, recovery codes (issue 26)

Three new tables, empty after the upgrade: every user keeps signing in with a password
alone until they enrol (ADMIN_SECOND_FACTOR defaults to `optional`). Authorization codes
remember how the user signed in (`amr`, `acr`); codes issued before have neither.

Revision ID: f3b5d7e9a1c2
Revises: e2a4c6d8f0b1
Create Date: 2026-12-06 12:30:01

"""
from alembic import op
import sqlalchemy as sa


revision = 'f3b5d7e9a1c2'
down_revision = 'e2a4c6d8f0b1'
branch_labels = None
depends_on = None


def user_column():
    return sa.Column('user_id', sa.Integer(), nullable=False)


def upgrade():
    op.create_table(
        'totp_factors',
        sa.Column('id', sa.Integer(), nullable=False),
        user_column(),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('last_step', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_totp_factors_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_totp_factors')),
        sa.UniqueConstraint('user_id', name=op.f('uq_totp_factors_user_id')),
    )
    op.create_table(
        'passkeys',
        sa.Column('id', sa.Integer(), nullable=False),
        user_column(),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.Integer(), nullable=False),
        sa.Column('device_type', sa.String(length=16), nullable=False),
        sa.Column('transports', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_passkeys_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id')),
    )
    op.create_index(op.f('ix_passkeys_user_id'), 'passkeys', ['user_id'], unique=False)
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        user_column(),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_recovery_codes_code_hash')),
    )
    op.create_index(op.f('ix_recovery_codes_user_id'), 'recovery_codes', ['user_id'], unique=False)
    op.add_column('authorization_codes', sa.Column('amr', sa.String(length=100), nullable=True))
    op.add_column('authorization_codes', sa.Column('acr', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('authorization_codes') as batch_op:
        batch_op.drop_column('acr')
        batch_op.drop_column('amr')
    op.drop_index(op.f('ix_recovery_codes_user_id'), table_name='recovery_codes')
    op.drop_table('recovery_codes')
    op.drop_index(op.f('ix_passkeys_user_id'), table_name='passkeys')
    op.drop_table('passkeys')
    op.drop_table('totp_factors')
