"""Error pages: HTML for people, JSON for the API and the OAuth endpoints."""

from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.extensions import db

JSON_PREFIXES = ("/api/", "/token", "/revoke", "/introspect", "/userinfo", "/jwks", "/.well-known/", "/healthz")

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
}


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
        db.session.rollback()
    description = error.description or ""
    if wants_json():
        response = json_error(status, description)
    else:
        response = current_app.make_response(
            (render_template("errors/error.html", status=status, name=error.name, description=description), status)
        )
    for name, value in error.get_headers():
        if name.lower() != "content-type":  # keeps Allow (405), WWW-Authenticate, Retry-After
            response.headers[name] = value
    return response


def handle_unexpected(error: Exception):
    db.session.rollback()
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError("Something went wrong on our side. It has been logged."))


def register(app) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
