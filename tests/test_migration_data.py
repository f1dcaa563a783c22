"""Upgrades keep every row: for every revision, a database at that revision with rows in
every table (as that revision's schema has them) is upgraded to the latest revision, and
every row and every value is still there, except what a migration changes on purpose
(listed below, by the revision that does it). SQLite and PostgreSQL.

A migration that rebuilds a table on SQLite once deleted every access token (the rebuild's
DROP TABLE cascaded); the suites that build a fresh database never saw it."""

import datetime as dt

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, MetaData, String, Text, select, text

from portal import create_app
from portal.db import schema
from portal.extensions import db

BOTH = "client_secret_basic client_secret_post"


def chain() -> list[str]:
    """Every revision, oldest first."""
    revisions = schema.revisions()
    following = {downs[0]: revision for revision, downs in revisions.items() if downs}
    revision = next(revision for revision, downs in revisions.items() if not downs)
    ordered = [revision]
    while revision in following:
        revision = following[revision]
        ordered.append(revision)
    assert len(ordered) == len(revisions), "the migrations have branches"
    return ordered


REVISIONS = chain()

# Columns a migration removes on purpose, with the revision that removes them.
DROPPED_COLUMNS = {("signing_keys", "retired_at"): "f7c9e1a3b5d7"}


def changed_on_purpose(revision: str, table: str, row: dict) -> dict:
    """What the migration `revision` does to a row's values on purpose."""
    if revision == "c4e6f8a0b2d4" and table == "applications":
        # A confidential client registered with the old default now accepts both methods.
        if row["client_type"] == "confidential" and row["token_endpoint_auth_method"] == "client_secret_post":
            return {**row, "token_endpoint_auth_method": BOTH}
    return row


# Values that mean something to the code or to a migration; other columns get generic ones.
SAMPLES = {
    ("applications", "client_type"): ["confidential", "public", "confidential"],
    ("applications", "token_endpoint_auth_method"): ["client_secret_post", "none", "client_secret_basic"],
    ("applications", "redirect_uris"): [["https://app.example/cb", "http://127.0.0.1:5000/ü"], [], ["https://b/"]],
    ("applications", "grant_types"): [["authorization_code", "refresh_token"], ["client_credentials"], []],
    ("access_tokens", "source"): ["admin", "authorization_code", "client_credentials"],
    ("access_tokens", "hint"): ["tsr_AbCd", "jwt_eyJh", "tsr_Zz9"],
    ("token_permissions", "tenant"): ["site1", "*", "site-2"],
    ("token_permissions", "actions"): ["READ_TENANT MANAGE_PROFILES", "*", "MANAGE_TICKETS"],
    ("signing_keys", "private_jwk"): ['{"kty": "RSA", "kid": "k1"}', '{"kty": "RSA", "kid": "k2"}', '{"kid": "k3"}'],
    ("audit_events", "details"): [{"master": True, "tenants": ["site1", "é"]}, {}, {"n": 3}],
}
ROWS = 3
START = dt.datetime(2026, 3, 4, 5, 6, 7, 123456)


def sample(table, column, index: int, parents: dict):
    """A value for `column` of row `index`: the last row leaves every nullable column NULL."""
    if column.foreign_keys:
        (foreign_key,) = column.foreign_keys
        parent = parents[foreign_key.column.table.name]
        if foreign_key.column.table is table:  # a row refers to the row before it
            return parent[index - 1][foreign_key.column.name] if index else None
        if column.nullable and index == ROWS - 1:
            return None
        return parent[index % len(parent)][foreign_key.column.name]
    if column.nullable and index == ROWS - 1 and not column.primary_key:
        return None
    if (table.name, column.name) in SAMPLES:
        return SAMPLES[table.name, column.name][index]
    kind = column.type
    if isinstance(kind, Boolean):
        return index % 2 == 0
    if isinstance(kind, Integer):
        return index + 1 if column.primary_key else 1000 + index
    if isinstance(kind, Float):
        return 1780000000.25 + index
    if isinstance(kind, DateTime):
        return START + dt.timedelta(days=index, seconds=index)
    if isinstance(kind, JSON):
        return {"row": index, "text": "é"}
    if isinstance(kind, (String, Text)):
        value = f"{column.name}-{index}-é€ {table.name}"
        return value[: kind.length] if getattr(kind, "length", None) else value
    raise AssertionError(f"no sample for {table.name}.{column.name} ({kind!r}): add one")


def fill_every_table(connection) -> dict[str, list[dict]]:
    """ROWS rows in every table of the schema as it is now; returns them by table."""
    metadata = MetaData()
    metadata.reflect(connection)
    rows = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        rows[table.name] = []
        for index in range(ROWS):
            row = {column.name: sample(table, column, index, rows) for column in table.columns}
            rows[table.name].append(row)
            connection.execute(table.insert().values(row))
    return rows


def primary_keys(connection) -> dict[str, list[str]]:
    metadata = MetaData()
    metadata.reflect(connection)
    return {table.name: [column.name for column in table.primary_key.columns] for table in metadata.sorted_tables}


def read_every_table(connection) -> dict[str, dict[tuple, dict]]:
    """Every row of every table, by primary key."""
    metadata = MetaData()
    metadata.reflect(connection)
    found = {}
    for table in metadata.sorted_tables:
        key = [column.name for column in table.primary_key.columns]
        found[table.name] = {tuple(row[k] for k in key): dict(row)
                             for row in connection.execute(select(table)).mappings()}
    return found


@pytest.fixture
def empty_database_url(request, tmp_path):
    from tests.conftest import NO_POSTGRES, TEST_DATABASE_URL, fresh_postgres_database

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("tessera_upgrade") as url:
        yield url


def migrating_app(url: str, tmp_path):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path / "i")})


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_upgrading_from_each_revision_keeps_every_row(revision, empty_database_url, tmp_path):
    app = migrating_app(empty_database_url, tmp_path)
    with app.app_context():
        upgrade(revision=revision)
        with db.engine.begin() as connection:
            before = fill_every_table(connection)
            keys = primary_keys(connection)
        upgrade()
        with db.engine.connect() as connection:
            assert schema.database_revision(connection) == REVISIONS[-1]
            after = read_every_table(connection)
        db.engine.dispose()

    later = REVISIONS[REVISIONS.index(revision) + 1:]
    for table, rows in before.items():
        assert table in after, f"table {table} is gone"
        assert len(after[table]) == len(rows), f"{table}: {len(rows)} rows before, {len(after[table])} after"
        for row in rows:
            for step in later:
                row = changed_on_purpose(step, table, row)
            kept = after[table].get(tuple(row[name] for name in keys[table]))
            assert kept is not None, f"{table} row {row} is gone"
            for column, value in row.items():
                dropped_by = DROPPED_COLUMNS.get((table, column))
                if dropped_by in later:
                    assert column not in kept
                    continue
                assert column in kept, f"{table}.{column} is gone"
                assert kept[column] == value, f"{table}.{column}: {value!r} became {kept[column]!r}"


def test_a_broken_reference_stops_the_sqlite_upgrade_and_changes_nothing(tmp_path, capfd):
    """The upgrade runs with foreign keys off (a rebuild must not cascade), so it checks them
    before committing: a row left pointing at nothing undoes the whole upgrade."""
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    app = migrating_app(url, tmp_path)
    start = REVISIONS[REVISIONS.index("c4e6f8a0b2d4") - 1]  # before a rebuild of applications
    with app.app_context():
        upgrade(revision=start)
        with db.engine.begin() as connection:
            fill_every_table(connection)
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("UPDATE access_tokens SET application_id = 999 WHERE id = 1")
            connection.commit()
            before = read_every_table(connection)
        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits
            upgrade()
        refused = "1 row that refers to missing rows (access_tokens -> applications); nothing was changed"
        assert refused in capfd.readouterr().err
        with db.engine.connect() as connection:
            assert schema.database_revision(connection) == start
            assert read_every_table(connection) == before
            width = connection.execute(text(
                "SELECT sql FROM sqlite_master WHERE name = 'applications'")).scalar()
            assert "token_endpoint_auth_method VARCHAR(32)" in width  # the rebuild was undone too
        db.engine.dispose()


def test_schema_reads_the_revisions_as_alembic_does():
    """portal/db/schema.py reads the migrations without Alembic; it must agree with Alembic."""
    script = ScriptDirectory(schema.migrations_directory())
    assert schema.heads() == tuple(script.get_heads())
    assert set(schema.revisions()) == {revision.revision for revision in script.walk_revisions()}
    assert REVISIONS == [revision.revision for revision in reversed(list(script.walk_revisions()))]
    assert schema.steps_between(None, schema.head()) == len(REVISIONS)
    assert schema.steps_between(REVISIONS[0], schema.head()) == len(REVISIONS) - 1
