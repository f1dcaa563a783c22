"""The one read model of a token: what bearer authentication, introspection, the OAuth
grants and the API see of a token, read by its access value or by its refresh value.
The ORM row (`models.AccessToken`) is what the token core writes and the admin pages
edit; readers get a TokenView."""

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, select

from portal.domain import clock
from portal.models import AccessToken, Application, TokenPermission, User
from portal.models.token import ACTIVE, token_state
from portal.tokens import permissions as perms

ACCESS, REFRESH = "access_token", "refresh_token"  # RFC 7009 / 7662 token type hints


@dataclass(frozen=True)
class TokenUser:
    """The token's user, read with the token (no second query): what /userinfo and the
    API's permission checks need."""

    id: int
    sub: str
    username: str
    name: str | None
    email: str | None
    updated_at: datetime | None
    active: bool


@dataclass(frozen=True)
class TokenView:
    """A token seen as one kind: its access token, or the refresh token issued with it
    (which has its own expiry and revocation)."""

    id: int
    kind: str
    hint: str
    source: str
    master: bool
    scope: str
    application_id: int
    application_name: str
    client_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    grant_id: str | None
    auth_time: datetime | None
    audience: str | None  # the resources (RFC 8707) it was issued for, space-separated
    granted_resources: str | None  # the resources its grant was given (what a refresh may ask for)
    user: TokenUser | None
    permissions: tuple[perms.Permission, ...]

    @property
    def state(self) -> str:
        return token_state(self.revoked_at, self.expires_at, self.user.active if self.user else None)

    @property
    def live(self) -> bool:
        return self.state == ACTIVE

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user else None

    @property
    def tenant_permissions(self) -> list[dict]:
        """The permissions as the API and introspection show them."""
        return [p.as_dict() for p in self.permissions]

    def allows(self, action: str, tenant: str = perms.ANY) -> bool:
        return perms.allows(self.permissions, action, tenant)

    def expires_in(self) -> int:
        return max(0, int((self.expires_at - clock.now()).total_seconds()))


_tokens, _permissions = AccessToken.__table__, TokenPermission.__table__
_applications, _users = Application.__table__, User.__table__
_USER_COLUMNS = [_users.c[f.name] for f in fields(TokenUser)]
_TOKEN_COLUMNS = ("id", "hint", "source", "master", "scope", "application_id")
_OF_THE_KIND = 5  # application name and client id, issued_at, the kind's expiry and revocation
_AFTER_EXPIRY = ("last_used_at", "grant_id", "auth_time", "audience", "granted_resources")


def _query(hash_column, expires_column, revoked_column):
    """A token with its application, user and permissions (one result row per permission),
    by the hash of one of its values: one indexed query that builds no ORM objects,
    because it runs on every API call, userinfo and introspection request."""
    joins = (_tokens.join(_applications, _applications.c.id == _tokens.c.application_id)
             .outerjoin(_users, _users.c.id == _tokens.c.user_id)
             .outerjoin(_permissions, _permissions.c.token_id == _tokens.c.id))
    return (
        select(*(_tokens.c[name] for name in _TOKEN_COLUMNS), _applications.c.name, _applications.c.client_id,
               _tokens.c.issued_at, expires_column, revoked_column, *(_tokens.c[name] for name in _AFTER_EXPIRY),
               *_USER_COLUMNS, _permissions.c.tenant, _permissions.c.actions)
        .select_from(joins)
        .where(hash_column == bindparam("token_hash"))
        .order_by(_permissions.c.position)
    )


QUERIES = {
    ACCESS: _query(_tokens.c.token_hash, _tokens.c.expires_at, _tokens.c.revoked_at),
    REFRESH: _query(_tokens.c.refresh_token_hash, _tokens.c.refresh_expires_at, _tokens.c.refresh_revoked_at),
}
_USER_AT = len(_TOKEN_COLUMNS) + _OF_THE_KIND + len(_AFTER_EXPIRY)
_PERMISSION_AT = _USER_AT + len(_USER_COLUMNS)


def view_of_rows(rows, kind: str) -> TokenView:
    """The view built from the result rows of QUERIES[kind] (at least one row)."""
    first = rows[0]
    (token_id, hint, source, master, scope, application_id, application_name, client_id, issued_at,
     expires_at, revoked_at, last_used_at, grant_id, auth_time, audience, granted_resources) = first[:_USER_AT]
    user_columns = first[_USER_AT:_PERMISSION_AT]
    return TokenView(
        id=token_id, kind=kind, hint=hint, source=source, master=master, scope=scope or "",
        application_id=application_id, application_name=application_name, client_id=client_id,
        issued_at=issued_at, expires_at=expires_at, revoked_at=revoked_at, last_used_at=last_used_at,
        grant_id=grant_id, auth_time=auth_time, audience=audience, granted_resources=granted_resources,
        user=TokenUser(*user_columns) if user_columns[0] is not None else None,
        permissions=tuple(perms.Permission(row[_PERMISSION_AT], frozenset(row[_PERMISSION_AT + 1].split()))
                          for row in rows if row[_PERMISSION_AT] is not None),
    )
