"""Bearer authentication for /api/v1 and the permission decorators.

Each request costs one indexed lookup by token hash (tokens.authenticate). The decorators
go outside spectree's validation, so a caller without a good token learns nothing about
request bodies: 401/403 come before 400/415/422.
"""

from collections.abc import Callable
from functools import wraps

from flask import abort, g, request
from pydantic import ValidationError

from portal.domain import audit
from portal.web.errors import json_error
from portal.extensions import db
from portal.tokens import ANY, TokenView
from portal.tokens.bearer import BearerRefused, bearer_of_request

JSON_METHODS = ("POST", "PUT", "PATCH")


def refuse(refused: BearerRefused, **extra):
    """Abort with a JSON error and the refusal's headers (RFC 6750's WWW-Authenticate, or
    Retry-After)."""
    response = json_error(refused.status, refused.description, error=refused.error or "missing_token", **extra)
    response.headers.update(refused.headers)
    abort(response)


def insufficient_scope(message: str, missing: str):
    """403 insufficient_scope (RFC 6750 §3.1); `missing` names the permission."""
    refuse(BearerRefused(403, "insufficient_scope", message), missing=missing)


def fail(status: int, message: str, error: str | None = None, **extra):
    abort(json_error(status, message, error=error, **extra))


def current_token() -> TokenView:
    return g.api_token


def authenticate_request() -> TokenView:
    try:
        token = bearer_of_request(request)
    except BearerRefused as refused:
        refuse(refused)
    g.api_token = token
    return token


def takes_json(view) -> bool:
    """Whether spectree validates a JSON body for this view."""
    from portal.api.spec import spec  # spec.py imports this module's hook

    metadata = spec.get_function_metadata(view)
    return metadata is not None and metadata.json is not None


def check_body(view) -> None:
    """Bodies of endpoints that take JSON: JSON, well-formed, an object (spectree then
    validates the fields; it would otherwise read a malformed body as {})."""
    if request.method not in JSON_METHODS or not takes_json(view):
        return
    if not request.is_json:
        if request.mimetype or request.content_length or request.get_data(cache=True):
            fail(415, "Send the body as JSON (Content-Type: application/json).", "unsupported_media_type")
        return  # no body at all: validated as {}, so missing required fields are named in the 422
    if not request.get_data(cache=True):
        return
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: malformed for us
        body = None
    if body is None:
        fail(400, "The body is not valid JSON.", "malformed_json", field="body")
    if not isinstance(body, dict):
        fail(422, "The body must be a JSON object.", "validation_error", field="body")


def guarded(check: Callable[[TokenView, dict], str | None]):
    """Authenticate, then run `check(token, view_kwargs)`: it returns the missing
    permission (403) or None."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = authenticate_request()
            missing = check(token, kwargs)
            if missing:
                insufficient_scope(f"This token lacks {missing}.", missing)
            check_body(view)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def require(action: str, tenant_arg: str | None = "name"):
    """Needs `action` on the tenant named by the URL argument `tenant_arg` (None: on `*`)."""

    def check(token, kwargs):
        tenant = kwargs.get(tenant_arg, ANY) if tenant_arg else ANY
        return None if token.allows(action, tenant) else f"{action} on {tenant}"

    return guarded(check)


master_required = guarded(lambda token, kwargs: None if token.master else "the master flag")


def record(action: str, commit: bool = True, **kwargs) -> None:
    """Audit an API action as done by the calling token (hint and application), in the
    same transaction as the change it describes; commit unless told not to."""
    audit.record(action, actor=audit.token_actor(current_token()), **kwargs)
    if commit:
        db.session.commit()


def validation_failed(error: ValidationError):
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    first = problems[0] if problems else {"loc": (), "msg": "invalid"}
    location = list(first.get("loc", ()))
    field = field_path(location) or "body"
    message = f"{field}: {first.get('msg', 'invalid')}"
    listed = [{"field": field_path(list(p.get("loc", ()))) or "body", "message": p.get("msg", "")}
              for p in problems]
    return json_error(422, message, error="validation_error", field=field, errors=listed)


def field_path(location: list) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def before_handler(req, resp, req_validation_error, instance, model_adapter) -> None:
    """spectree hook: our JSON error shape instead of pydantic's raw list."""
    if req_validation_error is not None:
        abort(validation_failed(req_validation_error))
