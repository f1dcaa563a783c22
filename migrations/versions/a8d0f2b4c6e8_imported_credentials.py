"""imported credentials from GeoNode and Crafter (placeholder: issue 17)

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
    pass


def downgrade():
    pass
