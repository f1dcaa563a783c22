"""/api/v1/tenants/<name>/profiles: the tenant's users (MANAGE_PROFILES on the tenant).
A profile is only ever found through its own tenant: any other tenant answers 404.
Administrators are no tenant's profiles: never listed, 404 on read, change and delete."""

from flask import abort
from sqlalchemy import func, or_, select

from portal.domain import audit, users
from portal.api import bp
from portal.api.auth import current_token, fail, record, require
from portal.api.paging import keyset_page
from portal.api.schemas import ProfileCreate, ProfileListQuery, ProfileOut, ProfilePage, ProfileUpdate
from portal.api.spec import responses, spec
from portal.api.tenants import tenant_or_404
from portal.extensions import db
from portal.db.sql import in_id_range
from portal.models import Tenant, User
from portal.db.sql import escape_like

TAGS = ["profiles"]
PROFILE_ID = "/tenants/<name>/profiles/<int:profile_id>"


def profiles_of(tenant: Tenant):
    return select(User).where(User.tenant_id == tenant.id, users.PROFILE)


def profile_or_404(tenant: Tenant, profile_id: int) -> User:
    user = None
    if in_id_range(profile_id):
        user = db.session.scalar(profiles_of(tenant).where(User.id == profile_id))
    if user is None:
        abort(404, f"No profile {profile_id} in tenant {tenant.name}.")
    return user


@bp.get("/tenants/<name>/profiles")
@require("MANAGE_PROFILES")
@spec.validate(resp=responses(200, ProfilePage, 400, 404, 422), tags=TAGS)
def list_profiles(name: str, query: ProfileListQuery):
    """List a tenant's profiles; `q` searches username, email and name (MANAGE_PROFILES)."""
    tenant = tenant_or_404(name)
    statement = profiles_of(tenant)
    if query.q:
        pattern = f"%{escape_like(query.q.lower())}%"
        statement = statement.where(or_(
            func.lower(User.username).like(pattern, escape="\\"),
            func.lower(User.email).like(pattern, escape="\\"),
            func.lower(User.name).like(pattern, escape="\\"),
        ))
    total = db.session.scalar(select(func.count()).select_from(statement.subquery()))
    rows, next_after = keyset_page(statement, User.id, query.limit, query.after)
    return ProfilePage(items=[ProfileOut.of(u) for u in rows], total=total, next_after=next_after)


@bp.post("/tenants/<name>/profiles")
@require("MANAGE_PROFILES")
@spec.validate(resp=responses(201, ProfileOut, 400, 404, 409, 415, 422), tags=TAGS)
def create_profile(name: str, json: ProfileCreate):
    """Create a profile in the tenant, with a password or none (MANAGE_PROFILES)."""
    tenant = tenant_or_404(name)
    try:
        user = users.create(json.username, json.password, actor=audit.token_actor(current_token()),
                            email=json.email, name=json.name, tenant=tenant, active=json.active)
    except users.UsernameTakenError as error:
        fail(409, f"{error.message[0].upper()}{error.message[1:]}.", "duplicate_username", field=error.field)
    except users.UserError as error:
        fail(422, f"{error.field}: {error.message}.", "validation_error", field=error.field)
    db.session.commit()
    return ProfileOut.of(user), 201


@bp.get(PROFILE_ID)
@require("MANAGE_PROFILES")
@spec.validate(resp=responses(200, ProfileOut, 400, 404), tags=TAGS)
def read_profile(name: str, profile_id: int):
    """Read one profile of the tenant (MANAGE_PROFILES)."""
    user = profile_or_404(tenant_or_404(name), profile_id)
    return ProfileOut.of(user)


@bp.patch(PROFILE_ID)
@require("MANAGE_PROFILES")
@spec.validate(resp=responses(200, ProfileOut, 400, 404, 415, 422), tags=TAGS)
def update_profile(name: str, profile_id: int, json: ProfileUpdate):
    """Change a profile's email, name, password or active flag (MANAGE_PROFILES).
    A new password or deactivation ends the user's existing sessions."""
    user = profile_or_404(tenant_or_404(name), profile_id)
    changes = json.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        fail(422, "name cannot be null.", "validation_error", field="name")
    if changes.get("active", True) is None:
        fail(422, "active cannot be null.", "validation_error", field="active")
    users.update(user, **{field: changes[field] for field in ("email", "name", "active") if field in changes})
    if "password" in changes:
        users.set_password(user, changes["password"])
    record("user.updated", target=user, tenant=name, fields=sorted(changes))
    return ProfileOut.of(user)


@bp.delete(PROFILE_ID)
@require("MANAGE_PROFILES")
@spec.validate(resp=responses(204, None, 400, 404), tags=TAGS)
def delete_profile(name: str, profile_id: int):
    """Delete a profile; its tokens and sessions go with it (MANAGE_PROFILES)."""
    user = profile_or_404(tenant_or_404(name), profile_id)
    record("user.deleted", target=user, tenant=name, commit=False)
    users.delete(user)
    db.session.commit()
    return "", 204
