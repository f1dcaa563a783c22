"""partial indexes on the token columns that are NULL on most rows

Each token insert wrote every index of access_tokens; user_id, parent_id, grant_id and
created_by_id are NULL on every client_credentials token, so their indexes now hold only
the rows where they are set (SQLite and PostgreSQL both use them for `= x` and `IN`).

Revision ID: 7c2f4e9a1b30
Revises: d1ee5f63cb85
Create Date: 2026-11-24 10:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7c2f4e9a1b30'
down_revision = 'd1ee5f63cb85'
branch_labels = None
depends_on = None

INDEXES = {
    # name: columns (the first is the one that may be NULL)
    'ix_access_tokens_user_created': ['user_id', 'created_at', 'id'],
    'ix_access_tokens_parent_id': ['parent_id'],
    'ix_access_tokens_grant_id': ['grant_id'],
    'ix_access_tokens_created_by_id': ['created_by_id'],
}


def upgrade():
    for name, columns in INDEXES.items():
        condition = sa.text(f'{columns[0]} IS NOT NULL')
        op.drop_index(name, table_name='access_tokens')
        op.create_index(name, 'access_tokens', columns, sqlite_where=condition, postgresql_where=condition)


def downgrade():
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='access_tokens')
        op.create_index(name, 'access_tokens', columns)
