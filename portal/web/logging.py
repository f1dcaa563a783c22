"""Log lines: request ids, the text and JSON formats (LOG_FORMAT) of the application's lines
and gunicorn's, and keeping bearer tokens out of every one of them (URL redaction shared by the
app and gunicorn)."""

import json
import logging
import os
import re
from datetime import datetime, timezone
from urllib.parse import unquote, unquote_plus

from flask import has_request_context, request
from flask.logging import default_handler, wsgi_errors_stream
from gunicorn.glogging import Logger

from portal.config import log_format

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


# --- request ids ------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = "tessera.request_id"  # in the WSGI environ, which gunicorn's access log reads too
# What a trusted proxy may send (nginx's $request_id, a UUID, ...); anything else is replaced.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIds:
    """WSGI middleware: every request gets an id, the proxy's X-Request-ID when proxies are
    trusted (TRUSTED_PROXIES) and it is short and plain, else a new one; the answer carries it."""

    def __init__(self, wsgi_app, trust_proxy: bool):
        self.wsgi_app, self.trust_proxy = wsgi_app, trust_proxy

    def __call__(self, environ, start_response):
        sent = environ.get("HTTP_X_REQUEST_ID", "") if self.trust_proxy else ""
        request_id = sent if VALID_REQUEST_ID.fullmatch(sent) else os.urandom(16).hex()
        environ[REQUEST_ID_KEY] = request_id

        def start_with_id(status, headers, exc_info=None):
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_with_id)


def current_request_id() -> str | None:
    return request.environ.get(REQUEST_ID_KEY) if has_request_context() else None


# --- formats ------------------------------------------------------------------------------

# gunicorn's error-log layout, with the request id.
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] [%(request_id)s] %(name)s: %(message)s"
TEXT_DATE_FORMAT = r"[%Y-%m-%d %H:%M:%S %z]"
# gunicorn's access log in text: a timestamp first, the request id last.
ACCESS_LOG_FORMAT = '%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'


class TextFormatter(logging.Formatter):
    """The application's lines as text, each with its request's id (`-` outside a request)."""

    def __init__(self):
        super().__init__(TEXT_FORMAT, TEXT_DATE_FORMAT)

    def format(self, record):
        record.request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id when there is one,
    an access line's fields, the traceback of an exception."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = request_id
        line.update(getattr(record, "access", {}))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line)


def formatter_for(name: str) -> logging.Formatter:
    return JsonFormatter() if name == "json" else TextFormatter()


def configure_app_logging(app) -> None:
    """Every log line but gunicorn's (the application's and its libraries'), in LOG_FORMAT,
    to the WSGI error stream: gunicorn's error log under gunicorn, else standard error."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if getattr(handler, "tessera", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(wsgi_errors_stream)
    handler.tessera = True
    handler.setFormatter(formatter_for(app.config["LOG_FORMAT"]))
    root.addHandler(handler)
    app.logger.removeHandler(default_handler)  # Flask's own, if an earlier app added it


class RedactingLogger(Logger):
    """Gunicorn's logger, with token values removed from every access-log line and from
    its error log (an invalid request line is quoted there whole); in JSON with LOG_FORMAT=json.
    `logger_class` takes a class that "quacks like" gunicorn's Logger: this one overrides only
    its public methods (setup, access, atoms, the level methods) and reads its public attributes."""

    def setup(self, cfg):
        super().setup(cfg)
        self.json = log_format() == "json"
        if self.json:
            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.json:
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        method, path = environ.get("REQUEST_METHOD", "-"), redact(environ.get("RAW_URI", ""))
        fields = {
            "request_id": environ.get(REQUEST_ID_KEY),
            "method": method,
            "path": path,
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        self.access_log.info("%s %s %s", method, path, status, extra={"access": fields})
        return None

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
