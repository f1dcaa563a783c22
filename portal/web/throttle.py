"""Throttling failed authentication, for every surface that checks a secret: the login form
and the step-up password (portal.auth.views, portal.admin.tokens), client authentication at
the OAuth endpoints (portal.oauth.server) and bearer tokens (portal.tokens.bearer).

The counters are fixed windows of the `limits` library in one store, RATELIMIT_STORAGE_URI:
`database://` (the application database, portal.web.ratelimit; the default), `redis://...`, or
`memory://` (one process only). Two rules (docs/operations.md: Throttling):

- A password can be guessed: an attempt is counted before the password is checked, with one
  atomic increment per counter; once a counter is over its limit the attempt is refused
  unchecked; a right password takes its attempt back.
- A client secret or a token Tessera generated cannot be guessed online: it is checked
  first, and a right one passes without a look at the counters; only a failure is counted,
  and answered 429 instead of 401 once a counter is over its limit. So one party's failures
  never refuse another party who authenticates correctly.
"""

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from flask import current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import Storage, storage_from_string
from werkzeug.exceptions import TooManyRequests

from portal.web import metrics, ratelimit  # noqa: F401 (ratelimit is imported to register the database:// storage)
from portal.config import ConfigError
from portal.domain.hashing import sha256_hex


@dataclass(frozen=True)
class Kind:
    """A kind of secret whose failures are throttled, and the settings holding its limits."""

    name: str
    per_address: str
    # Per account (a password), or per client id at one address (`subject_at_address`).
    per_subject: str | None = None
    subject_at_address: bool = False
    # Per device cookie, counted instead of the account's limit (portal.auth.devices).
    per_device: str | None = None


# The names label the metrics (portal.web.metrics) and key the counters.
PASSWORD = Kind("password", "LOGIN_IP_RATE_LIMIT", "LOGIN_RATE_LIMIT", per_device="LOGIN_DEVICE_RATE_LIMIT")
CLIENT_SECRET = Kind("client", "CLIENT_AUTH_IP_RATE_LIMIT", "CLIENT_AUTH_RATE_LIMIT", subject_at_address=True)
BEARER_TOKEN = Kind("bearer", "BEARER_IP_RATE_LIMIT")

Counter = tuple[RateLimitItem, str]


class Refused(Exception):
    """Over a limit: no check now; `retry_after` is the seconds left in the window."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed attempts: try again in {retry_after} seconds")
        self.retry_after = retry_after

    def said(self) -> str:
        """What a sign-in page or script tells the person."""
        return f"Too many attempts: try again in {self.retry_after} seconds."

    def as_http(self) -> TooManyRequests:
        """The 429 a sign-in page answers, with Retry-After."""
        return TooManyRequests(self.said(), retry_after=self.retry_after)


def init_app(app) -> None:
    """Open the store; a limit or a store that cannot be read stops start-up, naming its setting."""
    for name, value in app.config.items():
        if name.endswith("_RATE_LIMIT"):
            try:
                parsed(value)
            except ValueError:
                raise ConfigError(f"{name} must read like '5 per minute', not {value!r}") from None
    uri = app.config["RATELIMIT_STORAGE_URI"]
    try:
        app.extensions["throttle"] = storage_from_string(uri)
    except ConfigurationError as error:
        raise ConfigError(f"RATELIMIT_STORAGE_URI: {error}") from None


def storage() -> Storage:
    return current_app.extensions["throttle"]


@lru_cache(maxsize=32)
def parsed(setting: str) -> tuple[RateLimitItem, ...]:
    """A setting such as "5 per minute" (or "5 per minute; 20 per hour"), parsed once."""
    return tuple(parse_many(setting))


def counter(kind: Kind, setting: str, *parts: str) -> list[Counter]:
    return [(limit, limit.key_for(kind.name, *parts)) for limit in parsed(current_app.config[setting])]


def address() -> str:
    """The client's address (behind TRUSTED_PROXIES, the one ProxyFix found)."""
    return request.remote_addr or "unknown"


def counters(kind: Kind, subject: str | None = None, device: str | None = None) -> list[Counter]:
    """The counters an attempt is counted in. A subject (a username as typed, a client id)
    is stored hashed: a username box sometimes holds a password."""
    found = counter(kind, kind.per_address, "address", address())
    if subject is None:
        return found
    if device is not None and kind.per_device:
        return found + counter(kind, kind.per_device, "device", sha256_hex(subject), device)
    if kind.per_subject:
        at = (address(),) if kind.subject_at_address else ()
        return found + counter(kind, kind.per_subject, "subject", sha256_hex(subject), *at)
    return found


def retry_after(keys: list[str]) -> int:
    """Seconds until the last of these windows ends."""
    ends = max(storage().get_expiry(key) for key in keys)
    return max(1, math.ceil(ends - time.time()))


def refuse(kind: Kind, keys: list[str]) -> NoReturn:
    metrics.throttled(kind.name)
    raise Refused(retry_after(keys))


def count(kind: Kind, found: list[Counter]) -> None:
    """One atomic increment per counter; Refused if any is now over its limit."""
    store = storage()
    over = [key for limit, key in found if store.incr(key, limit.get_expiry()) > limit.amount]
    if over:
        refuse(kind, over)


def failed(kind: Kind, subject: str | None = None) -> None:
    """Count a failed check of a secret nobody can guess online (Refused once over a limit)."""
    metrics.authentication_failed(kind.name)
    count(kind, counters(kind, subject))


def check_address(kind: Kind) -> None:
    """Refused if this address is already over its limit: before a check that costs (a slow hash)."""
    store = storage()
    over = [key for limit, key in counter(kind, kind.per_address, "address", address())
            if store.get(key) > limit.amount]
    if over:
        refuse(kind, over)


class Attempt:
    """A guess, counted before it is checked (`guess`)."""

    def __init__(self, kind: Kind, found: list[Counter]):
        self.kind, self.counters = kind, found

    def failed(self) -> None:
        """The secret was wrong: the attempt stays counted."""
        metrics.authentication_failed(self.kind.name)

    def succeeded(self) -> None:
        """The secret was right: take the attempt back, so a correct sign-in consumes nothing."""
        store = storage()
        for limit, key in self.counters:
            if store.incr(key, limit.get_expiry(), amount=-1) < 0:  # its window ended meanwhile
                store.incr(key, limit.get_expiry())


def guess(kind: Kind, subject: str, device: str | None = None) -> Attempt:
    """Count an attempt at a guessable secret before it is checked: the address, and the
    device's counter when the attempt carries a trusted device, else the subject's.
    Refused, unchecked, once any is over its limit."""
    attempt = Attempt(kind, counters(kind, subject, device))
    count(kind, attempt.counters)
    return attempt
