"""relying parties: post-logout redirect URIs (placeholder: issue 15)

Revision ID: e6b8d0f2a4c6
Revises: d5a7c9e1f3b5
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e6b8d0f2a4c6'
down_revision = 'd5a7c9e1f3b5'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
