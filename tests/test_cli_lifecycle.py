"""The database's life on the command line: `portal --version`, `status`, `init`'s report
and its backup, `backup`, `restore`, `set-password` and `-e/--env-file`.

Most run through Flask's CLI runner; the ones about processes (a live SQLite writer, the
console script's one-line errors, --env-file, the wheel) run `portal` as a subprocess."""

import os
import re
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench import releases
import portal
from portal.db import backups
from portal.extensions import db
from portal.models import AccessToken, AuditEvent, User
from portal.db.schema import head, steps_between
from tests.conftest import (NO_POSTGRES, ROOT, TEST_DATABASE_URL, VENV_BIN, base_config, fresh_postgres_database,
                            server_env)
from tests.factories import make_token, make_user

OLD_REVISION = "d1ee5f63cb85"  # the first schema (what v0.1.0 made); it never changes
UNKNOWN_REVISION = "feedfacecafe"
PASSWORD = "hunter2-not-for-show"
postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason=NO_POSTGRES)


# --- helpers ----------------------------------------------------------------------------

def invoke(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=[str(arg) for arg in args], input=input)
    assert "Traceback" not in result.output, result.output
    return result


def run_portal(*args, env, cwd=None, input=None) -> subprocess.CompletedProcess:
    """The `portal` console script, as an operator runs it."""
    result = subprocess.run([str(VENV_BIN / "portal"), *map(str, args)], env=env, cwd=cwd, input=input,
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@contextmanager
def app_on(tmp_path, url):
    """The app on `url`, its context pushed; the engine disposed afterwards."""
    app = portal.create_app(base_config(tmp_path, url))
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def sqlite_rows(path, query):
    connection = sqlite3.connect(path)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def sqlite_revision(path):
    return sqlite_rows(path, "SELECT version_num FROM alembic_version")[0][0]


def tenant_names_in(path) -> set:
    return {name for (name,) in sqlite_rows(path, "SELECT name FROM tenants")}


def tenant_names() -> set:
    return set(db.session.scalars(text("SELECT name FROM tenants")))


def add_tenant(name):
    db.session.execute(text("INSERT INTO tenants (name, label, created_at) VALUES (:name, :name, :at)"),
                       {"name": name, "at": "2024-01-01 00:00:00"})
    db.session.commit()


def database_revision_now():
    return db.session.scalar(text("SELECT version_num FROM alembic_version"))


def owner_only(path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database: a SQLite file not made yet, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'instance' / 'tessera.db'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("tessera_cli") as url:
        yield url


@pytest.fixture
def postgres_url():
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("tessera_cli") as url:
        yield url


# --- version --------------------------------------------------------------------------

def test_version_names_the_release(tmp_path):
    env = server_env(tmp_path, "not a url at all", None)  # --version needs no app, so no settings
    result = run_portal("--version", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"portal {portal.__version__}" and lines[1].startswith("Flask ")
    assert portal.__version__ == "0.4.5"


def build_wheel(folder: Path, version: str | None = None) -> Path:
    """A wheel built from a copy of the project's shipped files, `__version__` changed if asked."""
    source = folder / "project"  # not "src": setuptools fails to build a project folder of that name
    ignore = shutil.ignore_patterns("__pycache__")
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "wsgi.py"):
        shutil.copy(ROOT / name, source / name)
    for name in ("portal", "migrations", "templates", "static"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    if version is not None:
        init = source / "portal" / "__init__.py"
        changed, count = re.subn(r'^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M)
        assert count == 1
        init.write_text(changed)
    return releases.build_wheel(source, folder / "dist")


def wheel_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return re.search(r"^Version: (\S+)$", archive.read(name).decode(), re.M).group(1)


def test_the_wheel_has_the_release_version_and_upgrades_an_older_install(tmp_path, checkout_wheel):
    wheel = checkout_wheel
    assert wheel_version(wheel) == portal.__version__
    assert f"-{portal.__version__}-" in wheel.name
    # v0.1.0 and v0.2.0 were both built as 0.1.0: to pip, a later release was the same one.
    older = build_wheel(tmp_path / "old", version="0.1.0")
    assert wheel_version(older) == "0.1.0"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", str(venv / "bin" / "python"),
           "install", "--no-deps"]
    # Only the venv's own packages: not a checkout (nor its editable install's metadata) on PYTHONPATH.
    alone = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}

    def installed() -> tuple[str, str]:
        """(the installed distribution's version, the __version__ in its installed files)."""
        code = ("import importlib.metadata as m, sysconfig; "
                "print(m.version('tessera-portal'), sysconfig.get_path('purelib'))")
        version, site = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                                       check=True, cwd=tmp_path, env=alone).stdout.split()
        source = (Path(site) / "portal" / "__init__.py").read_text()
        return version, re.search(r'^__version__ = "(.*)"$', source, re.M).group(1)

    subprocess.run([*pip, str(older)], check=True, capture_output=True, timeout=300, cwd=tmp_path, env=alone)
    assert installed() == ("0.1.0", "0.1.0")
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=300, cwd=tmp_path, env=alone)
    assert installed() == (portal.__version__, portal.__version__)


# --- status -----------------------------------------------------------------------------

def test_status_says_where_the_schema_stands(empty_url, tmp_path):
    latest = head()
    with app_on(tmp_path, empty_url) as app:
        result = invoke(app, "status")
        assert result.exit_code == 1
        assert f"Version:          {portal.__version__}" in result.output
        assert "Schema revision:  none" in result.output and f"Latest revision:  {latest}" in result.output
        assert "Schema:           not initialised; run portal init" in result.output

        upgrade(revision=OLD_REVISION)
        result = invoke(app, "status")
        assert result.exit_code == 1 and f"Schema revision:  {OLD_REVISION}" in result.output
        behind = plural(steps_between(OLD_REVISION, latest), "migration")
        assert f"Schema:           behind: {behind} to apply; run portal init" in result.output

        assert invoke(app, "init").exit_code == 0
        result = invoke(app, "status")
        assert result.exit_code == 0, result.output
        assert f"Schema revision:  {latest}" in result.output
        assert "Schema:           at the latest schema" in result.output
        assert f"Database:         {make_url(empty_url).render_as_string(hide_password=True)}" in result.output

        db.session.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": UNKNOWN_REVISION})
        db.session.commit()
        result = invoke(app, "status")
        assert result.exit_code == 1
        assert (f"Schema:           ahead: revision {UNKNOWN_REVISION} is unknown to this version "
                "(newer code migrated it?)") in result.output
        # init does not touch a database a newer version migrated
        result = invoke(app, "init")
        assert result.exit_code == 1 and "which this version does not know" in result.output
        assert "nothing was changed" in result.output
        assert database_revision_now() == UNKNOWN_REVISION


def test_status_help_names_the_exit_codes(tmp_path):
    with app_on(tmp_path, f"sqlite:///{tmp_path / 'x.db'}") as app:
        assert "0 when the database is at the latest schema, 1 otherwise" in invoke(app, "status", "--help").output


def test_status_on_sqlite_does_not_make_the_file(tmp_path):
    path = tmp_path / "instance" / "not-yet.db"
    with app_on(tmp_path, f"sqlite:///{path}") as app:
        assert invoke(app, "status").exit_code == 1
    assert not path.exists()


@postgres_only
def test_status_hides_the_database_password(postgres_url, tmp_path):
    # The test server trusts local connections, so a password in the URL is carried, not checked.
    url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    result = run_portal("status", env=server_env(tmp_path, url, None))
    assert result.returncode == 1  # not initialised
    assert PASSWORD not in result.stdout + result.stderr and ":***@" in result.stdout


@pytest.mark.parametrize("command", [["status"], ["init"], ["set-password", "alice"], ["backup", "x.dump"]])
def test_an_unreachable_database_is_one_line(tmp_path, command):
    url = f"postgresql+psycopg://tessera:{PASSWORD}@127.0.0.1:1/tessera"  # nothing listens on port 1
    result = run_portal(*command, env=server_env(tmp_path, url, None), cwd=tmp_path, input="a new password\n")
    assert result.returncode == 1
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("Error: cannot ") and "Connection refused" in result.stderr
    assert PASSWORD not in result.stderr


@pytest.mark.parametrize("url, message", [
    ("nonsense", "DATABASE_URL: Could not parse"),
    ("mysql://u:p@db.internal/tessera", "DATABASE_URL: its database driver is not installed"),
])
def test_a_database_url_it_cannot_use_is_one_line(tmp_path, url, message):
    result = run_portal("status", env=server_env(tmp_path, url, None))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr


# --- init ---------------------------------------------------------------------------------

def test_init_reports_a_new_schema_then_that_it_is_current(empty_url, tmp_path):
    latest = head()
    with app_on(tmp_path, empty_url) as app:
        result = invoke(app, "init")
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == f"Created the database schema ({latest}, {plural(steps_between(None, latest), 'step')})"
        assert lines[-1] == "Tessera is initialised."
        result = invoke(app, "init")
        assert result.output.splitlines()[0] == f"The database is already at the latest schema ({latest})."
    assert not list((tmp_path / "instance").glob("*.bak"))  # nothing to back up either time


def test_init_backs_up_then_migrates_an_older_database(empty_url, tmp_path):
    latest, sqlite = head(), empty_url.startswith("sqlite")
    steps = plural(steps_between(OLD_REVISION, latest), "step")
    with app_on(tmp_path, empty_url) as app:
        upgrade(revision=OLD_REVISION)
        add_tenant("site1")
        result = invoke(app, "init")
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        if sqlite:
            match = re.fullmatch(rf"Migrated the database from {OLD_REVISION} to {latest} \({steps}\); backup: (\S+)",
                                 lines[0])
            assert match, lines[0]
            copy = Path(match.group(1))
            assert copy.parent == tmp_path / "instance"
            assert re.fullmatch(rf"tessera\.db\.{OLD_REVISION}\.\d{{8}}T\d{{6}}Z\.bak", copy.name)
            assert backups.read_sqlite(copy) == OLD_REVISION  # integrity ok, the old revision
            assert tenant_names_in(copy) == {"site1"} and owner_only(copy)
        else:
            assert lines[0] == f"Migrated the database from {OLD_REVISION} to {latest} ({steps})"
            assert lines[1].startswith("Back up before each upgrade: portal backup FILE")
        assert database_revision_now() == latest and tenant_names() == {"site1"}
        assert "Tessera is initialised." in lines


def test_a_failed_migration_keeps_the_old_revision_and_names_the_backup(tmp_path):
    path = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{path}") as app:
        upgrade(revision=OLD_REVISION)
        db.engine.dispose()
        broken = sqlite3.connect(path)
        broken.execute("PRAGMA foreign_keys=OFF")
        broken.execute("INSERT INTO access_tokens (token_hash, hint, source, application_id, scope, master, "
                       "issued_at, created_at, expires_at) VALUES (:hash, 'tsr_x', 'admin', 999, '', 0, "
                       "'2024-01-01', '2024-01-01', '2030-01-01')", {"hash": "0" * 64})
        broken.commit()
        broken.close()

        result = invoke(app, "init")
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        match = re.fullmatch(rf"Error: migrating the database from {OLD_REVISION} to {head()} failed: (.+); "
                             rf"the database is still at {OLD_REVISION}; backup: (\S+)", lines[0])
        assert match, lines[0]
        assert "to missing rows (access_tokens -> applications); nothing was changed" in match.group(1)
        copy = Path(match.group(2))
        assert backups.read_sqlite(copy) == OLD_REVISION
    assert sqlite_revision(path) == OLD_REVISION
    assert sqlite_rows(path, "SELECT count(*) FROM access_tokens") == [(1,)]


def test_copies_beside_the_database_never_replace_each_other(tmp_path):
    path = tmp_path / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{path}"):
        upgrade(revision=OLD_REVISION)
        db.engine.dispose()
    first, second = backups.backup_beside(path, OLD_REVISION), backups.backup_beside(path, OLD_REVISION)
    assert first.path != second.path and first.path.exists() and second.path.exists()
    with pytest.raises(backups.BackupError, match=f"reads revision {OLD_REVISION}, not 0123456789ab"):
        backups.backup_beside(path, "0123456789ab")  # the copy is checked against what was expected
    assert sorted(tmp_path.glob("*.bak")) == sorted([first.path, second.path])
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    assert ".unversioned." in backups.backup_beside(empty, None).path.name


# --- backup -----------------------------------------------------------------------------

def test_sqlite_backup_is_a_checked_copy_that_keeps_existing_files(tmp_path):
    with app_on(tmp_path, f"sqlite:///{tmp_path / 'instance' / 'tessera.db'}") as app:
        assert invoke(app, "init").exit_code == 0
        add_tenant("site1")
        target = tmp_path / "copy.db"
        result = invoke(app, "backup", target)
        assert result.exit_code == 0, result.output
        size = target.stat().st_size
        assert result.output.strip() == f"Wrote {target}: {size:,} bytes, schema revision {head()}, integrity check ok."
        assert owner_only(target) and tenant_names_in(target) == {"site1"}
        assert target.read_bytes()[18:20] == b"\x01\x01"  # a rollback-journal file: nothing in a -wal beside it

        add_tenant("site2")
        result = invoke(app, "backup", target)
        assert result.exit_code == 1 and "already exists; choose another name, or pass --force" in result.output
        assert tenant_names_in(target) == {"site1"}
        assert invoke(app, "backup", target, "--force").exit_code == 0
        assert tenant_names_in(target) == {"site1", "site2"}

        result = invoke(app, "backup", tmp_path / "nowhere" / "copy.db")
        assert result.exit_code == 1 and "does not exist" in result.output
        result = invoke(app, "backup", tmp_path / "instance" / "tessera.db", "--force")
        assert result.exit_code == 1 and "is the database itself" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_sqlite_backup_holds_rows_a_live_writer_still_has_in_the_wal(tmp_path):
    """What a running server leaves: committed rows in tessera.db-wal, not yet in the file."""
    instance = tmp_path / "instance"
    env = server_env(instance, None, None)
    assert run_portal("init", env=env).returncode == 0
    database = instance / "tessera.db"
    writer = sqlite3.connect(database, isolation_level=None)  # autocommit, like each request's commit
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # a busy server may not have checkpointed yet
        writer.execute("INSERT INTO tenants (name, label, created_at) VALUES ('committed', 'c', '2024-01-01')")
        assert Path(f"{database}-wal").stat().st_size > 0

        shutil.copy(database, tmp_path / "plain-copy.db")  # what `cp tessera.db` would keep
        assert "committed" not in tenant_names_in(tmp_path / "plain-copy.db")

        result = run_portal("backup", tmp_path / "backup.db", env=env)
        assert result.returncode == 0, result.stderr
        assert "committed" in tenant_names_in(tmp_path / "backup.db")
    finally:
        writer.close()


def fake_pg_dump(folder: Path, script: str) -> str:
    """A `pg_dump` first on PATH that runs `script` (sh); returns the PATH to use."""
    folder.mkdir()
    program = folder / "pg_dump"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


@postgres_only
def test_pg_dump_gets_the_password_from_the_environment_only(postgres_url, tmp_path, monkeypatch):
    record = tmp_path / "record"
    monkeypatch.setenv("PATH", fake_pg_dump(tmp_path / "bin", f"""
printf '%s\\n' "$@" > {record}.args
printf '%s' "$PGPASSWORD" > {record}.password
for argument in "$@"; do case "$argument" in --file=*) printf 'PGDMP' > "${{argument#--file=}}";; esac; done
"""))
    url = make_url(postgres_url).set(password=PASSWORD)
    with app_on(tmp_path, url.render_as_string(hide_password=False)) as app:
        upgrade()
        target = tmp_path / "tessera.dump"
        result = invoke(app, "backup", target)
        assert result.exit_code == 0, result.output
    arguments = Path(f"{record}.args").read_text().splitlines()
    assert PASSWORD not in " ".join(arguments)
    assert "--format=custom" in arguments
    assert f"--dbname=postgresql://{url.username}@{url.host}:{url.port}/{url.database}" in arguments
    assert Path(f"{record}.password").read_text() == PASSWORD
    assert target.read_bytes() == b"PGDMP" and owner_only(target)
    assert f"Wrote {target} with pg_dump: 5 bytes, schema revision {head()}." in result.output
    assert PASSWORD not in result.output


@postgres_only
def test_a_failing_pg_dump_is_one_line_and_leaves_no_file(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_pg_dump(tmp_path / "bin", """
echo 'pg_dump: error: query failed: ERROR:  permission denied for table users' >&2
echo 'pg_dump: detail: Query was: LOCK TABLE public.users IN ACCESS SHARE MODE' >&2
exit 1
"""))
    with app_on(tmp_path, postgres_url) as app:
        result = invoke(app, "backup", tmp_path / "tessera.dump")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: pg_dump failed: pg_dump: error: query failed: ERROR: permission denied for table users "
        "pg_dump: detail: Query was: LOCK TABLE public.users IN ACCESS SHARE MODE"]
    assert sorted(p.name for p in tmp_path.iterdir() if "dump" in p.name) == []


@postgres_only
def test_without_pg_dump_the_command_to_run_is_printed(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump here
    url = make_url(postgres_url).set(password=PASSWORD)
    with app_on(tmp_path, url.render_as_string(hide_password=False)) as app:
        result = invoke(app, "backup", tmp_path / "tessera.dump")
    assert result.exit_code == 1
    assert "pg_dump is not on PATH" in result.output
    expected = f"pg_dump --format=custom --file={tmp_path / 'tessera.dump'} " \
               f"--dbname=postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    assert f"  {expected}" in result.output.splitlines()
    assert PASSWORD not in result.output and not (tmp_path / "tessera.dump").exists()


@postgres_only
def test_postgresql_backup_and_the_printed_pg_restore_round_trip(postgres_url, tmp_path):
    env = server_env(tmp_path / "instance", postgres_url, None)
    assert run_portal("init", env=env).returncode == 0
    assert run_portal("create-tenant", "before", env=env).returncode == 0
    dump = tmp_path / "tessera.dump"
    result = run_portal("backup", dump, env=env)
    assert result.returncode == 0, result.stderr
    assert f"Wrote {dump} with pg_dump: {dump.stat().st_size:,} bytes, schema revision {head()}." in result.stdout
    assert dump.read_bytes()[:5] == b"PGDMP" and owner_only(dump)
    printed = result.stdout.split("Restore it with: ", 1)[1].strip()

    assert run_portal("create-tenant", "after", env=env).returncode == 0
    result = run_portal("restore", dump, "--yes", env=env)
    assert result.returncode == 1 and f"  {printed}" in result.stderr.splitlines()
    restored = subprocess.run(shlex.split(printed), capture_output=True, text=True, timeout=120)
    assert restored.returncode == 0, restored.stderr

    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert set(connection.scalars(text("SELECT name FROM tenants"))) == {"before"}
            assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head()
    finally:
        engine.dispose()


def test_other_databases_are_refused_with_their_name():
    for command in ("backup", "restore"):
        with pytest.raises(backups.BackupError, match=f"portal {command} handles SQLite and PostgreSQL; use mysql"):
            backups.check_backend(make_url("mysql+pymysql://u:p@db.internal/tessera"), command)
    assert backups.check_backend(make_url("postgresql+psycopg://u@h/d"), "backup") == "postgresql"


# --- restore ----------------------------------------------------------------------------

def test_sqlite_restore_round_trip_while_another_process_holds_the_file(tmp_path):
    instance = tmp_path / "instance"
    database = instance / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}"):
        upgrade()
        add_tenant("before")
    env = server_env(instance, None, None)
    assert run_portal("backup", tmp_path / "copy.db", env=env).returncode == 0
    holder = sqlite3.connect(database, isolation_level=None)  # a server's open connection
    try:
        holder.execute("INSERT INTO tenants (name, label, created_at) VALUES ('after', 'a', '2024-01-01')")
        holder.execute("DELETE FROM tenants WHERE name = 'before'")
        result = run_portal("restore", tmp_path / "copy.db", env=env, input="y\n")
        assert result.returncode == 0, result.stderr
        assert "Stop the server" in result.stdout and "Start the server again" in result.stdout
        assert "run portal init" not in result.stdout
        match = re.search(r"the database it replaced is saved as (\S+)\.$", result.stdout, re.M)
        assert match, result.stdout
        assert {name for (name,) in holder.execute("SELECT name FROM tenants")} == {"before"}
    finally:
        holder.close()
    saved = Path(match.group(1))
    assert saved.parent == instance and saved.name.startswith(f"tessera.db.{head()}.")
    assert tenant_names_in(saved) == {"after"}
    assert tenant_names_in(database) == {"before"} and sqlite_revision(database) == head()


def make_copy(tmp_path, name, revision=None) -> Path:
    """A backup file of a database at `revision` (the latest if None)."""
    path = tmp_path / f"{name}-source.db"
    with app_on(tmp_path / name, f"sqlite:///{path}"):
        upgrade(revision=revision or "head")
        add_tenant(name)
        db.engine.dispose()
    return backups.backup_sqlite(path, tmp_path / f"{name}.db").path


def test_restoring_an_older_copy_says_to_run_init(tmp_path):
    old = make_copy(tmp_path, "old", OLD_REVISION)
    database = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}") as app:
        assert invoke(app, "init").exit_code == 0
        result = invoke(app, "restore", old, "--yes")
        assert result.exit_code == 0, result.output
        behind = plural(steps_between(OLD_REVISION, head()), "migration")
        assert f"behind this version by {behind}: run portal init to migrate it." in result.output
        assert sqlite_revision(database) == OLD_REVISION and tenant_names_in(database) == {"old"}
        assert invoke(app, "status").exit_code == 1
        result = invoke(app, "init")
        assert result.exit_code == 0 and result.output.startswith(f"Migrated the database from {OLD_REVISION}")
    assert sqlite_revision(database) == head() and tenant_names_in(database) == {"old"}


def newer_copy(tmp_path):
    path = make_copy(tmp_path, "newer")
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = ?", (UNKNOWN_REVISION,))
    connection.commit()
    connection.close()
    return path


def unversioned_copy(tmp_path):
    path = tmp_path / "unversioned.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE tenants (name TEXT)")
    connection.close()
    return path


def text_file(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 10)
    return path


def missing_file(tmp_path):
    return tmp_path / "missing.db"


@pytest.mark.parametrize("make, message", [
    (newer_copy, f"is at revision {UNKNOWN_REVISION}, which this version does not know"),
    (missing_file, "missing.db: No such file or directory"),
    (unversioned_copy, "holds no Tessera schema revision"),
    (text_file, "is not a SQLite database"),
])
def test_restore_refuses_what_it_cannot_use(tmp_path, make, message):
    source = make(tmp_path)
    database = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}") as app:
        assert invoke(app, "init").exit_code == 0
        add_tenant("kept")
        result = invoke(app, "restore", source, "--yes")
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert "kept" in tenant_names_in(database)
    assert not list(database.parent.glob("*.bak"))


def test_restore_asks_first(tmp_path):
    copy = make_copy(tmp_path, "other")
    database = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}") as app:
        assert invoke(app, "init").exit_code == 0
        result = invoke(app, "restore", copy, input="n\n")
        assert result.exit_code == 1 and "Aborted" in result.output
    assert "other" not in tenant_names_in(database) and not list(database.parent.glob("*.bak"))


@postgres_only
def test_restore_on_postgresql_prints_the_pg_restore_command(postgres_url, tmp_path):
    dump = tmp_path / "tessera.dump"
    dump.write_bytes(b"PGDMP")
    url = make_url(postgres_url).set(password=PASSWORD)
    with app_on(tmp_path, url.render_as_string(hide_password=False)) as app:
        result = invoke(app, "restore", dump, "--yes")
    assert result.exit_code == 1
    assert (f"  pg_restore --clean --if-exists --single-transaction "
            f"--dbname=postgresql://{url.username}@{url.host}:{url.port}/{url.database} {dump}") in result.output
    assert PASSWORD not in result.output


# --- set-password -------------------------------------------------------------------------

def session_tokens(user_id) -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken).where(
        AccessToken.user_id == user_id, AccessToken.source == "session"))


def test_set_password_sets_it_and_ends_every_session(app, admin_client, admin_user, auth):
    kept = make_token(user=admin_user).token.id  # an API token is not a session: it stays
    assert admin_client.get("/admin").status_code == 200
    assert session_tokens(admin_user.id) == 1
    version = admin_user.session_version

    result = invoke(app, "set-password", "  ADMIN ", input="a brand new password\n")  # login's rule finds it
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "New password set for admin; their login sessions ended."

    assert admin_client.get("/admin").status_code == 302  # that browser is logged out
    db.session.expire_all()
    user = db.session.get(User, admin_user.id)
    assert session_tokens(user.id) == 0 and user.session_version > version
    assert db.session.get(AccessToken, kept) is not None
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.password_set")).one()
    assert event.actor == "cli" and event.target_label == "admin" and event.details == {"sessions_ended": 1}
    assert auth.login(password="correct horse battery").status_code == 200  # the old one no longer works
    assert auth.login(password="a brand new password").status_code == 303


@pytest.mark.parametrize("args, stdin, message", [
    (["set-password", "ghost"], "a long enough password\n", "no user named 'ghost'"),
    (["set-password", "admin"], "short\n", "password: a password needs 8 to 1000 characters"),
    (["set-password", "admin"], "", "password: a password needs 8 to 1000 characters"),
])
def test_set_password_refuses_bad_input_and_changes_nothing(app, admin_client, admin_user, args, stdin, message):
    result = invoke(app, *args, input=stdin)
    assert result.exit_code == 1 and result.output.strip() == f"Error: {message}"
    assert admin_client.get("/admin").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "user.password_set")) == 0


def test_set_password_from_a_pipe(tmp_path):
    database = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}"):
        upgrade()
        make_user("root", "first password", is_admin=True)
    env = server_env(tmp_path / "instance", None, None)
    result = run_portal("set-password", "root", env=env, input="second password\n")
    assert result.returncode == 0, result.stderr
    with app_on(tmp_path, f"sqlite:///{database}"):
        root = db.session.scalar(select(User).where(User.username == "root"))
        assert root.check_password("second password") and not root.check_password("first password")
    result = run_portal("set-password", "nobody", env=env, input="second password\n")
    assert result.returncode == 1 and result.stderr == "Error: no user named 'nobody'\n"


def run_at_a_terminal(args, env, answers, timeout=120) -> tuple[int, str]:
    """Run `portal ARGS` with a pseudo-terminal as its controlling terminal, typing each
    answer after its prompt; returns (exit status, everything the terminal showed)."""
    import pty
    import select
    import time

    pid, terminal = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and /dev/tty are the pseudo-terminal
        os.execve(str(VENV_BIN / "portal"), ["portal", *args], env)
    shown, pending, deadline = b"", list(answers), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 1024)
            except OSError:  # the child closed the terminal: it has ended
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.rstrip().endswith(pending[0][0].encode()):
                os.write(terminal, pending.pop(0)[1].encode() + b"\n")
    finally:
        os.close(terminal)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_set_password_at_a_terminal_asks_twice_without_echo(tmp_path):
    database = tmp_path / "instance" / "tessera.db"
    with app_on(tmp_path, f"sqlite:///{database}"):
        upgrade()
        make_user("root", "first password", is_admin=True)
    env = server_env(tmp_path / "instance", None, None)
    code, shown = run_at_a_terminal(["set-password", "root"], env,
                                    [("Password:", "typed at a terminal"),
                                     ("Repeat for confirmation:", "typed at a terminal")])
    assert code == 0, shown
    assert "New password set for root" in shown and "typed at a terminal" not in shown
    with app_on(tmp_path, f"sqlite:///{database}"):
        assert db.session.scalar(select(User).where(User.username == "root")).check_password("typed at a terminal")


# --- --env-file ---------------------------------------------------------------------------

def test_env_file_is_read_and_a_stray_dotenv_is_not(tmp_path):
    chosen, stray = tmp_path / "chosen.db", tmp_path / "stray.db"
    settings = tmp_path / "tessera.env"
    settings.write_text(f"# production settings\nDATABASE_URL=sqlite:///{chosen}\n")
    # Someone's project: a .env in a folder above the operator's directory (Flask looks upward).
    workdir = tmp_path / "someone" / "project"
    workdir.mkdir(parents=True)
    (tmp_path / "someone" / ".env").write_text(f"DATABASE_URL=sqlite:///{stray}\n")
    env = server_env(tmp_path / "instance", None, None)

    result = run_portal("-e", settings, "status", env=env, cwd=workdir)
    assert f"Database:         sqlite:///{chosen}" in result.stdout, result.stdout + result.stderr
    result = run_portal("status", env=env, cwd=workdir)
    assert f"Database:         sqlite:///{tmp_path / 'instance' / 'tessera.db'}" in result.stdout

    result = run_portal("-e", tmp_path / "missing.env", "status", env=env, cwd=workdir)
    assert result.returncode == 2 and "does not exist" in result.stderr
