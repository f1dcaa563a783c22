"""/api/v1/access-tokens: master tokens list, create, read and delete other tokens.
Tokens are immutable, so there is no PATCH or PUT (405).

What a master token sees, binds and grants is portal.tokens.master's; here its answers
become HTTP: a token it may not see is 404, what it lacks is 403 with `missing`."""

from flask import abort
from sqlalchemy import select

from portal.domain import audit
from portal import tokens
from portal.api import bp
from portal.api.auth import current_token, fail, insufficient_scope, master_required
from portal.api.paging import keyset_page
from portal.api.schemas import TokenCreate, TokenCreated, TokenListQuery, TokenOut, TokenPage
from portal.api.spec import responses, spec
from portal.extensions import db
from portal.db.sql import in_id_range
from portal.models import AccessToken, Application
from portal.tokens import master
from portal.web.security import NO_STORE

TAGS = ["access tokens"]
TOKEN_ID = "/access-tokens/<int:token_id>"


def token_or_404(token_id: int) -> AccessToken:
    token = None
    if in_id_range(token_id):
        token = db.session.scalar(select(AccessToken).where(AccessToken.id == token_id,
                                                            *master.visible_to(current_token())))
    if token is None:
        abort(404, f"No access token with id {token_id}.")
    return token


def sentence(message: str) -> str:
    """A token-core refusal as the API words it."""
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


@bp.get("/access-tokens")
@master_required
@spec.validate(resp=responses(200, TokenPage, 400, 422), tags=TAGS)
def list_tokens(query: TokenListQuery):
    """List the access tokens this master token may see, oldest first; filter by application."""
    statement = select(AccessToken).where(*master.visible_to(current_token()))
    if query.application is not None:
        statement = statement.join(Application).where(Application.name == query.application)
    rows, next_after = keyset_page(statement, AccessToken.id, query.limit, query.after)
    return TokenPage(items=[TokenOut.of(t) for t in rows], next_after=next_after)


@bp.post("/access-tokens")
@master_required
@spec.validate(resp=responses(201, TokenCreated, 400, 409, 415, 422), tags=TAGS)
def create_token(json: TokenCreate):
    """Create an access token (master only). The value is in this response only."""
    try:
        issued = master.create(
            current_token(), application=json.application, user=json.user, value=json.value, master=json.master,
            scope=json.scope, expires_at=json.expires_at, expires_in=json.expires_in,
            tenant_permissions=[{"tenant": p.tenant, "actions": list(p.actions)} for p in json.tenant_permissions],
        )
    except tokens.NotPermittedError as error:
        insufficient_scope(sentence(error.message), error.missing)
    except tokens.DuplicateValueError as error:
        fail(409, "A token with this value already exists.", "duplicate_value", field=error.field)
    except tokens.TokenError as error:
        fail(422, sentence(error.message), "validation_error", field=error.field)
    body = TokenCreated(**TokenOut.of(issued.token).model_dump(), value=issued.value)
    return body, 201, NO_STORE


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
