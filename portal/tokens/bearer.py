"""Reading a bearer token from a request (RFC 6750 §2): header, form body or URL.

`accessTokenId` is accepted as an alias of `access_token` for Crafter Profile clients.
URL tokens can be turned off with ALLOW_QUERY_ACCESS_TOKEN=false.
"""

from flask import Request, current_app

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
