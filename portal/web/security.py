"""Security headers, the login guard for sessions, and bearer-token parsing helpers."""

import base64
import binascii
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
    if "HTTP_COOKIE" not in request.environ:  # no session to look at (nor a Vary: Cookie to add)
        return False
    # Flask-Login keeps the user's id under this key: no database read to know it.
    return "_user_id" in session and request.endpoint != "static"


NUL_ENCODED = re.compile(rb"%00|\x00")
# A JSON `\u0000` escape (not an escaped backslash followed by "u0000"), or a raw NUL.
NUL_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")
NUL_REFUSED = "The request contains a NUL character, which no value here may hold."


def basic_credentials() -> bytes | None:
    """The decoded `user:password` of an `Authorization: Basic` header, as bytes (None: none
    sent, or not Base64)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip())
    except (binascii.Error, ValueError):
        return None


def nul_in_body() -> bool:
    """Form bodies and query strings are read as sent (a NUL is `%00` there), before
    anything parses them; JSON as sent too (`\u0000`)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return bool(NUL_ENCODED.search(request.get_data(cache=True)))
    if request.mimetype == "multipart/form-data":
        return any("\x00" in key + value for key, value in request.form.items(True))
    if request.is_json:
        return bool(NUL_IN_JSON.search(request.get_data(cache=True)))
    return False


def refuse_nul_bytes():
    """400 for a NUL character anywhere a value could reach SQL, whatever carried it: the
    path, the query, a form or JSON body, any header (a bearer token, X-Forwarded-For, which
    reaches the audit log), the decoded Basic credentials, the cookies. PostgreSQL cannot
    store a NUL in text and would answer with a DataError."""
    environ = request.environ
    found = "\x00" in request.path or bool(NUL_ENCODED.search(request.query_string))
    # Every header, as the WSGI environ holds them (HTTP_*, CONTENT_TYPE, CONTENT_LENGTH).
    found = found or any("\x00" in value for value in environ.values() if type(value) is str)
    if not found and (credentials := basic_credentials()) is not None:
        # Clients percent-encode both parts (RFC 6749 §2.3.1), so `%00` is a NUL there too.
        found = bool(NUL_ENCODED.search(credentials))
    if not found and "HTTP_COOKIE" in environ:
        found = any("\x00" in name or "\x00" in value for name, value in request.cookies.items(multi=True))
    if not found and request.method in ("POST", "PUT", "PATCH", "DELETE"):
        found = nul_in_body()
    if found:
        abort(400, NUL_REFUSED)


# What an answer that shows a secret (a token, a client secret, codes) carries: no cache keeps it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def no_store(response):
    """For pages that show a secret once."""
    response.headers.update(NO_STORE)
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
