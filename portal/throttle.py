"""Throttling failed authentication other than the login form (whose limits are
Flask-Limiter decorators on the login view): OAuth client authentication at /token,
/introspect and /revoke, and bearer tokens on the API and /userinfo.

Failures count per address and, for clients, per client id, in the limiter's store (the
database by default, shared by every worker and host). Once a key is over its limit,
every attempt with it is refused, right or wrong, until its window passes: otherwise a
guesser would still learn which guess was right."""

from functools import lru_cache

from flask import current_app, request
from limits import RateLimitItem, parse

from portal.extensions import limiter

RETRY_AFTER_SECONDS = 60

# The kinds of failed attempt (see `keys` for what each counts against).
CLIENT_AUTH = "client-auth"
BEARER = "bearer"


def keys(kind: str, client_id: str | None) -> list[tuple[str, str, str]]:
    """(scope, limit setting, key) of each counter an attempt of `kind` is counted in."""
    address = request.remote_addr or "unknown"
    if kind == CLIENT_AUTH:
        found = [("client-auth-ip", "CLIENT_AUTH_IP_RATE_LIMIT", address)]
        if client_id:
            found.append(("client-auth-client", "CLIENT_AUTH_RATE_LIMIT", client_id))
        return found
    return [("bearer-ip", "BEARER_IP_RATE_LIMIT", address)]


@lru_cache(maxsize=16)
def parsed(limit: str) -> RateLimitItem:
    """A setting such as "10 per minute", parsed once (this runs on every authentication)."""
    return parse(limit)


def blocked(kind: str, client_id: str | None = None) -> bool:
    """Has this address (or client id) failed `kind` too often in the current window?"""
    return any(not limiter.limiter.test(parsed(current_app.config[setting]), scope, key)
               for scope, setting, key in keys(kind, client_id))


def count_failure(kind: str, client_id: str | None = None) -> None:
    for scope, setting, key in keys(kind, client_id):
        limiter.limiter.hit(parsed(current_app.config[setting]), scope, key)
