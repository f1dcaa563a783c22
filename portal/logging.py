"""Keeping bearer tokens out of logs and gunicorn's own error pages: URL redaction shared
by the app and gunicorn."""

import json
import re
from urllib.parse import unquote, unquote_plus

from gunicorn import util
from gunicorn.glogging import Logger

SECRET_PARAMETERS = frozenset(name.lower() for name in (
    "access_token", "accessTokenId", "refresh_token", "code", "client_secret", "token", "id_token_hint",
    "password"))
# One `name=value` of a query string: at its start, or after `?` or `&`. A name holds no `?`
# (so a path with its query, `/x?access_token=...`, is read from the `?`). A value runs to the
# next `&` or whitespace (`;` is not a separator: the application reads it as part of the value).
QUERY_PAIR = re.compile(r"(?:^|(?<=[?&]))([^=&?\s]*)=([^&\s]*)")


def redact_pair(match: re.Match) -> str:
    name = match.group(1)
    # The application decodes names (`%61ccess_token` is `access_token`), so the redactor does too.
    if unquote_plus(name).lower() in SECRET_PARAMETERS:
        return f"{name}=[REDACTED]"
    return match.group(0)


# Crafter Profile's access-token API takes a token's value in the path (portal.compat.crafter).
TOKEN_PATH = "/crafter-profile/api/1/access_token/"
TOKEN_PATH_NAMES = ("create", "all")
# A path: at the start, or after whitespace or a quote, with its scheme and host if any.
URL_PATH = re.compile(r"(?:^|(?<=[\s\"]))((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s\"]*)?)(/[^?\s\"]*)")


def redact_path(match: re.Match) -> str:
    host, path = match.groups()
    # Read as the application routes it: decoded (`%5F` is `_`), repeated slashes merged.
    routed = re.sub("/{2,}", "/", unquote(path))
    if not routed.startswith(TOKEN_PATH) or routed[len(TOKEN_PATH):].strip("/") in TOKEN_PATH_NAMES:
        return match.group(0)
    deleted = "/delete" if routed.rstrip("/").endswith("/delete") else ""
    return f"{host}{TOKEN_PATH}[REDACTED]{deleted}"


def redact(text: str) -> str:
    """Replace the value of every secret-carrying query parameter with [REDACTED], in a
    URL, a request line (`GET /x?y HTTP/1.1`) or a bare query string; and a token value
    in a path of the Crafter access-token API."""
    text = QUERY_PAIR.sub(redact_pair, text or "")
    if "crafter-profile" in text or "%" in text:
        text = URL_PATH.sub(redact_path, text)
    return text


def redacted(args: tuple) -> tuple:
    return tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)


class RedactingLogger(Logger):
    """Gunicorn's logger, with token values removed from every access-log line and from
    its error log (an invalid request line is quoted there whole)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "U", "{raw_uri}e"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms

    def critical(self, msg, *args, **kwargs):
        super().critical(redact(str(msg)), *redacted(args), **kwargs)

    def error(self, msg, *args, **kwargs):
        super().error(redact(str(msg)), *redacted(args), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(redact(str(msg)), *redacted(args), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(redact(str(msg)), *redacted(args), **kwargs)


# gunicorn answers requests it cannot parse itself (400, 414, 431), before the application
# sees them, with an HTML page quoting the request line: Tessera's JSON error shape instead.
GUNICORN_ERROR_CODES = {414: "uri_too_long", 431: "request_header_fields_too_large"}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": GUNICORN_ERROR_CODES.get(status_int, "invalid_request"),
                       "message": f"{reason}: {redact(mesg)}" if mesg else reason})
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin-1"))


def use_json_error_pages() -> None:
    """Make gunicorn's own error answers JSON (called by portal.gunicorn_config; the test of
    over-long requests in tests/test_live.py guards this against a gunicorn upgrade)."""
    util.write_error = write_json_error
