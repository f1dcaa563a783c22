"""rate-limit counters in the database (the default RATELIMIT_STORAGE_URI, database://)

Revision ID: b3d5e7f9a1c2
Revises: 7c2f4e9a1b30
Create Date: 2026-11-29 11:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b3d5e7f9a1c2'
down_revision = '7c2f4e9a1b30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'rate_limit_counters',
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key_hash', name=op.f('pk_rate_limit_counters')),
    )
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_counters_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_counters_expires_at'))
    op.drop_table('rate_limit_counters')
