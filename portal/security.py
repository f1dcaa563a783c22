"""Security headers, the login guard for sessions, and bearer-token parsing helpers."""

import re

from flask import abort, request, session
from flask.sessions import SecureCookieSessionInterface

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # Our own pages get the referrer (the CSRF check reads it); no other site ever does.
    ("Referrer-Policy", "same-origin"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
)


def add_security_headers(response):
    """Each header unless the view set its own (one pass over the headers: every response)."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    # An answer to a request that carried credentials is that caller's alone: no cache
    # keeps it (RFC 6750 §2.3 for URL tokens; the /authorize redirect that carries a code).
    if carries_credentials():
        headers["Cache-Control"] = "no-store"
    return response


def carries_credentials() -> bool:
    """A bearer token (header or URL) or a logged-in session; static files aside."""
    if "Authorization" in request.headers:
        return True
    if request.query_string and ("access_token" in request.args or "accessTokenId" in request.args):
        return True
    # Flask-Login keeps the user's id under this key: no database read to know it.
    return "_user_id" in session and request.endpoint != "static"


NUL_ENCODED = re.compile(rb"%00|\x00")
NUL_IN_JSON = re.compile(rb"\\u0000|\x00")


def refuse_nul_bytes():
    """400 for a NUL character anywhere a value could reach SQL (path, query, form, JSON):
    PostgreSQL cannot store one in text and would answer with a DataError. Query strings and
    form bodies are checked as sent (a NUL is `%00` there), before anything parses them."""
    found = "\x00" in request.path or bool(NUL_ENCODED.search(request.query_string))
    if not found and request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.mimetype == "application/x-www-form-urlencoded":
            found = bool(NUL_ENCODED.search(request.get_data(cache=True)))
        elif request.mimetype == "multipart/form-data":
            found = any("\x00" in key + value for key, value in request.form.items(True))
        elif request.is_json:
            found = bool(NUL_IN_JSON.search(request.get_data(cache=True)))
    if found:
        abort(400, "The request contains a NUL character, which no value here may hold.")


def no_store(response):
    """For pages that show a secret once."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, but a request without the cookie (every API call and
    resource-server request) gets an empty session without building a signer first, and a
    request with no Cookie header at all without parsing one."""

    def open_session(self, app, request):
        if app.secret_key and ("HTTP_COOKIE" not in request.environ
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)


def register(app) -> None:
    app.session_interface = CookieSessionInterface()
    # First of all hooks: it reads form bodies as sent, before CSRFProtect parses them.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_nul_bytes)
    app.after_request(add_security_headers)
