"""Rate-limit counters in the application database: `RATELIMIT_STORAGE_URI=database://`,
the default.

Every worker of a host, and every host on the same PostgreSQL, counts in the same rows,
so a documented limit holds whatever the worker count, with no Redis. Each change is one
atomic upsert in its own short transaction, apart from the request's session, so a
request that fails and rolls back still counts. Redis (`redis://...`) remains the choice
when the counters should not touch the database.
"""

import time

from limits.storage import Storage
from flask import has_app_context
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from portal.connections import hot_read
from portal.extensions import db
from portal.hashing import sha256_hex
from portal.models import RateLimitCounter

_counters = RateLimitCounter.__table__
_COUNT = select(_counters.c.count).where(_counters.c.key_hash == bindparam("key_hash"),
                                         _counters.c.expires_at > bindparam("now"))
UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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


class DatabaseStorage(Storage):
    """A `limits` storage over the application database (fixed-window strategy)."""

    STORAGE_SCHEME = ["database"]

    @property
    def base_exceptions(self):
        return DBAPIError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with db.engine.begin() as connection:
            statement = increment_statement(connection.dialect.name, sha256_hex(key), amount, now, now + expiry)
            return connection.execute(statement).scalar_one()

    def get(self, key: str) -> int:
        """Read on the request's hot connection: this runs before every client or bearer
        authentication (portal.throttle)."""
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
