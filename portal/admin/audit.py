"""The audit log: newest first, filtered by actor, action and target; keyset by id."""

import re

from flask import render_template, request, url_for
from sqlalchemy import select

from portal.admin import bp
from portal.admin.queries import id_arg, split_page, text_arg
from portal.extensions import db
from portal.models import AuditEvent

PAGE_SIZE = 100
ISO_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|\+00:00)?$")
# target_type -> (the page of such a target, its id argument)
TARGET_PAGES = {
    "access_token": ("admin.tokens_detail", "token_id"),
    "application": ("admin.applications_detail", "application_id"),
    "user": ("admin.users_detail", "user_id"),
    "tenant": ("admin.tenants_detail", "tenant_id"),
}
TARGET_NAMES = {"access_token": "token"}


@bp.app_template_global()
def audit_target(event: AuditEvent) -> dict:
    """How an event's target reads ("token tsr_AbCd… #42") and the page it links to, if any."""
    kind = TARGET_NAMES.get(event.target_type, event.target_type.replace("_", " "))
    label = event.target_label + ("…" if event.target_type == "access_token" and event.target_label else "")
    text = " ".join(part for part in (kind, label, f"#{event.target_id}" if event.target_id else "") if part)
    page = TARGET_PAGES.get(event.target_type)
    url = None
    if page and event.target_id.isdigit():
        url = url_for(page[0], **{page[1]: int(event.target_id)})
    return {"text": text, "url": url}


@bp.app_template_filter("readable_details")
def readable_details(details: dict | None) -> list[tuple[str, str]]:
    """An event's details as (label, text) pairs a person reads: no Python repr."""
    return [(key.replace("_", " "), readable(value)) for key, value in (details or {}).items()]


def readable(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list) and all(isinstance(item, dict) and "tenant" in item for item in value):
        return "; ".join(f"{item['tenant']}: " + ("all actions" if "*" in (item.get("actions") or [])
                                                   else ", ".join(item.get("actions") or []) or "no actions")
                         for item in value)
    if isinstance(value, list):
        return ", ".join(readable(item) for item in value)
    if isinstance(value, dict) and value.keys() == {"from", "to"}:
        return f"{readable(value['from'])} → {readable(value['to'])}"
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {readable(item)}" for key, item in value.items())
    if isinstance(value, str) and (moment := ISO_MOMENT.match(value)):
        return f"{moment.group(1)} {moment.group(2)} UTC"
    return str(value)


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
    events, last = split_page(events, PAGE_SIZE)
    next_url = url_for("admin.audit", before=last.id, actor=actor or None, action=action or None,
                       target=target or None) if last else None
    known_actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    return render_template("admin/audit/list.html", history=events, next_url=next_url, actor=actor,
                           action=action, target=target, known_actions=known_actions)
