"""The one door for bearer tokens (RFC 6750): read the token from the request, authenticate
it, and on failure count it against the address (portal.web.throttle). The API, /userinfo,
GeoNode's tokeninfo and userinfo and the Crafter API all come through here; each keeps
only the shape of its answers.

Tokens are read from the header, a form body or the URL; `accessTokenId` is accepted as an
alias of `access_token` for Crafter Profile clients. URL tokens can be turned off with
ALLOW_QUERY_ACCESS_TOKEN=false.
"""

from flask import Request, current_app, request

from portal.web import throttle
from portal.tokens.core import authenticate
from portal.tokens.errors import InvalidTokenError
from portal.tokens.view import TokenView

PARAMETERS = ("access_token", "accessTokenId")
REALM = 'Bearer realm="tessera"'


class TooManyTokensError(ValueError):
    """More than one token in one request (RFC 6750 §2: MUST NOT use more than one method)."""

    def __init__(self):
        super().__init__("Send the access token one way only: header, form body or query.")


def token_from_request(request: Request) -> str | None:
    """The one presented token value, None if there is none; TooManyTokensError for two."""
    found: list[str] = []
    header = request.headers.get("Authorization")
    if header:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            found.append(credentials.strip())
    # RFC 6750 §2.2: form-encoded bodies only, and never on GET.
    if request.method not in ("GET", "HEAD") and request.mimetype == "application/x-www-form-urlencoded":
        for name in PARAMETERS:
            found.extend(request.form.getlist(name))
    if request.query_string and current_app.config["ALLOW_QUERY_ACCESS_TOKEN"]:
        for name in PARAMETERS:
            found.extend(request.args.getlist(name))
    if len(found) > 1:
        raise TooManyTokensError()
    return found[0] if found else None


def challenge(error: str | None) -> str:
    """WWW-Authenticate (RFC 6750 §3): no error code when no token was sent."""
    return f'{REALM}, error="{error}"' if error else REALM


class BearerRefused(Exception):
    """Why a request's bearer token does not let it in: the HTTP status, the RFC 6750 error
    code (None when no token was sent), a sentence for people, the token core's reason
    (`token expired`, ...) for a token that failed, and the answer's headers."""

    def __init__(self, status: int, error: str | None, description: str, *, reason: str | None = None,
                 retry_after: int | None = None):
        super().__init__(description)
        self.status, self.error, self.description, self.reason = status, error, description, reason
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {"WWW-Authenticate": challenge(self.error)}


def authenticate_value(value: str) -> TokenView:
    """The live token `value` names, or BearerRefused: 401 invalid_token, or 429 once this
    address has failed too often. A live token passes without a look at the counters."""
    try:
        # remote_addr is the client's address, also behind TRUSTED_PROXIES (ProxyFix).
        return authenticate(value, request.remote_addr, request.headers.get("User-Agent", ""))
    except InvalidTokenError as error:
        reason = error.reason
    try:
        throttle.failed(throttle.BEARER_TOKEN)
    except throttle.Refused as refused:
        raise BearerRefused(429, "too_many_requests", "Too many invalid tokens from this address: try again in "
                            f"{refused.retry_after} seconds.", reason=reason,
                            retry_after=refused.retry_after) from None
    raise BearerRefused(401, "invalid_token", f"The access token is not valid ({reason}).", reason=reason)


def bearer_of_request(request: Request) -> TokenView:
    """The live token the request presents, or BearerRefused (400 for two tokens, 401 for
    none; see authenticate_value)."""
    try:
        value = token_from_request(request)
    except TooManyTokensError as error:
        raise BearerRefused(400, "invalid_request", str(error)) from None
    if not value:
        raise BearerRefused(401, None, "An access token is required: send Authorization: Bearer <token>.")
    return authenticate_value(value)
