"""The throttle's counters in the application database: `RATELIMIT_STORAGE_URI=database://`,
the default (portal.web.throttle owns this storage).

Every worker of a host, and every host on the same PostgreSQL, counts in the same rows,
so a documented limit holds whatever the worker count, with no Redis. Each change is one
atomic upsert in its own short transaction, apart from the request's session, so a
request that fails and rolls back still counts. The same transaction deletes a bounded
number of finished windows, so the table stays about as large as the live windows;
`portal purge-expired` clears the rest.
"""

import time

from flask import has_app_context
from limits.storage import Storage
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from portal.db.connections import hot_read
from portal.extensions import db
from portal.domain.hashing import sha256_hex
from portal.models import RateLimitCounter

_counters = RateLimitCounter.__table__
_COUNT = select(_counters.c.count).where(_counters.c.key_hash == bindparam("key_hash"),
                                         _counters.c.expires_at > bindparam("now"))
UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# Finished windows deleted with each change: more than one change can make, so the table
# shrinks back to its live windows under any load.
PURGED_PER_WRITE = 100


def increment_statement(dialect: str, key_hash: str, amount: int, now: float, expires_at: float):
    """Add `amount` to the key's window, or start a new window if the old one has passed."""
    insert = UPSERTS[dialect](_counters).values(key_hash=key_hash, count=amount, expires_at=expires_at)
    window_over = _counters.c.expires_at <= now
    return insert.on_conflict_do_update(
        index_elements=[_counters.c.key_hash],
        set_={
            "count": case((window_over, amount), else_=_counters.c.count + amount),
            "expires_at": case((window_over, expires_at), else_=_counters.c.expires_at),
        },
    ).returning(_counters.c.count)


def purge_some_statement(dialect: str, now: float, limit: int = PURGED_PER_WRITE):
    """Delete up to `limit` finished windows, oldest first. PostgreSQL skips rows another
    transaction holds (its own upsert, or another purge): waiting there could deadlock."""
    finished = (select(_counters.c.key_hash).where(_counters.c.expires_at <= now)
                .order_by(_counters.c.expires_at).limit(limit))
    if dialect == "postgresql":
        finished = finished.with_for_update(skip_locked=True)
    return delete(_counters).where(_counters.c.key_hash.in_(finished))


class DatabaseStorage(Storage):
    """A `limits` storage over the application database (fixed-window strategy)."""

    STORAGE_SCHEME = ["database"]

    @property
    def base_exceptions(self):
        return DBAPIError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with db.engine.begin() as connection:
            dialect = connection.dialect.name
            count = connection.execute(
                increment_statement(dialect, sha256_hex(key), amount, now, now + expiry)).scalar_one()
            connection.execute(purge_some_statement(dialect, now))
        return count

    def get(self, key: str) -> int:
        """Read on the request's hot connection (portal.db.connections)."""
        parameters = {"key_hash": sha256_hex(key), "now": time.time()}
        if has_app_context():
            return hot_read(_COUNT, parameters).scalar() or 0
        with db.engine.connect() as connection:
            return connection.execute(_COUNT, parameters).scalar() or 0

    def get_expiry(self, key: str) -> float:
        with db.engine.connect() as connection:
            expires_at = connection.scalar(select(_counters.c.expires_at).where(
                _counters.c.key_hash == sha256_hex(key)))
        return expires_at or time.time()

    def check(self) -> bool:
        try:
            with db.engine.connect() as connection:
                connection.scalar(select(1))
        except DBAPIError:
            return False
        return True

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(delete(_counters)).rowcount

    def clear(self, key: str) -> None:
        with db.engine.begin() as connection:
            connection.execute(delete(_counters).where(_counters.c.key_hash == sha256_hex(key)))


def purge_expired(now: float | None = None) -> int:
    """Delete the counters of windows that have passed (`portal purge-expired`)."""
    with db.engine.begin() as connection:
        return connection.execute(delete(_counters).where(_counters.c.expires_at <= (now or time.time()))).rowcount
