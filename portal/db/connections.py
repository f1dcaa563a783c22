"""The hot connection: one Core connection per request for the reads that run on every
API call, /userinfo, introspection and client authentication (docs/benchmark.md, "Profiling
a hot path"), kept by the worker thread between requests.

Each worker thread holds at most two connections (this one, and db.session's while a
request writes through the ORM), so the pool is sized from the thread count
(`pool_size`, see portal.config). Threads, not greenlets: the bundled gunicorn settings
accept the sync and gthread workers only.
"""

import threading
import time

from flask import g
from sqlalchemy import Connection, CursorResult
from sqlalchemy.exc import DBAPIError

from portal.extensions import db

# This thread's hot connection between two requests (see hot_connection).
_idle = threading.local()
# An idle connection older than this goes back to the pool, whose pre-ping checks it.
IDLE_RECHECK_SECONDS = 10.0


def hot_connection() -> Connection:
    """This request's Core connection for the statements that run on every API call,
    userinfo and introspection (the bearer lookup and its reads): it skips building and
    tearing down an ORM Session. Between requests the thread keeps it, rolled back, instead
    of returning it to the pool. Closed or kept with the app context, like db.session; a
    write on it commits at once. Changes that belong together go through db.session."""
    connection = g.get("_hot_connection")
    if connection is None:
        connection = _take_idle()
        g._hot_reused = connection is not None
        if connection is None:
            connection = _connect()
        g._hot_connection = connection
    return connection


def _connect() -> Connection:
    connection = db.engine.connect()
    if connection.dialect.name == "postgresql":
        # Each statement its own transaction: no BEGIN and ROLLBACK round trips around
        # the one or two reads of a request (on SQLite, where there is no round trip,
        # autocommit measured slower).
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


def _take_idle() -> Connection | None:
    connection, since = getattr(_idle, "connection", None), getattr(_idle, "since", 0.0)
    _idle.connection = None
    if connection is None:
        return None
    if (connection.engine is db.engine and not connection.closed and not connection.invalidated
            and time.monotonic() - since < IDLE_RECHECK_SECONDS):
        return connection
    connection.close()
    return None


def hot_read(statement, parameters: dict) -> CursorResult:
    """Execute a read on the hot connection. A kept connection the database dropped in the
    meantime (a restart) fails on its first statement: then once more on a fresh one, as
    the pool's pre-ping would have done."""
    connection = hot_connection()
    try:
        return connection.execute(statement, parameters)
    except DBAPIError as error:
        if not (error.connection_invalidated and g.pop("_hot_reused", False)):
            raise
    close_hot_connection(keep=False)
    return hot_connection().execute(statement, parameters)


def close_hot_connection(exception=None, keep: bool = True) -> None:
    connection = g.pop("_hot_connection", None)
    g.pop("_hot_reused", None)
    if connection is None:
        return
    if not keep or exception is not None or connection.closed or connection.invalidated:
        connection.close()
        return
    try:
        connection.rollback()  # no snapshot or lock is held between requests
    except DBAPIError:
        connection.close()
        return
    _idle.connection, _idle.since = connection, time.monotonic()


def release_idle_connection() -> None:
    """Return this thread's kept connection to its pool (tests, before dropping tables)."""
    connection = getattr(_idle, "connection", None)
    _idle.connection = None
    if connection is not None:
        connection.close()
