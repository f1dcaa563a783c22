"""Tenants: the rules the admin form, the API and the CLI share (the pattern of
portal/domain/applications.py). A tenant's name is a slug that never changes; its label is the
display name, which may."""

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.domain import audit
from portal.extensions import db
from portal.models import Tenant, TokenPermission, User
from portal.domain.rules import RuleError
from portal.domain.words import plural

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_RULE = "1 to 64 lower-case letters, digits, - and _, starting with a letter or digit (a slug such as site1)"
LABEL_MAX_LENGTH = 200


class TenantError(RuleError):
    """Input the tenant rules refuse; `field` names the part at fault."""


class TenantNameTakenError(TenantError):
    def __init__(self, name: str):
        super().__init__(f"a tenant named {name} already exists", "name")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise TenantError(f"a tenant name needs {NAME_RULE}", "name")
    return name


def check_label(label: str) -> str:
    label = (label or "").strip()
    if not label or len(label) > LABEL_MAX_LENGTH:
        raise TenantError(f"a label needs 1 to {LABEL_MAX_LENGTH} characters", "label")
    return label


def create_tenant(name: str, label: str | None = None, *, actor: str) -> Tenant:
    """Check, add, audit and commit a tenant (the label defaults to the name)."""
    name = check_name(name)
    label = check_label(label if label is not None else name)
    if db.session.scalar(select(Tenant.id).where(Tenant.name == name)):
        raise TenantNameTakenError(name)
    tenant = Tenant(name=name, label=label)
    db.session.add(tenant)
    try:
        db.session.flush()
    except IntegrityError:  # created by a concurrent request
        db.session.rollback()
        raise TenantNameTakenError(name) from None
    audit.record("tenant.created", actor=actor, target=tenant)
    db.session.commit()
    return tenant


def rename_tenant(tenant: Tenant, label: str, *, actor: str) -> None:
    """A new label (the name never changes); audited and committed."""
    previous, tenant.label = tenant.label, check_label(label)
    audit.record("tenant.renamed", actor=actor, target=tenant, previous_label=previous, label=tenant.label)
    db.session.commit()


class TenantNotEmptyError(TenantError):
    """Users belong to the tenant, or tokens grant permissions on it."""


def users_of(tenant: Tenant) -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant.id))


def tokens_granting_on(tenant: Tenant):
    """SQL: the ids of the tokens with a permission entry naming the tenant."""
    return select(TokenPermission.token_id).where(TokenPermission.tenant == tenant.name).distinct()


def delete_tenant(tenant: Tenant, *, actor: str) -> None:
    """Delete a tenant no user belongs to and no token grants on (a tenant made later with
    the same name would inherit those grants; permissions never change in place, so those
    tokens are replaced or deleted first); audited and committed."""
    users = users_of(tenant)
    if users:
        raise TenantNotEmptyError(f"tenant {tenant.name} still has {plural(users, 'user')}; move or delete them first")
    granting = db.session.scalar(select(func.count()).select_from(tokens_granting_on(tenant).subquery()))
    if granting:
        verb = "grants" if granting == 1 else "grant"
        raise TenantNotEmptyError(f"{plural(granting, 'token')} {verb} permissions on tenant {tenant.name}; "
                                  "replace or delete them first")
    audit.record("tenant.deleted", actor=actor, target=tenant)
    db.session.delete(tenant)
    db.session.commit()
