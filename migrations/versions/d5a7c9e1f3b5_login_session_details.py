"""login sessions record their address, browser and last use (issue 16)

One row per `session` token, deleted with it; sessions started before this revision have
none and show their details as unknown.

Revision ID: d5a7c9e1f3b5
Revises: c4e6f8a0b2d4
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd5a7c9e1f3b5'
down_revision = 'c4e6f8a0b2d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_sessions',
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=512), nullable=False),
        sa.Column('browser', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['token_id'], ['access_tokens.id'], name=op.f('fk_login_sessions_token_id_access_tokens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_id', name=op.f('pk_login_sessions')),
    )


def downgrade():
    op.drop_table('login_sessions')
