"""Security headers, the login guard for sessions, and bearer-token parsing helpers."""

from flask import request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    # RFC 6750 §2.3: responses to requests with a token in the URL must not be shared caches'.
    if "access_token" in request.args or "accessTokenId" in request.args:
        headers["Cache-Control"] = "no-store" if "no-store" in headers.get("Cache-Control", "") else "private"
    return response


def no_store(response):
    """For pages that show a secret once."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def register(app) -> None:
    app.after_request(add_security_headers)
