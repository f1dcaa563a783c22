"""The audit log: newest first, filtered by actor, action and target; keyset by id."""

from flask import render_template, request, url_for
from sqlalchemy import select

from portal.admin import bp
from portal.admin.queries import id_arg, text_arg
from portal.extensions import db
from portal.models import AuditEvent

PAGE_SIZE = 100


@bp.route("/audit", endpoint="audit")
def audit_list():
    """Every recorded admin action and token event."""
    actor = text_arg(request.args, "actor", 200)
    action = text_arg(request.args, "action", 64)
    target = text_arg(request.args, "target", 200)
    statement = select(AuditEvent)
    if actor:
        statement = statement.where(AuditEvent.actor == actor)
    if action:
        statement = statement.where(AuditEvent.action == action)
    if target:
        kind, _, ident = target.partition(":")
        if ident:  # "access_token:42"
            statement = statement.where(AuditEvent.target_type == kind, AuditEvent.target_id == ident)
        else:
            statement = statement.where(AuditEvent.target_label == target)
    before = id_arg(request.args, "before")
    if before:
        statement = statement.where(AuditEvent.id < before)
    events = list(db.session.scalars(statement.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE + 1)))
    next_url = None
    if len(events) > PAGE_SIZE:
        events = events[:PAGE_SIZE]
        args = {k: v for k, v in {"actor": actor, "action": action, "target": target}.items() if v}
        next_url = url_for("admin.audit", before=events[-1].id, **args)
    known_actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    return render_template("admin/audit/list.html", history=events, next_url=next_url, actor=actor,
                           action=action, target=target, known_actions=known_actions)
