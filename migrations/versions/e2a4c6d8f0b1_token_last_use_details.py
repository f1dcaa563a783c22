"""where and by what client an access token was last used (console, issue 25)

Revision ID: e2a4c6d8f0b1
Revises: c9e1f3a5b7d9
Create Date: 2026-12-06 12:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = 'e2a4c6d8f0b1'
down_revision = 'c9e1f3a5b7d9'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
