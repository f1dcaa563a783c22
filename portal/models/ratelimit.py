"""The throttle's counters kept in the application database (see portal.web.ratelimit)."""

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class RateLimitCounter(db.Model):
    """One fixed window of one limit: `key_hash` is the SHA-256 of the throttle's key
    (it names addresses and accounts: never stored in the clear)."""

    __tablename__ = "rate_limit_counters"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    # Seconds since the epoch (what the limits library speaks).
    expires_at: Mapped[float] = mapped_column(Float, index=True)
