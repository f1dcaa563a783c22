"""Secrets shown once, after a redirect (post/redirect/get).

The POST that makes a token value, a client secret or recovery codes answers with a redirect and a cookie
of its own holding the secret, encrypted (Fernet, with a key derived from SECRET_KEY),
sent back only to the page it redirects to (its Path) and only for a few minutes. That
page deletes the cookie as it shows the secret: a reload or the back button finds nothing
to show and makes nothing new. No other answer touches this cookie; the session cookie,
which any answer may set again (the user picker's, arriving late), once dropped a value
that rode in it.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import after_this_request, current_app, request

COOKIE = "tessera_shown_once"
LIFETIME_SECONDS = 300
# Longer secrets would push the cookie past the 4 KB a browser keeps (only custom token
# values, up to 4,096 characters, are ever this long).
MAX_HELD_LENGTH = 2000


def fits(secret: str) -> bool:
    """Whether `secret` can be held in the cookie."""
    return len(secret) <= MAX_HELD_LENGTH


def _fernet() -> Fernet:
    secret = current_app.secret_key
    secret = secret.encode() if isinstance(secret, str) else secret
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"tessera shown-once\0" + secret).digest()))


def _cookie_settings(page: str) -> dict:
    return {"path": page, "secure": current_app.config.get("SESSION_COOKIE_SECURE", False), "httponly": True,
            "samesite": "Strict"}


def hold(response, page: str, secret: str) -> None:
    """Keep `secret` for the next view of `page` (a path), on the redirect `response`."""
    response.set_cookie(COOKIE, _fernet().encrypt(secret.encode()).decode(), max_age=LIFETIME_SECONDS,
                        **_cookie_settings(page))


def take(page: str) -> str | None:
    """The secret held for `page` (this request's path), forgotten by this request's response;
    None if none."""
    sealed = request.cookies.get(COOKIE)
    if sealed is None:
        return None

    @after_this_request
    def forget(response):
        response.delete_cookie(COOKIE, **_cookie_settings(page))
        return response

    try:
        return _fernet().decrypt(sealed.encode(), ttl=LIFETIME_SECONDS).decode()
    except InvalidToken:
        return None
