"""Keeping bearer tokens out of logs: URL redaction shared by the app and gunicorn."""

import re
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

SECRET_PARAMETERS = frozenset(name.lower() for name in (
    "access_token", "accessTokenId", "refresh_token", "code", "client_secret", "token", "id_token_hint",
    "password"))
# One `name=value` of a query string: at its start, or after `?` or `&`. A value runs to the
# next `&` or whitespace (`;` is not a separator: the application reads it as part of the value).
QUERY_PAIR = re.compile(r"(?:^|(?<=[?&]))([^=&\s]*)=([^&\s]*)")


def redact_pair(match: re.Match) -> str:
    name = match.group(1)
    # The application decodes names (`%61ccess_token` is `access_token`), so the redactor does too.
    if unquote_plus(name).lower() in SECRET_PARAMETERS:
        return f"{name}=[REDACTED]"
    return match.group(0)


def redact(text: str) -> str:
    """Replace the value of every secret-carrying query parameter with [REDACTED], in a
    URL, a request line (`GET /x?y HTTP/1.1`) or a bare query string."""
    return QUERY_PAIR.sub(redact_pair, text or "")


class RedactingLogger(Logger):
    """Gunicorn's logger, with token values removed from every access-log line."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "U", "{raw_uri}e"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms
