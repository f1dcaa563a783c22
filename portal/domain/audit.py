"""Recording audit events. Callers commit; nothing secret may go into `details`."""

from flask import has_request_context, request
from flask_login import current_user

from portal.extensions import db
from portal.models import AuditEvent

SYSTEM = "system"


def current_actor() -> str:
    """The logged-in user's name, or `system` outside a browser session."""
    if has_request_context() and getattr(current_user, "is_authenticated", False):
        return current_user.username
    return SYSTEM


def token_actor(token) -> str:
    """How a bearer token appears as an actor: its hint and application."""
    return f"token {token.hint} ({token.application_name})"


def record(action: str, *, actor: str | None = None, target=None, target_type: str = "",
           target_id: str = "", target_label: str = "", **details) -> AuditEvent:
    """Add an audit event to the session (committed with the caller's transaction)."""
    if target is not None:
        target_type = target_type or target.__tablename__.rstrip("s")
        target_id = target_id or str(target.id)
        target_label = target_label or label_for(target)
    event = AuditEvent(
        actor=actor or current_actor(),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:200],
        source_address=request.remote_addr if has_request_context() else None,
        details={key: value for key, value in details.items() if value is not None},
    )
    db.session.add(event)
    return event


def label_for(target) -> str:
    for attribute in ("hint", "username", "name", "client_id"):
        value = getattr(target, attribute, None)
        if value:
            return str(value)
    return ""
