"""Device cookies (OWASP's defence against lockout attacks on the login form).

A successful sign-in sets a signed cookie naming the account (case-insensitively) and a
random device id. A later attempt for that account carrying it counts in the device's own
small bucket instead of the account's (portal.web.throttle, LOGIN_DEVICE_RATE_LIMIT), so
strangers who fail for the account elsewhere never lock its owner out of a browser they
signed in from before; a stolen cookie buys only its own bucket's guesses.
"""

import secrets

from flask import current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

LIFETIME_SECONDS = 30 * 24 * 3600
SALT = "tessera.login-device"
PATH = "/login"


def cookie_name() -> str:
    return "__Secure-tessera_device" if current_app.config["SESSION_COOKIE_SECURE"] else "tessera_device"


def serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def device_for(account: str) -> str | None:
    """The device id of this request's cookie if it is valid and names `account`, else None."""
    value = request.cookies.get(cookie_name())
    if not value:
        return None
    try:
        named, device = serializer().loads(value, max_age=LIFETIME_SECONDS)
    except (BadData, TypeError, ValueError):
        return None
    if not isinstance(named, str) or not isinstance(device, str) or named != account.lower():
        return None
    return device


def remember_device(response, account: str) -> None:
    """Set (or renew, with a new device id) the cookie for the account that just signed in."""
    value = serializer().dumps([account.lower(), secrets.token_urlsafe(16)])
    response.set_cookie(cookie_name(), value, max_age=LIFETIME_SECONDS, path=PATH, httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
