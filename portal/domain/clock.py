"""The one clock: naive UTC datetimes everywhere (SQLite keeps no time zone).

Call it as `clock.now()` so tests can move time by patching this module.
"""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def timestamp(moment: datetime) -> int:
    """Seconds since the epoch for a naive UTC datetime."""
    return int(moment.replace(tzinfo=UTC).timestamp())
