"""Consistent copies of the database: SQLite's online backup API, PostgreSQL's pg_dump.

A plain copy of a running SQLite file is not a backup: in WAL mode committed rows stay in
`tessera.db-wal` until a checkpoint moves them into the main file, and a copy made while a
write is under way can be torn. The backup API copies the database as one reader sees it,
whatever other processes hold it open. A copy holds password hashes, token hashes and the
private signing keys, so it is written readable by its owner only."""

import os
import secrets
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL

BUSY_TIMEOUT_SECONDS = 30  # how long to wait for a writer's lock before giving up
SQLITE_HEADER = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore that cannot go ahead or failed; the message says why, in one line."""


@dataclass(frozen=True)
class Copy:
    path: Path
    size: int
    revision: str | None


def shown(url: URL) -> str:
    """The database URL as it may be printed: the password hidden."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite database, or None for another database."""
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to copy")
    return Path(url.database)


def check_backend(url: URL, command: str) -> str:
    """'sqlite' or 'postgresql'; any other database is refused, naming it."""
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"portal {command} handles SQLite and PostgreSQL; use {backend}'s own tools "
                          "for this database")
    return backend


def _connect_existing(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open a SQLite file that must already exist (sqlite3.connect would make an empty one)."""
    mode = "ro" if read_only else "rw"
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_SECONDS)


def read_sqlite(path: Path) -> str | None:
    """Check that `path` is a sound SQLite database (its header and PRAGMA integrity_check)
    and return the schema revision it holds, None if it has no alembic_version row."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None
    if header != SQLITE_HEADER:
        raise BackupError(f"{path} is not a SQLite database")
    connection = _connect_existing(path, read_only=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{path} fails SQLite's integrity check: {problems[0]}")
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        return None
    except sqlite3.Error as error:
        raise BackupError(f"{path}: {error}") from None
    finally:
        connection.close()


def _check_target(target: Path, replace: bool) -> None:
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; name the file to write")
    if target.exists() and not replace:
        raise BackupError(f"{target} already exists; choose another name, or pass --force to replace it")


def _partial_beside(target: Path) -> Path:
    """An empty file, readable by its owner only, to write a copy into before it gets its name."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise BackupError(f"cannot write in {target.parent}: {error.strerror}") from None
    return partial


def _place(partial: Path, target: Path, replace: bool) -> None:
    """Give the finished copy its name; without `replace`, never over a file that appeared meanwhile."""
    try:
        if replace:
            os.replace(partial, target)
        else:
            os.link(partial, target)
    except FileExistsError:
        raise BackupError(f"{target} already exists; choose another name, or pass --force to replace it") from None
    except OSError as error:
        raise BackupError(f"cannot name the copy {target}: {error.strerror}") from None


def _copy_pages(reader: sqlite3.Connection, writer: sqlite3.Connection) -> None:
    with closing(reader), closing(writer):
        reader.backup(writer)


def backup_sqlite(source: Path, target: Path, *, replace: bool = False) -> Copy:
    """Copy the SQLite database `source` into `target` with the online backup API, as one
    self-contained file (rollback journal, no -wal beside it), checked by opening it.
    An existing `target` is kept (BackupError) unless `replace`."""
    if not source.is_file():
        raise BackupError(f"there is no database file at {source}")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself")
    _check_target(target, replace)
    partial = _partial_beside(target)
    try:
        try:
            _copy_pages(_connect_existing(source, read_only=False), sqlite3.connect(partial))
            with closing(sqlite3.connect(partial)) as copy:
                copy.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as error:
            raise BackupError(f"cannot copy {source}: {error}") from None
        revision = read_sqlite(partial)
        _place(partial, target, replace)
    finally:
        partial.unlink(missing_ok=True)
    return Copy(target, target.stat().st_size, revision)


def backup_beside(database: Path, revision: str | None) -> Copy:
    """A copy next to the database, `tessera.db.<revision>.<UTC time>.bak` (`unversioned` for
    a database without a revision), never over another file; the copy must read `revision`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        target = database.with_name(f"{database.name}.{revision or 'unversioned'}.{stamp}{suffix}.bak")
        if target.exists():
            continue
        try:
            copy = backup_sqlite(database, target)
        except BackupError:
            if target.exists():  # taken by another process between the check and the link
                continue
            raise
        if copy.revision != revision:
            target.unlink()
            raise BackupError(f"the copy {target} reads revision {copy.revision}, not {revision}")
        return copy
    raise BackupError(f"could not find a free name for a copy of {database}")


def restore_sqlite(source: Path, database: Path) -> str | None:
    """Write the copy `source` over `database` with the backup API (safe while other processes
    hold the database open: they see the restored data once it is committed); returns its revision."""
    try:
        _copy_pages(_connect_existing(source, read_only=True), sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS))
    except sqlite3.Error as error:
        raise BackupError(f"cannot restore {database} from {source}: {error}") from None
    return read_sqlite(database)


# --- PostgreSQL ----------------------------------------------------------------------

def libpq_url(url: URL) -> str:
    """The database as libpq's tools take it (`--dbname`), without the password."""
    return URL.create("postgresql", username=url.username, host=url.host, port=url.port, database=url.database,
                      query=url.query).render_as_string(hide_password=False)


def password_environment(url: URL) -> dict:
    """The environment for pg_dump: the password in PGPASSWORD, never on a command line
    (which every user of the machine can read in the process list)."""
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    return environment


def pg_dump_arguments(url: URL, file: Path) -> list[str]:
    return ["pg_dump", "--format=custom", f"--file={file}", f"--dbname={libpq_url(url)}"]


def pg_restore_arguments(url: URL, file: Path) -> list[str]:
    return ["pg_restore", "--clean", "--if-exists", "--single-transaction", f"--dbname={libpq_url(url)}", str(file)]


def command_line(arguments: list[str]) -> str:
    return shlex.join(arguments)


def pg_dump_available() -> bool:
    return shutil.which("pg_dump") is not None


def dump_postgresql(url: URL, file: Path, *, replace: bool = False) -> int:
    """Run pg_dump into `file` (custom format); returns the size written."""
    _check_target(file, replace)
    partial = _partial_beside(file)
    try:
        result = subprocess.run(pg_dump_arguments(url, partial), env=password_environment(url),
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
            raise BackupError(f"pg_dump failed: {message}")
        _place(partial, file, replace)
    finally:
        partial.unlink(missing_ok=True)
    return file.stat().st_size
