"""/api/v1/access-tokens: master tokens list, create, read and delete other tokens.
Tokens are immutable, so there is no PATCH or PUT (405)."""

from sqlalchemy import select

from portal import audit, tokens
from portal.api import bp
from portal.api.auth import challenge, current_token, fail, master_required
from portal.api.paging import keyset_page
from portal.api.schemas import MAX_ID, TokenCreate, TokenCreated, TokenListQuery, TokenOut, TokenPage
from portal.api.spec import responses, spec
from portal.extensions import db
from portal.models import AccessToken, Application, User
from portal.tokens import ACTIONS, ANY
from portal.tokens import permissions as perms

TAGS = ["access tokens"]
TOKEN_ID = f"/access-tokens/<int(max={MAX_ID}):token_id>"


def token_or_404(token_id: int) -> AccessToken:
    return db.get_or_404(AccessToken, token_id, description=f"No access token with id {token_id}.")


def beyond_caller(caller: tokens.Bearer, requested: list[perms.Permission]) -> str | None:
    """The first permission the new token would have that the calling token lacks.

    Master does not bypass tenant permissions, so it cannot mint a token that does: each
    requested action must resolve to allowed for the caller on that tenant, and a `*`
    entry must not reach past a narrower entry the caller has for a tenant not named.
    """
    held = caller.permissions
    named = {entry.tenant for entry in requested}
    for entry in requested:
        actions = ACTIONS if ANY in entry.actions else sorted(entry.actions)
        for action in actions:
            if not perms.allows(held, action, entry.tenant):
                return f"{action} on {entry.tenant}"
        if entry.tenant == ANY:
            for own in held:
                if own.tenant != ANY and own.tenant not in named:
                    for action in actions:
                        if not own.allows(action):
                            return f"{action} on {own.tenant}"
    return None


@bp.get("/access-tokens")
@master_required
@spec.validate(resp=responses(200, TokenPage, 400, 422), tags=TAGS)
def list_tokens(query: TokenListQuery):
    """List access tokens (master only), oldest first; filter by application."""
    statement = select(AccessToken)
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
    user = None
    if json.user is not None:
        user = db.session.scalar(select(User).where(User.username == json.user))
        if user is None:
            fail(422, f"Unknown user {json.user}.", "validation_error", field="user")
    if json.expires_at is not None and json.expires_in is not None:
        fail(422, "Give expires_at or expires_in, not both.", "validation_error", field="expires_in")
    try:
        requested = perms.normalize([{"tenant": p.tenant, "actions": list(p.actions)}
                                     for p in json.tenant_permissions])
    except tokens.TokenError as error:
        fail(422, error.message, "validation_error", field=error.field)
    missing = beyond_caller(current_token(), requested)
    if missing:
        challenge(403, f"A token cannot grant more than it holds: this token lacks {missing}.",
                  "insufficient_scope", missing=missing)
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
    """Read one access token (master only); never its value."""
    token = token_or_404(token_id)
    return TokenOut.of(token)


@bp.delete(TOKEN_ID)
@master_required
@spec.validate(resp=responses(204, None, 400, 404), tags=TAGS)
def delete_token(token_id: int):
    """Delete an access token (master only): its value stops working at once."""
    token = token_or_404(token_id)
    tokens.delete(token, actor=audit.token_actor(current_token()))
    return "", 204
