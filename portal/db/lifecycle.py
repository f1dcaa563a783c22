"""The database's life across releases: `portal status`, `portal backup`, `portal restore`,
and the migration step of `portal init` (which backs a SQLite file up before it migrates)."""

import logging
from contextlib import contextmanager
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from portal import __version__
from portal.db import backups
from portal.extensions import db
from portal.db.schema import database_revision, head, revisions, steps_between
from portal.domain.words import plural

NOT_INITIALISED = "not initialised; run portal init"


def first_line(error: BaseException) -> str:
    """An error as one line: a database error by its driver's message, without the SQL."""
    cause = getattr(error, "orig", None) if isinstance(error, DBAPIError) else None
    lines = str(cause or error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def unreachable(error: BaseException) -> click.ClickException:
    return click.ClickException(f"cannot read the database {backups.shown(db.engine.url)}: {first_line(error)}")


def current_revision() -> str | None:
    """The database's schema revision; None when never migrated (or a SQLite file not made yet,
    which this does not create)."""
    path = backups.sqlite_path(db.engine.url)
    if path is not None and not path.exists():
        return None
    try:
        with db.engine.connect() as connection:
            return database_revision(connection)
    except DBAPIError as error:
        raise unreachable(error) from None


def schema_state(revision: str | None, latest: str) -> tuple[bool, str]:
    """(at the latest schema?, what to tell the operator)."""
    if revision == latest:
        return True, "at the latest schema"
    if revision is None:
        return False, NOT_INITIALISED
    if revision not in revisions():
        return False, f"ahead: revision {revision} is unknown to this version (newer code migrated it?)"
    return False, f"behind: {plural(steps_between(revision, latest), 'migration')} to apply; run portal init"


@click.command("status")
@with_appcontext
def status_command():
    """Show the version, the database, its schema revision and whether it is at the latest schema.

    Exit status: 0 when the database is at the latest schema, 1 otherwise (behind, ahead,
    not initialised, or not reachable)."""
    revision, latest = current_revision(), head()
    current, state = schema_state(revision, latest)
    click.echo(f"Version:          {__version__}")
    click.echo(f"Database:         {backups.shown(db.engine.url)}")
    click.echo(f"Schema revision:  {revision or 'none'}")
    click.echo(f"Latest revision:  {latest}")
    click.echo(f"Schema:           {state}")
    click.get_current_context().exit(0 if current else 1)


@contextmanager
def alembic_quiet():
    """Alembic logs each step at INFO (its logging is set up again by migrations/env.py on
    every run); `portal init` reports the migration in one line instead. Warnings still show."""
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def migrate_database() -> list[str]:
    """Bring the schema to the latest revision, backing a SQLite file up first; the lines
    that say what was done. A failure is a ClickException naming the backup."""
    from alembic import command
    from flask import current_app

    url, latest = db.engine.url, head()
    revision = current_revision()
    if revision == latest:
        return [f"The database is already at the latest schema ({latest})."]
    if revision is not None and revision not in revisions():
        raise click.ClickException(f"the database is at revision {revision}, which this version does not know "
                                   "(newer code migrated it?); nothing was changed")
    steps = plural(steps_between(revision, latest), "step")
    copy = None
    path = backups.sqlite_path(url)
    if path is not None and revision is not None:
        try:
            copy = backups.backup_beside(path, revision)
        except backups.BackupError as error:
            raise click.ClickException(f"{error}; nothing was migrated") from None
    try:
        with alembic_quiet():
            # Alembic itself, not flask_migrate.upgrade, which turns a failure into a log line and exit 1.
            command.upgrade(current_app.extensions["migrate"].migrate.get_config(), "head")
    except Exception as error:  # whatever failed, the operator needs the state and the copy
        db.session.rollback()
        now = current_revision()
        state = f"still at {revision}" if now == revision else f"at {now or 'no revision'}"
        saved = f"; backup: {copy.path}" if copy else ""
        raise click.ClickException(
            f"migrating the database from {revision or 'empty'} to {latest} failed: {first_line(error)}; "
            f"the database is {state}{saved}") from None
    if revision is None:
        return [f"Created the database schema ({latest}, {steps})"]
    if copy is not None:
        return [f"Migrated the database from {revision} to {latest} ({steps}); backup: {copy.path}"]
    return [f"Migrated the database from {revision} to {latest} ({steps})",
            "Back up before each upgrade: portal backup FILE (runs pg_dump; docs/backups.md)."]


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@with_appcontext
def backup_command(file, force):
    """Write a consistent copy of the database to FILE.

    SQLite: SQLite's online backup API (safe while the server runs), checked by opening
    the copy. PostgreSQL: pg_dump --format=custom (restore with pg_restore); without pg_dump
    on PATH, prints the command to run elsewhere and exits 1."""
    url = db.engine.url
    try:
        backend = backups.check_backend(url, "backup")
        if backend == "sqlite":
            copy = backups.backup_sqlite(backups.sqlite_path(url), file, replace=force)
            click.echo(f"Wrote {copy.path}: {copy.size:,} bytes, schema revision {copy.revision or 'none'}, "
                       "integrity check ok.")
            return
        revision = current_revision()
        if not backups.pg_dump_available():
            click.echo("pg_dump is not on PATH: install PostgreSQL's client programs (the server's major version "
                       "or newer), or run this where they are (the password from PGPASSWORD or ~/.pgpass):", err=True)
            click.echo("  " + backups.command_line(backups.pg_dump_arguments(url, file)), err=True)
            click.get_current_context().exit(1)
        size = backups.dump_postgresql(url, file, replace=force)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Wrote {file} with pg_dump: {size:,} bytes, schema revision {revision or 'none'}.")
    click.echo("Restore it with: " + backups.command_line(backups.pg_restore_arguments(url, file)))


def save_before_restore(database: Path, revision: str | None) -> backups.Copy:
    try:
        return backups.backup_beside(database, revision)
    except backups.BackupError as error:
        raise backups.BackupError(f"could not first save the current database ({error}); with the server stopped, "
                                  f"move {database} aside and run portal restore again") from None


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(file, yes):
    """Replace the SQLite database with the copy in FILE (made by portal backup).

    Stop the server first and start it again afterwards. The current database is first
    copied beside itself. PostgreSQL: prints the pg_restore command and exits 1."""
    url = db.engine.url
    try:
        backend = backups.check_backend(url, "restore")
        if backend == "postgresql":
            click.echo("Restore a PostgreSQL backup with pg_restore, with the servers stopped (the password from "
                       "PGPASSWORD or ~/.pgpass):", err=True)
            click.echo("  " + backups.command_line(backups.pg_restore_arguments(url, file)), err=True)
            click.get_current_context().exit(1)
        database = backups.sqlite_path(url)
        restoring, latest = backups.read_sqlite(file), head()
        if restoring is None:
            raise backups.BackupError(f"{file} holds no Tessera schema revision (no alembic_version row)")
        if restoring not in revisions():
            raise backups.BackupError(f"{file} is at revision {restoring}, which this version does not know "
                                      "(a backup made by a newer version?); restore it with that version")
        if database.exists() and database.resolve() == file.resolve():
            raise backups.BackupError(f"{file} is the database itself")
        current = current_revision()
        db.session.remove()
        db.engine.dispose()  # this process holds no connection while the file is rewritten
        if not yes:
            click.echo("Stop the server (every gunicorn worker) before restoring, and start it again afterwards.")
            click.confirm(f"Replace the database {database} (revision {current or 'none'}) with {file} "
                          f"(revision {restoring})?", abort=True)
        copy = save_before_restore(database, current) if database.exists() else None
        backups.restore_sqlite(file, database)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {database} from {file} (revision {restoring})"
               + (f"; the database it replaced is saved as {copy.path}." if copy else "."))
    if restoring != latest:
        behind = plural(steps_between(restoring, latest), "migration")
        click.echo(f"The restored database is behind this version by {behind}: run portal init to migrate it.")
    click.echo("Start the server again (all workers), so none keeps what it read before the restore.")


COMMANDS = [status_command, backup_command, restore_command]
