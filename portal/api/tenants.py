"""/api/v1/tenants: list and count (READ_TENANT on *, less the tenants whose own entry
denies it), create (CREATE_TENANT on *), read, update the label, delete
(READ_/UPDATE_/DELETE_TENANT on that tenant)."""

from flask import abort
from sqlalchemy import bindparam, func, select

from portal.domain import audit, tenants
from portal.api import bp
from portal.api.auth import current_token, fail, require
from portal.api.paging import keyset_page
from portal.api.schemas import PageQuery, TenantCreate, TenantOut, TenantPage, TenantUpdate
from portal.api.spec import responses, spec
from portal.db.connections import hot_read
from portal.extensions import db
from portal.models import Tenant
from portal.tokens import TokenView
from portal.tokens import permissions as perms

TAGS = ["tenants"]


_TENANT_BY_NAME = select(Tenant).where(Tenant.name == bindparam("name"))
# A read needs no ORM object: the columns the answer shows, by the unique name.
_TENANT_READ = select(Tenant.__table__.c["name", "label", "created_at"]).where(
    Tenant.__table__.c.name == bindparam("name"))


def readable_tenants(token: TokenView):
    """SQL: the tenants on which `token` may READ_TENANT (its own entry wins over `*`)."""
    reach = perms.reach(token.permissions, "READ_TENANT")
    return Tenant.name.not_in(reach.tenants) if reach.anywhere else Tenant.name.in_(reach.tenants)


def tenant_or_404(name: str) -> Tenant:
    tenant = db.session.scalar(_TENANT_BY_NAME, {"name": name})
    if tenant is None:
        abort(404, f"No tenant named {name}.")
    return tenant


@bp.get("/tenants")
@require("READ_TENANT", tenant_arg=None)
@spec.validate(resp=responses(200, TenantPage, 400, 422), tags=TAGS)
def list_tenants(query: PageQuery):
    """List the tenants the token may read, with their count (READ_TENANT on *; a tenant
    whose own entry denies READ_TENANT is left out)."""
    statement = select(Tenant).where(readable_tenants(current_token()))
    rows, next_after = keyset_page(statement, Tenant.id, query.limit, query.after)
    total = db.session.scalar(select(func.count()).select_from(statement.subquery()))
    return TenantPage(items=[TenantOut.of(t) for t in rows], total=total, next_after=next_after)


@bp.post("/tenants")
@require("CREATE_TENANT", tenant_arg=None)
@spec.validate(resp=responses(201, TenantOut, 400, 409, 415, 422), tags=TAGS)
def create_tenant(json: TenantCreate):
    """Create a tenant (CREATE_TENANT on *)."""
    try:
        tenant = tenants.create_tenant(json.name, json.label, actor=audit.token_actor(current_token()))
    except tenants.TenantNameTakenError:
        fail(409, f"A tenant named {json.name} already exists.", "duplicate_name", field="name")
    except tenants.TenantError as error:
        fail(422, error.message, "validation_error", field=error.field)
    return TenantOut.of(tenant), 201


@bp.get("/tenants/<name>")
@require("READ_TENANT")
@spec.validate(resp=responses(200, TenantOut, 400, 404), tags=TAGS)
def read_tenant(name: str):
    """Read one tenant (READ_TENANT on it)."""
    tenant = hot_read(_TENANT_READ, {"name": name}).first()
    if tenant is None:
        abort(404, f"No tenant named {name}.")
    return TenantOut.of(tenant)


@bp.patch("/tenants/<name>")
@require("UPDATE_TENANT")
@spec.validate(resp=responses(200, TenantOut, 400, 404, 415, 422), tags=TAGS)
def update_tenant(name: str, json: TenantUpdate):
    """Change a tenant's label (UPDATE_TENANT on it); the name never changes."""
    tenant = tenant_or_404(name)
    try:
        tenants.rename_tenant(tenant, json.label, actor=audit.token_actor(current_token()))
    except tenants.TenantError as error:
        fail(422, error.message, "validation_error", field=error.field)
    return TenantOut.of(tenant)


@bp.delete("/tenants/<name>")
@require("DELETE_TENANT")
@spec.validate(resp=responses(204, None, 400, 404, 409), tags=TAGS)
def delete_tenant(name: str):
    """Delete a tenant (DELETE_TENANT on it); refused (409) while users belong to it."""
    tenant = tenant_or_404(name)
    try:
        tenants.delete_tenant(tenant, actor=audit.token_actor(current_token()))
    except tenants.TenantNotEmptyError as error:
        fail(409, error.message[0].upper() + error.message[1:] + ".", "tenant_not_empty")
    return "", 204
