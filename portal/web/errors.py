"""Error pages: HTML for people, JSON for the API and the OAuth endpoints."""

import traceback

from flask import current_app, g, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from portal.web import metrics
from portal.extensions import db
from portal.web.logging import redact

JSON_PREFIXES = ("/api/", "/token", "/revoke", "/introspect", "/userinfo", "/jwks", "/.well-known/", "/healthz",
                 "/readyz", "/metrics", "/o/token", "/crafter-profile/")

ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    503: "temporarily_unavailable",
}
# The database cannot be reached, or cannot answer now (a restart, a lock, a full pool).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)
RETRY_AFTER_SECONDS = 5


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def json_error(status: int, message: str, error: str | None = None, **extra):
    body = {"error": error or ERROR_CODES.get(status, "error"), "message": message, **extra}
    response = jsonify(body)
    response.status_code = status
    return response


def handle_http_error(error: HTTPException):
    status = error.code or 500
    if status >= 500:
        rollback_quietly()
    description = error.description or ""
    if wants_json():
        response = json_error(status, description)
    else:
        response = current_app.make_response(
            (render_template("errors/error.html", status=status, name=error.name, description=description), status))
    for name, value in error.get_headers():
        if name.lower() != "content-type":  # keeps Allow (405), WWW-Authenticate, Retry-After
            response.headers[name] = value
    return response


def rollback_quietly() -> None:
    try:
        db.session.rollback()
    except DBAPIError:  # the connection is gone; the pool replaces it on the next checkout
        pass


def loggable(error: BaseException) -> str:
    """What a log line may say of an error. A database error's text carries the values of
    the statement (emails, password hashes) and DETAIL lines quoting them: only its kind."""
    if isinstance(error, DBAPIError):
        original = error.orig
        return f"{type(original).__name__} (SQLSTATE {getattr(original, 'sqlstate', None) or 'n/a'})"
    return f"{type(error).__name__}: {error}"


def log_error(message: str, error: BaseException) -> None:
    where = "".join(traceback.format_tb(error.__traceback__))
    current_app.logger.error("%s on %s %s: %s\n%s", message, request.method, redact(request.path), loggable(error),
                             where)


def handle_database_unavailable(error: Exception):
    log_error("database unavailable", error)
    metrics.database_error(error)
    g.database_unavailable = True  # the error page is rendered for an anonymous user (auth.sessions)
    return handle_http_error(ServiceUnavailable(
        "The database is not answering. Please try again in a few seconds.", retry_after=RETRY_AFTER_SECONDS))


def handle_unexpected(error: Exception):
    log_error("unhandled error", error)
    return handle_http_error(InternalServerError("Something went wrong on our side. It has been logged."))


def register(app) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    for error_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_class, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
