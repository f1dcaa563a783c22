"""Secrets shown once, after a redirect (post/redirect/get).

The POST that makes a token value or a client secret keeps it, sealed, in the session and
redirects; the page it redirects to takes it out and shows it. A reload of that page, or
the back button, finds nothing to show and makes nothing new. The session is a signed,
not encrypted, cookie: the value is encrypted in it (Fernet, with a key derived from
SECRET_KEY) and expires after a few minutes if the page is never opened.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, session

SESSION_KEY = "shown_once"
LIFETIME_SECONDS = 300
# Longer secrets would push the session cookie past the 4 KB a browser keeps (only custom
# token values, up to 4,096 characters, are ever this long).
MAX_HELD_LENGTH = 2000


def fits(secret: str) -> bool:
    """Whether `secret` can be held in the session cookie."""
    return len(secret) <= MAX_HELD_LENGTH


def _fernet() -> Fernet:
    secret = current_app.secret_key
    secret = secret.encode() if isinstance(secret, str) else secret
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"tessera shown-once\0" + secret).digest()))


def hold(kind: str, ident: int, secret: str) -> None:
    """Keep `secret` for the next view of `kind` `ident` (one at a time)."""
    session[SESSION_KEY] = {"for": f"{kind}:{ident}", "sealed": _fernet().encrypt(secret.encode()).decode()}


def take(kind: str, ident: int) -> str | None:
    """The secret held for `kind` `ident`, forgotten as it is read; None if there is none."""
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict) or held.get("for") != f"{kind}:{ident}":
        return None
    session.pop(SESSION_KEY)
    try:
        return _fernet().decrypt(str(held.get("sealed", "")).encode(), ttl=LIFETIME_SECONDS).decode()
    except InvalidToken:
        return None
