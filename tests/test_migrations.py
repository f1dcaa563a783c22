"""The migrations are the schema: they must build exactly what the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from portal import create_app
from portal.extensions import db
from tests.conftest import NO_POSTGRES, TEST_DATABASE_URL, fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("tessera_migrations") as url:
        yield url


def schema_differences(app) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_match_the_models_and_downgrade_cleanly(empty_database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        upgrade()
        assert schema_differences(app) == []
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "tenants", "applications", "access_tokens", "token_permissions",
                "authorization_codes", "consents", "audit_events", "signing_keys"} <= tables
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert schema_differences(app) == []
        db.engine.dispose()


def test_nullable_token_columns_have_partial_indexes(empty_database_url, tmp_path):
    """compare_metadata does not look at an index's WHERE: check it here, after the upgrade."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        upgrade()
        indexes = {ix["name"]: ix for ix in inspect(db.engine).get_indexes("access_tokens")}
        dialect = db.engine.dialect.name
        for name, column in [("ix_access_tokens_user_created", "user_id"), ("ix_access_tokens_parent_id", "parent_id"),
                             ("ix_access_tokens_grant_id", "grant_id"),
                             ("ix_access_tokens_created_by_id", "created_by_id")]:
            where = indexes[name].get("dialect_options", {}).get(f"{dialect}_where")
            assert where is not None and " ".join(str(where).lower().replace("(", "").replace(")", "").split()) \
                == f"{column} is not null", (name, where)
        assert not indexes["ix_access_tokens_created"].get("dialect_options", {}).get(f"{dialect}_where")
        db.engine.dispose()
