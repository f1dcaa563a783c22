"""a replaced token keeps its history (placeholder: issue 16)

Revision ID: b9e1a3c5d7f9
Revises: a8d0f2b4c6e8
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b9e1a3c5d7f9'
down_revision = 'a8d0f2b4c6e8'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
