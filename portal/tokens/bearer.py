"""Reading a bearer token from a request (RFC 6750 §2): header, form body or URL.

`accessTokenId` is accepted as an alias of `access_token` for Crafter Profile clients.
URL tokens can be turned off with ALLOW_QUERY_ACCESS_TOKEN=false.
"""

from flask import Request, current_app

from portal import metrics, throttle
from portal.tokens.core import authenticate
from portal.tokens.view import TokenView
from portal.tokens.errors import InvalidTokenError

PARAMETERS = ("access_token", "accessTokenId")


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


class BearerRefused(Exception):
    """Why a request's bearer token does not let it in: an HTTP status, the RFC 6750 error
    code (None when no token was sent) and a sentence for people."""

    def __init__(self, status: int, error: str | None, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def bearer_of_request(request: Request) -> TokenView:
    """The one door for bearer tokens (the API and /userinfo): the live token the request
    presents, or BearerRefused. Failed tokens count against the address (portal.throttle)."""
    try:
        value = token_from_request(request)
    except TooManyTokensError as error:
        raise BearerRefused(400, "invalid_request", str(error)) from None
    if not value:
        raise BearerRefused(401, None, "An access token is required: send Authorization: Bearer <token>.")
    if throttle.blocked(throttle.BEARER):
        metrics.throttled("bearer")
        raise BearerRefused(429, "too_many_requests", "Too many invalid tokens from this address: "
                                                      "try again in a minute.")
    try:
        return authenticate(value)
    except InvalidTokenError as error:
        throttle.count_failure(throttle.BEARER)
        metrics.authentication_failed("bearer")
        raise BearerRefused(401, "invalid_token", f"The access token is not valid ({error.reason}).") from None
