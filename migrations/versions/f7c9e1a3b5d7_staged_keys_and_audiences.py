"""staged signing keys and resource audiences (placeholder: issue 15)

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
    pass


def downgrade():
    pass
