"""/api/v1/tenants/<name>/sessions: the login sessions ("tickets") of a tenant's users,
i.e. their session tokens (MANAGE_TICKETS). Ending them deletes those token rows, so the
users are logged out on their next request."""

from sqlalchemy import delete, select

from portal import clock
from portal.api import bp
from portal.api.auth import record, require
from portal.api.paging import keyset_page
from portal.api.schemas import PageQuery, SessionOut, SessionPage, SessionsEnded
from portal.api.spec import responses, spec
from portal.api.tenants import tenant_or_404
from portal.extensions import db
from portal.models import AccessToken, User

TAGS = ["sessions"]


def session_tokens(tenant):
    users = select(User.id).where(User.tenant_id == tenant.id)
    return AccessToken.source == "session", AccessToken.user_id.in_(users)


@bp.get("/tenants/<name>/sessions")
@require("MANAGE_TICKETS")
@spec.validate(resp=responses(200, SessionPage, 400, 404, 422), tags=TAGS)
def list_sessions(name: str, query: PageQuery):
    """List the live login sessions of the tenant's users (MANAGE_TICKETS)."""
    tenant = tenant_or_404(name)
    statement = select(AccessToken).where(
        *session_tokens(tenant), AccessToken.revoked_at.is_(None), AccessToken.expires_at > clock.now()
    )
    rows, next_after = keyset_page(statement, AccessToken.id, query.limit, query.after)
    return SessionPage(items=[SessionOut.of(t) for t in rows], next_after=next_after)


@bp.delete("/tenants/<name>/sessions")
@require("MANAGE_TICKETS")
@spec.validate(resp=responses(200, SessionsEnded, 400, 404), tags=TAGS)
def end_sessions(name: str):
    """End every login session of the tenant's users (MANAGE_TICKETS)."""
    tenant = tenant_or_404(name)
    result = db.session.execute(delete(AccessToken).where(*session_tokens(tenant)))
    record("tenant.sessions_ended", target=tenant, sessions_ended=result.rowcount)
    return SessionsEnded(ended=result.rowcount)
