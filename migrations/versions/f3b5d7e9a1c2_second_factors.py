"""second factors: passkeys, authenticator codes, recovery codes (issue 26)

Revision ID: f3b5d7e9a1c2
Revises: e2a4c6d8f0b1
Create Date: 2026-12-06 12:30:01

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = 'f3b5d7e9a1c2'
down_revision = 'e2a4c6d8f0b1'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
