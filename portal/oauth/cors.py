"""CORS for browser public clients (single-page apps with PKCE) on the endpoints they
call: /token, /userinfo, /revoke, /jwks and the two discovery documents.

The allowed origins are those of the redirect URIs registered for public clients, read
from the database when a request carries an Origin header (a request without one costs no
query). Flask-CORS takes a fixed origin list, not one that changes with registrations,
hence these few lines. No credentials (cookies) are allowed, so no `*` either: the origin
is echoed only when it is registered, with `Vary: Origin` on every answer of these routes.
"""

from urllib.parse import urlsplit

from flask import request
from sqlalchemy import select

from portal.db.connections import hot_read
from portal.models import Application
from portal.models.application import PUBLIC
from portal.oauth import bp

CORS_ENDPOINTS = frozenset({"oauth.token", "oauth.userinfo", "oauth.revoke", "oauth.jwks",
                            "oauth.openid_configuration", "oauth.oauth_authorization_server"})
ALLOWED_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = "WWW-Authenticate"
PREFLIGHT_MAX_AGE = "600"
DEFAULT_PORTS = {"http": 80, "https": 443}

_applications = Application.__table__
_PUBLIC_REDIRECT_URIS = select(_applications.c.redirect_uris).where(_applications.c.client_type == PUBLIC)


def web_origin(uri: str) -> str | None:
    """The origin (RFC 6454) of an http(s) URI as a browser sends it; None for other
    schemes (a native app's redirect URI is no web origin) and for malformed URIs."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")


def registered_origin(origin: str) -> bool:
    """Whether a public client has a redirect URI at this origin."""
    return any(web_origin(uri) == origin
               for (uris,) in hot_read(_PUBLIC_REDIRECT_URIS, {}) for uri in uris or [])


@bp.after_request
def add_cors_headers(response):
    if request.endpoint not in CORS_ENDPOINTS:
        return response
    response.headers.add("Vary", "Origin")  # a field of its own: cheaper than re-parsing Vary
    origin = request.headers.get("Origin")
    if not origin or not registered_origin(origin):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        methods = sorted((request.url_rule.methods or set()) - {"OPTIONS", "HEAD"})
        response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    else:
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response
