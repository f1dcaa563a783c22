"""login sessions record their address, browser and last use (placeholder: issue 16)

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
    pass


def downgrade():
    pass
