"""Creating, finding, validating and ending tokens: the only code that writes token rows."""

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete as sql_delete
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import audit, clock
from portal.connections import hot_connection, hot_read
from portal.extensions import db
from portal.models import AccessToken, Application, ClientRecord, Tenant, TokenPermission, User
from portal.models.token import ACTIVE, WHY_NOT_LIVE, token_state
from portal.tokens import permissions as perms
from portal.tokens.errors import DuplicateValueError, InvalidTokenError, TokenError
from portal.tokens.jwt_format import jwt_format_enabled, sign_access_token
from portal.tokens.values import MAX_VALUE_LENGTH, check_custom_value, generate_value, hash_value, hint_for

PORTAL_APPLICATION = "portal"
PERSON_SOURCES = ("admin", "api")  # tokens made by create_token; grants and logins have their own
# last_used_at is written at most this often per token, to keep reads cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# The longest lifetime a token may be given, whether as expires_in or as expires_at.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
MAX_LIFETIME_WORDS = "ten years"

_tokens, _permissions = AccessToken.__table__, TokenPermission.__table__
_applications, _users = Application.__table__, User.__table__


@dataclass
class IssuedToken:
    """A new token's id and its value, which is shown once and never stored."""

    id: int
    value: str

    @property
    def token(self) -> AccessToken:
        """The new row, loaded on first use (OAuth issuance never needs it)."""
        return db.session.get(AccessToken, self.id)


@dataclass(frozen=True)
class BearerUser:
    """The token's user, as /userinfo shows it (read with the token: no second query)."""

    sub: str
    username: str
    name: str | None
    email: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Bearer:
    """A live token as a request that presents it sees it (see `authenticate`)."""

    id: int
    hint: str
    master: bool
    scope: str
    application_id: int
    application_name: str
    user_id: int | None
    user: BearerUser | None
    last_used_at: datetime | None
    permissions: tuple[perms.Permission, ...]


def token_allows(token: Bearer, action: str, tenant: str = perms.ANY) -> bool:
    return perms.allows(token.permissions, action, tenant)


def check_tenants_exist(permission_list: Iterable[perms.Permission]) -> None:
    names = {p.tenant for p in permission_list if p.tenant != perms.ANY}
    if not names:
        return
    known = set(db.session.scalars(select(Tenant.name).where(Tenant.name.in_(names))))
    missing = sorted(names - known)
    if missing:
        raise TokenError(f"unknown tenant {', '.join(missing)}", "tenant_permissions")


def resolve_expiry(expires_at: datetime | None, expires_in: int | None, now: datetime) -> datetime:
    """The expiry of a new or extended token: `expires_at`, or `expires_in` seconds from now,
    or the configured default; a given expiry lies in the future, at most MAX_EXPIRES_IN away."""
    if expires_at is None:
        if expires_in is None:
            return now + timedelta(seconds=current_app.config["ACCESS_TOKEN_EXPIRE_SECONDS"])
        if not 0 < expires_in <= MAX_EXPIRES_IN:
            raise TokenError(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds ({MAX_LIFETIME_WORDS})",
                             "expires_in")
        return now + timedelta(seconds=expires_in)
    if expires_at.tzinfo is not None:
        raise TokenError("expires_at must be a naive UTC datetime", "expires_at")
    if expires_at <= now:
        raise TokenError("the expiry must be in the future", "expires_at")
    if expires_at > now + timedelta(seconds=MAX_EXPIRES_IN):
        raise TokenError(f"the expiry may be at most {MAX_LIFETIME_WORDS} from now", "expires_at")
    return expires_at.replace(microsecond=0)


def token_columns(*, application: Application | ClientRecord, source: str, token_hash: str, hint: str,
                  user: User | None, master: bool, scope: str, expires_at: datetime,
                  created_by: User | None, now: datetime, parent: AccessToken | None = None, **extra) -> dict:
    """The column values of a new token row (an OAuth client arrives as a ClientRecord)."""
    if any(row is not None and row.id is None for row in (application, user, created_by, parent)):
        db.session.flush()  # a row made in this transaction needs its id before the Core insert
    return {
        "token_hash": token_hash, "hint": hint, "source": source, "application_id": application.id,
        "user_id": user.id if user else None, "master": bool(master), "scope": " ".join((scope or "").split()),
        "issued_at": now, "created_at": now, "expires_at": expires_at,
        "created_by_id": created_by.id if created_by else None,
        **({"parent_id": parent.id} if parent else {}), **extra,
    }


_INSERT_TOKEN = insert(_tokens)
_INSERT_PERMISSION = insert(_permissions)


def insert_token(columns: dict, permission_list: list[perms.Permission], executor=None) -> int:
    """Write a token row and its permission rows in the transaction of `executor` (the
    session unless a Core connection is given), with Core statements (the unit of work's
    flush was a third of /token); a taken hash becomes DuplicateValueError with nothing
    kept. Returns the new id."""
    executor = db.session if executor is None else executor
    try:
        token_id = executor.execute(_INSERT_TOKEN, columns).inserted_primary_key[0]
    except IntegrityError:
        executor.rollback()
        raise DuplicateValueError() from None
    if permission_list:
        executor.execute(_INSERT_PERMISSION, [
            {"token_id": token_id, "position": i, "tenant": p.tenant,
             "actions": " ".join(perms.sorted_actions(p.actions))}
            for i, p in enumerate(permission_list)
        ])
    return token_id


def create_token(*, application: Application, source: str, actor: str | None = None, user: User | None = None,
                 value: str | None = None, master: bool = False, scope: str = "",
                 expires_at: datetime | None = None, expires_in: int | None = None,
                 tenant_permissions: Iterable = (), created_by: User | None = None,
                 refresh_value: str | None = None) -> IssuedToken:
    """A token a person or a script asked for (the admin portal, the API, the CLI): its
    input checked (a custom value, the tenants, the expiry), the creation audited, all
    committed. Returns the new id and the value, which is shown once and never stored."""
    if source not in PERSON_SOURCES:
        raise TokenError(f"unknown source {source}; OAuth grants use store_grant_token", "source")
    now = clock.now()
    permission_list = perms.normalize(tenant_permissions)
    check_tenants_exist(permission_list)
    expires_at = resolve_expiry(expires_at, expires_in, now)
    if value:
        value = check_custom_value(value)
    elif jwt_format_enabled():
        value = sign_access_token(application=application, user=user, scope=scope, master=master,
                                  permissions=permission_list, grant_type=source,
                                  expires_in=int((expires_at - now).total_seconds()))
    else:
        value = generate_value()
    hint = hint_for(value)
    token_id = insert_token(token_columns(
        application=application, source=source, token_hash=hash_value(value), hint=hint, user=user,
        master=master, scope=scope, expires_at=expires_at, created_by=created_by, now=now,
        refresh_token_hash=hash_value(refresh_value) if refresh_value else None,
    ), permission_list)
    audit.record("token.created", actor=actor, target_type="access_token", target_id=token_id, target_label=hint,
                 source=source, application=application.name, master=bool(master),
                 expires_at=expires_at.isoformat(), tenant_permissions=[p.as_dict() for p in permission_list])
    db.session.commit()
    return IssuedToken(token_id, value)


def store_grant_token(*, client: ClientRecord, grant_type: str, user: User | None, value: str, scope: str,
                      expires_in: int, refresh_value: str | None = None, refresh_expires_at: datetime | None = None,
                      grant_id: str | None = None, parent: AccessToken | None = None,
                      auth_time: datetime | None = None) -> int:
    """The row of a token an OAuth grant issued (Authlib generated the value; the grant is
    its record, so no audit event). A client_credentials token is its transaction's only
    change: written and committed on the request's hot connection, without the ORM
    session. The other grants write in the session's transaction, which holds the claim
    of the code or refresh token, and commit both together."""
    now = clock.now()
    columns = token_columns(
        application=client, source=grant_type, token_hash=hash_value(value), hint=hint_for(value), user=user,
        master=False, scope=scope, expires_at=now + timedelta(seconds=expires_in), created_by=None, now=now,
        parent=parent, grant_id=grant_id, auth_time=auth_time, refresh_expires_at=refresh_expires_at,
        refresh_token_hash=hash_value(refresh_value) if refresh_value else None,
    )
    executor = hot_connection() if grant_type == "client_credentials" else db.session
    token_id = insert_token(columns, [], executor)
    executor.commit()
    return token_id


_BY_HASH = select(AccessToken).where(AccessToken.token_hash == bindparam("token_hash")).options(
    joinedload(AccessToken.permissions))
_BY_REFRESH_HASH = select(AccessToken).where(AccessToken.refresh_token_hash == bindparam("token_hash"))


def find_by_value(value: str) -> AccessToken | None:
    """One indexed lookup by hash, with application, user and permissions loaded."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    return db.session.scalars(_BY_HASH, {"token_hash": hash_value(value)}).unique().one_or_none()


def find_by_refresh_value(value: str) -> AccessToken | None:
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    return db.session.scalar(_BY_REFRESH_HASH, {"token_hash": hash_value(value)})


def invalid_reason(token: AccessToken | None, at: datetime | None = None) -> str | None:
    """Why a token does not authenticate, or None when it does."""
    if token is None:
        return "unknown token"
    return WHY_NOT_LIVE.get(token_state(token.revoked_at, token.expires_at,
                                        token.user.active if token.user else None, at))


# A token row with its application, its user (if any) and its permissions (one row each).
_TOKEN_JOINS = (_tokens.join(_applications, _applications.c.id == _tokens.c.application_id)
                .outerjoin(_users, _users.c.id == _tokens.c.user_id)
                .outerjoin(_permissions, _permissions.c.token_id == _tokens.c.id))
# The bearer's row, its application's name, its user's active flag and its permissions
# (one result row each): one indexed query that builds no ORM objects, because this runs
# on every API call and every userinfo request.
_BEARER_QUERY = (
    select(_tokens.c.id, _tokens.c.hint, _tokens.c.master, _tokens.c.scope, _tokens.c.application_id,
           _applications.c.name, _tokens.c.user_id, _users.c.active, _tokens.c.expires_at,
           _tokens.c.revoked_at, _tokens.c.last_used_at, _permissions.c.tenant, _permissions.c.actions,
           *(_users.c[field.name] for field in fields(BearerUser)))
    .select_from(_TOKEN_JOINS)
    .where(_tokens.c.token_hash == bindparam("token_hash"))
    .order_by(_permissions.c.position)
)


def _described_by(hash_column, expires_column, revoked_column):
    """A token's public facts (what introspection answers), one result row per permission."""
    return (
        select(_tokens.c.id, _tokens.c.scope, _tokens.c.master, _tokens.c.source, _tokens.c.issued_at,
               expires_column.label("expires_at"), revoked_column.label("revoked_at"), _tokens.c.application_id,
               _applications.c.client_id, _applications.c.name.label("application_name"), _users.c.sub,
               _users.c.username, _users.c.active.label("user_active"), _permissions.c.tenant,
               _permissions.c.actions)
        .select_from(_TOKEN_JOINS)
        .where(hash_column == bindparam("token_hash"))
        .order_by(_permissions.c.position)
    )


# Looked up as an access token, or as the refresh token issued with it (its own expiry and revocation).
_DESCRIBE_ACCESS = _described_by(_tokens.c.token_hash, _tokens.c.expires_at, _tokens.c.revoked_at)
_DESCRIBE_REFRESH = _described_by(_tokens.c.refresh_token_hash, _tokens.c.refresh_expires_at,
                                  _tokens.c.refresh_revoked_at)


def describe(value: str, refresh: bool = False) -> list | None:
    """The rows of `_described_by` for a presented access (or refresh) token value, read
    without ORM objects (resource servers introspect on every request); None if unknown."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    statement = _DESCRIBE_REFRESH if refresh else _DESCRIBE_ACCESS
    return hot_read(statement, {"token_hash": hash_value(value)}).all() or None


def authenticate(value: str) -> Bearer:
    """The live token for a presented value, or InvalidTokenError saying why not."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        raise InvalidTokenError("unknown token")
    rows = hot_read(_BEARER_QUERY, {"token_hash": hash_value(value)}).all()
    if not rows:
        raise InvalidTokenError("unknown token")
    (token_id, hint, master, scope, application_id, application_name, user_id, user_active,
     expires_at, revoked_at, last_used_at, _, _, *user_columns) = rows[0]
    state = token_state(revoked_at, expires_at, user_active)
    if state != ACTIVE:
        raise InvalidTokenError(WHY_NOT_LIVE[state])
    bearer = Bearer(
        id=token_id, hint=hint, master=master, scope=scope, application_id=application_id,
        application_name=application_name, user_id=user_id, last_used_at=last_used_at,
        user=BearerUser(*user_columns) if user_id is not None else None,
        permissions=tuple(perms.Permission(row.tenant, frozenset(row.actions.split()))
                          for row in rows if row.tenant is not None),
    )
    mark_used(bearer)
    return bearer


_MARK_USED = update(_tokens).where(_tokens.c.id == bindparam("token_id")).values(last_used_at=bindparam("now"))


def mark_used(token: Bearer) -> None:
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        connection = hot_connection()
        connection.execute(_MARK_USED, {"token_id": token.id, "now": now})
        connection.commit()  # at once: the request's own session may write this row next


def extend(token: AccessToken, expires_at: datetime, *, actor: str | None = None) -> AccessToken:
    """Move a token's expiry (never into the past), in place."""
    now = clock.now()
    if expires_at is None:
        raise TokenError("give the new expiry", "expires_at")
    new_expiry = resolve_expiry(expires_at, None, now)
    previous = token.expires_at
    token.expires_at = new_expiry
    audit.record("token.extended", actor=actor, target=token,
                 previous_expires_at=previous.isoformat(), expires_at=new_expiry.isoformat())
    db.session.commit()
    return token


def replace(token: AccessToken, *, actor: str | None = None, application: Application,
            user: User | None, master: bool, scope: str, tenant_permissions: Iterable,
            expires_at: datetime | None = None, created_by: User | None = None) -> AccessToken:
    """Swap a token for one with the same value and new settings, in one transaction."""
    now = clock.now()
    permission_list = perms.normalize(tenant_permissions)
    check_tenants_exist(permission_list)
    new_expiry = resolve_expiry(expires_at, None, now) if expires_at else token.expires_at
    old_id, token_hash, hint = token.id, token.token_hash, token.hint
    carried = {
        "refresh_token_hash": token.refresh_token_hash,
        "refresh_expires_at": token.refresh_expires_at,
        "grant_id": token.grant_id,
        "auth_time": token.auth_time,
        "parent_id": token.parent_id,
    }
    source = token.source
    db.session.delete(token)
    db.session.flush()  # the old row (and its unique hash) goes before the new one arrives
    new_id = insert_token(token_columns(  # same value: the server keeps only its hash
        application=application, source=source, token_hash=token_hash, hint=hint, user=user, master=master,
        scope=scope, expires_at=new_expiry, created_by=created_by, now=now, **carried,
    ), permission_list)
    new = db.session.get(AccessToken, new_id)
    audit.record("token.replaced", actor=actor, target=new, replaced_token_id=old_id,
                 application=application.name, master=new.master,
                 tenant_permissions=[p.as_dict() for p in permission_list])
    db.session.commit()
    return new


def delete(token: AccessToken, *, actor: str | None = None) -> None:
    """End a token (and the refresh token issued with it) at once."""
    audit.record("token.deleted", actor=actor, target=token, source=token.source,
                 application=token.application.name)
    db.session.delete(token)
    db.session.commit()


def delete_many(token_ids: Iterable[int], *, actor: str | None = None) -> int:
    tokens = db.session.scalars(select(AccessToken).where(AccessToken.id.in_(list(token_ids)))).all()
    for token in tokens:
        audit.record("token.deleted", actor=actor, target=token, source=token.source,
                     application=token.application.name)
        db.session.delete(token)
    db.session.commit()
    return len(tokens)


def end_login_sessions(user_ids) -> tuple[int, int]:
    """End every login session of the users that `user_ids` (a SELECT of user ids) names,
    with or without SESSION_EXPIRED_CONTROL_ENABLED: their session tokens are deleted, and
    their session version moves on, which every browser session checks (a cookie holds the
    version it was issued with). Returns (users logged out, session tokens deleted); the
    caller audits and commits."""
    deleted = db.session.execute(
        sql_delete(AccessToken).where(AccessToken.source == "session", AccessToken.user_id.in_(user_ids)))
    logged_out = db.session.execute(
        update(User).where(User.id.in_(user_ids)).values(session_version=User.session_version + 1))
    return logged_out.rowcount, deleted.rowcount


def end_session_token(token_id: int | None, user: User) -> bool:
    """Delete one browser's login-session token, if it is the user's (logout, or a new
    login replacing it); False when the browser has none. The caller audits and commits."""
    if token_id is None:
        return False
    db.session.execute(sql_delete(AccessToken).where(
        AccessToken.id == token_id, AccessToken.user_id == user.id, AccessToken.source == "session"))
    return True


def delete_for_user(user: User, *, actor: str | None = None) -> int:
    """Delete every token of a user and end all the user's login sessions; returns how
    many tokens were deleted."""
    _, sessions = end_login_sessions(select(User.id).where(User.id == user.id))
    others = db.session.execute(sql_delete(AccessToken).where(AccessToken.user_id == user.id)).rowcount
    audit.record("user.sessions_ended", actor=actor, target=user, tokens_deleted=sessions + others)
    db.session.commit()
    return sessions + others


def revoke(token: AccessToken, *, actor: str | None = None) -> None:
    """Mark a token revoked (RFC 7009), keeping the row for replay detection."""
    now = clock.now()
    token.revoked_at = token.revoked_at or now
    if token.refresh_token_hash:
        token.refresh_revoked_at = token.refresh_revoked_at or now
    audit.record("token.revoked", actor=actor, target=token, source=token.source)
    db.session.commit()


def revoke_grant(grant_id: str, *, actor: str | None = None, reason: str = "") -> int:
    """Revoke every token of one grant family (code replay, refresh-token reuse)."""
    if not grant_id:
        return 0
    now = clock.now()
    result = db.session.execute(
        update(AccessToken)
        .where(AccessToken.grant_id == grant_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now, refresh_revoked_at=now)
    )
    audit.record("grant.revoked", actor=actor, target_type="grant", target_id=grant_id[:12],
                 reason=reason, tokens_revoked=result.rowcount)
    db.session.commit()
    return result.rowcount


def portal_application() -> Application:
    """The built-in application that owns session tokens (created by `portal init`)."""
    application = db.session.scalar(select(Application).where(Application.name == PORTAL_APPLICATION))
    if application is None:
        application = Application(
            name=PORTAL_APPLICATION, client_id=PORTAL_APPLICATION, client_type="confidential",
            description="Tessera's own admin portal (owns login-session tokens)", builtin=True,
        )
        db.session.add(application)
        db.session.commit()
    return application


def create_session_token(user: User) -> IssuedToken:
    """The token that keeps one login session alive (SESSION_EXPIRED_CONTROL_ENABLED); the
    login is its audit record."""
    now, value = clock.now(), generate_value()
    token_id = insert_token(token_columns(
        application=portal_application(), source="session", token_hash=hash_value(value), hint=hint_for(value),
        user=user, master=False, scope="", expires_at=resolve_expiry(None, None, now), created_by=None, now=now,
    ), [])
    db.session.commit()
    return IssuedToken(token_id, value)


def session_token_alive(token_id: int | None, user_id: int) -> bool:
    if token_id is None:
        return False
    token = db.session.get(AccessToken, token_id)
    return (
        token is not None
        and token.user_id == user_id
        and token.source == "session"
        and invalid_reason(token) is None
    )
