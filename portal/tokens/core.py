"""Creating, finding, validating and ending tokens: the only code that writes token rows."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete as sql_delete
from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal.domain import audit, clock
from portal.web import metrics
from portal.db.connections import hot_connection, hot_read
from portal.extensions import db
from portal.models import AccessToken, Application, ClientRecord, LoginSession, Tenant, TokenPermission, User
from portal.models.token import WHY_NOT_LIVE, token_state
from portal.tokens import permissions as perms
from portal.tokens.errors import DuplicateValueError, InvalidTokenError, TokenError, UnknownTenantError
from portal.tokens.jwt_format import jwt_format_enabled, sign_access_token
from portal.tokens.values import MAX_VALUE_LENGTH, check_custom_value, generate_value, hash_value, hint_for
from portal.tokens.view import ACCESS, QUERIES, TokenView, view_of_rows
from portal.web.user_agents import browser_summary, stored_user_agent

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


def check_tenants_exist(permission_list: Iterable[perms.Permission]) -> None:
    names = {p.tenant for p in permission_list if p.tenant != perms.ANY}
    if not names:
        return
    known = set(db.session.scalars(select(Tenant.name).where(Tenant.name.in_(names))))
    missing = sorted(names - known)
    if missing:
        raise UnknownTenantError(f"unknown tenant {', '.join(missing)}", "tenant_permissions")


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
                  created_by: User | None, now: datetime, parent: AccessToken | TokenView | None = None,
                  **extra) -> dict:
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
    insert_permissions(token_id, permission_list, executor)
    return token_id


def insert_permissions(token_id: int, permission_list: list[perms.Permission], executor=None) -> None:
    if permission_list:
        (db.session if executor is None else executor).execute(_INSERT_PERMISSION, [
            {"token_id": token_id, "position": i, "tenant": p.tenant,
             "actions": " ".join(perms.sorted_actions(p.actions))}
            for i, p in enumerate(permission_list)
        ])


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
    if expires_at is not None and expires_in is not None:
        raise TokenError("give expires_at or expires_in, not both", "expires_in")
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
    metrics.token_issued(source)
    return IssuedToken(token_id, value)


def store_grant_token(*, client: ClientRecord, grant_type: str, user: User | None, value: str, scope: str,
                      expires_in: int, refresh_value: str | None = None, refresh_expires_at: datetime | None = None,
                      grant_id: str | None = None, parent: AccessToken | TokenView | None = None,
                      auth_time: datetime | None = None, audience: str | None = None,
                      granted_resources: str | None = None) -> int:
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
        audience=audience, granted_resources=granted_resources,
        refresh_token_hash=hash_value(refresh_value) if refresh_value else None,
    )
    executor = hot_connection() if grant_type == "client_credentials" else db.session
    token_id = insert_token(columns, [], executor)
    executor.commit()
    metrics.token_issued(grant_type)
    return token_id


_BY_HASH = select(AccessToken).where(AccessToken.token_hash == bindparam("token_hash")).options(
    joinedload(AccessToken.permissions))


def find_by_value(value: str) -> AccessToken | None:
    """One indexed lookup by hash, with application, user and permissions loaded."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    return db.session.scalars(_BY_HASH, {"token_hash": hash_value(value)}).unique().one_or_none()


def invalid_reason(token: AccessToken | None, at: datetime | None = None) -> str | None:
    """Why a token does not authenticate, or None when it does."""
    if token is None:
        return "unknown token"
    return WHY_NOT_LIVE.get(token_state(token.revoked_at, token.expires_at,
                                        token.user.active if token.user else None, at))


def describe(value: str, kind: str = ACCESS) -> TokenView | None:
    """The token a presented access (or refresh) value names, in whatever state, read
    without ORM objects; None if unknown."""
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
        return None
    rows = hot_read(QUERIES[kind], {"token_hash": hash_value(value)}).all()
    return view_of_rows(rows, kind) if rows else None


def authenticate(value: str, address: str | None = None, user_agent: str | None = None) -> TokenView:
    """The live token for a presented access-token value, or InvalidTokenError saying why
    not; its last use (and, when given, the caller's address and User-Agent) is recorded."""
    token = describe(value)
    if token is None:
        raise InvalidTokenError("unknown token")
    if not token.live:
        raise InvalidTokenError(WHY_NOT_LIVE[token.state])
    mark_used(token, address, user_agent)
    return token


_MARK_USED = update(_tokens).where(_tokens.c.id == bindparam("token_id")).values(last_used_at=bindparam("now"))
_MARK_USED_BY = _MARK_USED.values(last_used_address=bindparam("address"),
                                  last_used_user_agent=bindparam("user_agent"))


def mark_used(token: TokenView | AccessToken, address: str | None = None, user_agent: str | None = None) -> None:
    """Record a token's use (a bearer token's, or a login session's), at most once per
    LAST_USED_RESOLUTION; with the caller's address and User-Agent when given."""
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        connection = hot_connection()
        if address is None and user_agent is None:
            connection.execute(_MARK_USED, {"token_id": token.id, "now": now})
        else:
            connection.execute(_MARK_USED_BY, {"token_id": token.id, "now": now,
                                               "address": (address or "")[:64] or None,
                                               "user_agent": stored_user_agent(user_agent or "")})
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
            expires_at: datetime | None = None) -> AccessToken:
    """Give a token new settings in one transaction. The value, the id, the creation time,
    the last use and the history stay, so applications see no gap and the token's page
    keeps its address; the audit event says what changed."""
    now = clock.now()
    permission_list = perms.normalize(tenant_permissions)
    check_tenants_exist(permission_list)
    new_expiry = resolve_expiry(expires_at, None, now) if expires_at else token.expires_at
    before = replaced_settings(token.application.name, token.user, token.master, token.scope, token.expires_at,
                               [perms.Permission(p.tenant, frozenset(p.action_list)) for p in token.permissions])
    after = replaced_settings(application.name, user, master, scope, new_expiry, permission_list)
    if any(row is not None and row.id is None for row in (application, user)):
        db.session.flush()  # a row made in this transaction needs its id
    db.session.execute(sql_delete(TokenPermission).where(TokenPermission.token_id == token.id))
    db.session.execute(update(AccessToken).where(AccessToken.id == token.id).values(
        application_id=application.id, user_id=user.id if user else None, master=bool(master),
        scope=" ".join((scope or "").split()), expires_at=new_expiry, issued_at=now,
    ))
    insert_permissions(token.id, permission_list)
    audit.record("token.replaced", actor=actor, target=token,
                 changes={name: {"from": before[name], "to": after[name]} for name in before
                          if before[name] != after[name]})
    db.session.commit()
    db.session.expire(token)
    return token


def replaced_settings(application_name: str, user: User | None, master: bool, scope: str, expires_at: datetime,
                      permission_list: list[perms.Permission]) -> dict:
    """A token's settings as a replacement's audit event compares them."""
    return {"application": application_name, "user": user.username if user else None, "master": bool(master),
            "scope": " ".join((scope or "").split()), "expires_at": expires_at.isoformat(),
            "tenant_permissions": [p.as_dict() for p in permission_list]}


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


def end_login_sessions(user_ids, keep_token_id: int | None = None) -> tuple[int, int]:
    """End every login session of the users that `user_ids` (a SELECT of user ids) names,
    with or without SESSION_EXPIRED_CONTROL_ENABLED: their session tokens are deleted, and
    their session version moves on, which every browser session checks (a cookie holds the
    version it was issued with). The session token `keep_token_id` stays (its browser needs
    the new version in its cookie). Returns (users logged out, session tokens deleted); the
    caller audits and commits."""
    doomed = sql_delete(AccessToken).where(AccessToken.source == "session", AccessToken.user_id.in_(user_ids))
    if keep_token_id is not None:
        doomed = doomed.where(AccessToken.id != keep_token_id)
    deleted = db.session.execute(doomed)
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


def revoke(token: AccessToken | TokenView, *, actor: str | None = None) -> None:
    """Mark a token and its refresh token revoked (RFC 7009), keeping the row for replay
    detection; a moment of revocation already set stays."""
    now = clock.now()
    db.session.execute(update(AccessToken).where(AccessToken.id == token.id).values(
        revoked_at=func.coalesce(AccessToken.revoked_at, now),
        refresh_revoked_at=case((AccessToken.refresh_token_hash.is_(None), None),
                                else_=func.coalesce(AccessToken.refresh_revoked_at, now)),
    ))
    audit.record("token.revoked", actor=actor, target_type="access_token", target_id=token.id,
                 target_label=token.hint, source=token.source)
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


def create_session_token(user: User, *, address: str | None = None, user_agent: str = "") -> IssuedToken:
    """The token that keeps one login session alive (SESSION_EXPIRED_CONTROL_ENABLED), with
    the browser's address and User-Agent for the admin's list of sessions; the login is its
    audit record."""
    now, value = clock.now(), generate_value()
    token_id = insert_token(token_columns(
        application=portal_application(), source="session", token_hash=hash_value(value), hint=hint_for(value),
        user=user, master=False, scope="", expires_at=resolve_expiry(None, None, now), created_by=None, now=now,
        last_used_at=now,
    ), [])
    db.session.add(LoginSession(token_id=token_id, address=address[:64] if address else None,
                                user_agent=stored_user_agent(user_agent), browser=browser_summary(user_agent)))
    db.session.commit()
    metrics.token_issued("session")
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
