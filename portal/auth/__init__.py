"""Login, logout and the server-side checks that keep a session honest."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from portal.auth import views, factors, passkeys  # noqa: E402,F401  (routes register on import)
