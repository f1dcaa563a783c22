"""/api/v1/access-tokens: master tokens list, create, read and delete other tokens.
Tokens are immutable, so there is no PATCH or PUT (405).

A master token reaches only tokens within its own permissions (portal.tokens.permissions:
everything the other token allows, on any tenant, it allows too). Login-session tokens and
tokens of administrators are invisible (not listed, 404); a token bound to a user is
visible only with MANAGE_PROFILES on that user's tenant (the `*` entry for a user without
one), which creating such a token needs as well."""

from flask import abort
from sqlalchemy import or_, select

from portal import audit, tokens, users
from portal.api import bp
from portal.api.auth import current_token, fail, insufficient_scope, master_required
from portal.api.paging import keyset_page
from portal.api.schemas import TokenCreate, TokenCreated, TokenListQuery, TokenOut, TokenPage
from portal.api.spec import responses, spec
from portal.extensions import db
from portal.sql import in_id_range
from portal.models import AccessToken, Application, Tenant, User
from portal.tokens import ANY
from portal.tokens import permissions as perms

TAGS = ["access tokens"]
TOKEN_ID = "/access-tokens/<int:token_id>"
PROFILE_ACTION = "MANAGE_PROFILES"


def missing_to_bind(caller: tokens.TokenView, user: User) -> str | None:
    """What the caller lacks to bind a token to `user` (None: nothing). Administrators are
    refused before this: no permission reaches them."""
    tenant = user.tenant.name if user.tenant else ANY
    return None if perms.allows(caller.permissions, PROFILE_ACTION, tenant) else f"{PROFILE_ACTION} on {tenant}"


def reachable_users(caller: tokens.TokenView):
    """SQL: ids of the profiles the caller may manage (what `missing_to_bind` allows)."""
    reach = perms.reach(caller.permissions, PROFILE_ACTION)
    profiles = select(User.id).where(users.PROFILE)
    if reach.anywhere and not reach.tenants:
        return profiles
    if reach.anywhere:  # the `*` entry also covers users without a tenant
        excluded = select(Tenant.id).where(Tenant.name.in_(reach.tenants))
        return profiles.where(or_(User.tenant_id.is_(None), User.tenant_id.not_in(excluded)))
    return profiles.where(User.tenant_id.in_(select(Tenant.id).where(Tenant.name.in_(reach.tenants))))


def visible_to(caller: tokens.TokenView) -> list:
    """SQL conditions: the tokens this master token may see and delete."""
    return [
        AccessToken.source != "session",
        or_(AccessToken.user_id.is_(None), AccessToken.user_id.in_(reachable_users(caller))),
        perms.within_clause(caller.permissions),
    ]


def token_or_404(token_id: int) -> AccessToken:
    token = None
    if in_id_range(token_id):
        token = db.session.scalar(select(AccessToken).where(AccessToken.id == token_id,
                                                            *visible_to(current_token())))
    if token is None:
        abort(404, f"No access token with id {token_id}.")
    return token


def user_to_bind(username: str) -> User:
    """The user a new token is for: a profile the caller may manage (422 unknown or an
    administrator, 403 without MANAGE_PROFILES on its tenant)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        fail(422, f"Unknown user {username}.", "validation_error", field="user")
    if user.is_admin:
        fail(422, f"{username} is an administrator: the API makes no tokens for administrators.",
             "validation_error", field="user")
    missing = missing_to_bind(current_token(), user)
    if missing:
        insufficient_scope(f"A token for {username} needs {missing}, which this token lacks.", missing)
    return user


@bp.get("/access-tokens")
@master_required
@spec.validate(resp=responses(200, TokenPage, 400, 422), tags=TAGS)
def list_tokens(query: TokenListQuery):
    """List the access tokens this master token may see, oldest first; filter by application."""
    statement = select(AccessToken).where(*visible_to(current_token()))
    if query.application is not None:
        statement = statement.join(Application).where(Application.name == query.application)
    rows, next_after = keyset_page(statement, AccessToken.id, query.limit, query.after)
    return TokenPage(items=[TokenOut.of(t) for t in rows], next_after=next_after)


@bp.post("/access-tokens")
@master_required
@spec.validate(resp=responses(201, TokenCreated, 400, 409, 415, 422), tags=TAGS)
def create_token(json: TokenCreate):
    """Create an access token (master only). The value is in this response only."""
    application = db.session.scalar(select(Application).where(Application.name == json.application))
    if application is None:
        fail(422, f"Unknown application {json.application}.", "validation_error", field="application")
    user = user_to_bind(json.user) if json.user is not None else None
    if json.expires_at is not None and json.expires_in is not None:
        fail(422, "Give expires_at or expires_in, not both.", "validation_error", field="expires_in")
    try:
        requested = perms.normalize([{"tenant": p.tenant, "actions": list(p.actions)}
                                     for p in json.tenant_permissions])
    except tokens.TokenError as error:
        fail(422, error.message, "validation_error", field=error.field)
    missing = perms.beyond(current_token().permissions, requested)
    if missing:
        insufficient_scope(f"A token cannot grant more than it holds: this token lacks {missing}.", missing)
    try:
        issued = tokens.create_token(
            application=application, source="api", actor=audit.token_actor(current_token()), user=user,
            value=json.value, master=json.master, scope=json.scope, expires_at=json.expires_at,
            expires_in=json.expires_in,
            tenant_permissions=requested,
        )
    except tokens.DuplicateValueError as error:
        fail(409, "A token with this value already exists.", "duplicate_value", field=error.field)
    except tokens.TokenError as error:
        fail(422, error.message, "validation_error", field=error.field)
    body = TokenCreated(**TokenOut.of(issued.token).model_dump(), value=issued.value)
    return body, 201, {"Cache-Control": "no-store", "Pragma": "no-cache"}


@bp.get(TOKEN_ID)
@master_required
@spec.validate(resp=responses(200, TokenOut, 400, 404), tags=TAGS)
def read_token(token_id: int):
    """Read one access token this master token may see; never its value."""
    token = token_or_404(token_id)
    return TokenOut.of(token)


@bp.delete(TOKEN_ID)
@master_required
@spec.validate(resp=responses(204, None, 400, 404), tags=TAGS)
def delete_token(token_id: int):
    """Delete an access token this master token may see: its value stops working at once."""
    token = token_or_404(token_id)
    tokens.delete(token, actor=audit.token_actor(current_token()))
    return "", 204
