"""/api/v1/tenants/<name>/sessions: the login sessions ("tickets") of a tenant's users,
i.e. their session tokens (MANAGE_TICKETS). Ending them logs every profile of the tenant
out, with or without session tokens (tokens.core.end_login_sessions). Administrators
belong to no tenant: their sessions are never listed or ended here."""

from sqlalchemy import select

from portal.domain import clock, users
from portal.api import bp
from portal.api.auth import record, require
from portal.api.paging import keyset_page
from portal.api.schemas import PageQuery, SessionOut, SessionPage, SessionsEnded
from portal.api.spec import responses, spec
from portal.api.tenants import tenant_or_404
from portal.models import AccessToken, User
from portal.models.token import ACTIVE
from portal.tokens.core import end_login_sessions

TAGS = ["sessions"]


def profile_ids(tenant):
    return select(User.id).where(User.tenant_id == tenant.id, users.PROFILE)


@bp.get("/tenants/<name>/sessions")
@require("MANAGE_TICKETS")
@spec.validate(resp=responses(200, SessionPage, 400, 404, 422), tags=TAGS)
def list_sessions(name: str, query: PageQuery):
    """List the live login sessions of the tenant's users (MANAGE_TICKETS)."""
    tenant = tenant_or_404(name)
    statement = select(AccessToken).where(
        AccessToken.source == "session", AccessToken.user_id.in_(profile_ids(tenant)),
        *AccessToken.in_state(ACTIVE, clock.now()),
    )
    rows, next_after = keyset_page(statement, AccessToken.id, query.limit, query.after)
    return SessionPage(items=[SessionOut.of(t) for t in rows], next_after=next_after)


@bp.delete("/tenants/<name>/sessions")
@require("MANAGE_TICKETS")
@spec.validate(resp=responses(200, SessionsEnded, 400, 404), tags=TAGS)
def end_sessions(name: str):
    """Log every user of the tenant out (MANAGE_TICKETS): `ended` counts those users."""
    tenant = tenant_or_404(name)
    logged_out, session_tokens = end_login_sessions(profile_ids(tenant))
    record("tenant.sessions_ended", target=tenant, users_logged_out=logged_out, sessions_ended=session_tokens)
    return SessionsEnded(ended=logged_out)
