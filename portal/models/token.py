"""Access tokens: every bearer credential is one row, stored by hash."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, exists, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain import clock
from portal.extensions import db
from portal.models.application import Application
from portal.models.user import User

SOURCES = ("admin", "api", "authorization_code", "refresh_token", "client_credentials", "session")

# When a token is live: the one rule every reader uses (the admin list and filters, the API,
# bearer authentication, introspection, the OAuth grants, login sessions).
ACTIVE, REVOKED, EXPIRED, INACTIVE_USER = "active", "revoked", "expired", "inactive"
STATES = (ACTIVE, EXPIRED, REVOKED, INACTIVE_USER)
WHY_NOT_LIVE = {REVOKED: "token revoked", EXPIRED: "token expired", INACTIVE_USER: "user deactivated"}


def token_state(revoked_at: datetime | None, expires_at: datetime, user_active: bool | None,
                at: datetime | None = None) -> str:
    """Revoked first, then expired, then a deactivated user (None: the token has no user)."""
    if revoked_at is not None:
        return REVOKED
    if expires_at <= (at or clock.now()):
        return EXPIRED
    if user_active is False:
        return INACTIVE_USER
    return ACTIVE


def not_null(column: str) -> dict:
    """A partial index's condition, for SQLite and PostgreSQL alike (both use such an index
    for `column = x` and `column IN (...)`)."""
    condition = text(f"{column} IS NOT NULL")
    return {"sqlite_where": condition, "postgresql_where": condition}


class AccessToken(db.Model):
    __tablename__ = "access_tokens"
    __table_args__ = (
        # The admin list: newest first / soonest expiry first, keyset-paginated, and
        # the same orders inside one application, user or source.
        Index("ix_access_tokens_created", "created_at", "id"),
        Index("ix_access_tokens_expires", "expires_at", "id"),
        Index("ix_access_tokens_app_created", "application_id", "created_at", "id"),
        Index("ix_access_tokens_user_created", "user_id", "created_at", "id", **not_null("user_id")),
        Index("ix_access_tokens_source_created", "source", "created_at", "id"),
        # Columns that are NULL on most tokens (every client_credentials one) are indexed
        # only where set: each index left out is one B-tree fewer written per issued token.
        Index("ix_access_tokens_parent_id", "parent_id", **not_null("parent_id")),
        Index("ix_access_tokens_grant_id", "grant_id", **not_null("grant_id")),
        Index("ix_access_tokens_created_by_id", "created_by_id", **not_null("created_by_id")),
        # Never hand a deleted token's id to a new one (their audit histories would mix).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text, default="")
    master: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    refresh_expires_at: Mapped[datetime | None]
    refresh_revoked_at: Mapped[datetime | None]
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_tokens.id", ondelete="SET NULL")
    )
    # Tokens from one authorization code, and every refresh after it, share a grant id,
    # so a replayed code or refresh token can end the whole family.
    grant_id: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None]
    # Where and by what client the last use came from, written with last_used_at.
    last_used_address: Mapped[str | None] = mapped_column(String(64))
    last_used_user_agent: Mapped[str | None] = mapped_column(String(512))
    auth_time: Mapped[datetime | None]
    # The resources (RFC 8707) the token was issued for, space-separated: its `aud`.
    audience: Mapped[str | None] = mapped_column(Text)
    # The resources the grant was given at /authorize (what the user consented to), carried
    # from refresh to refresh: a refresh may ask for any of them, never another.
    granted_resources: Mapped[str | None] = mapped_column(Text)

    application: Mapped[Application] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    parent: Mapped["AccessToken | None"] = relationship(remote_side=[id])
    permissions: Mapped[list["TokenPermission"]] = relationship(
        back_populates="token",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="TokenPermission.position",
    )

    @property
    def tenant_permissions(self) -> list[dict]:
        """The permissions as the API and introspection show them."""
        return [{"tenant": p.tenant, "actions": p.action_list} for p in self.permissions]

    @property
    def status(self) -> str:
        return token_state(self.revoked_at, self.expires_at, self.user.active if self.user else None)

    @classmethod
    def in_state(cls, state: str, now: datetime):
        """SQL conditions for the tokens `token_state` puts in `state` at `now`."""
        inactive_user = exists().where(User.id == cls.user_id, User.active.is_(False))
        not_revoked, unexpired = cls.revoked_at.is_(None), cls.expires_at > now
        return {
            ACTIVE: [not_revoked, unexpired, ~inactive_user],
            EXPIRED: [not_revoked, cls.expires_at <= now],
            REVOKED: [cls.revoked_at.is_not(None)],
            INACTIVE_USER: [not_revoked, unexpired, inactive_user],
        }[state]

    def __repr__(self) -> str:
        return f"<AccessToken {self.hint} {self.source}>"


class TokenPermission(db.Model):
    """One (tenant, allowed actions) entry of a token; `*` tenant means any tenant."""

    __tablename__ = "token_permissions"
    __table_args__ = (Index("ix_token_permissions_tenant_token", "tenant", "token_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("access_tokens.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    tenant: Mapped[str] = mapped_column(String(64))
    # Space-separated action names, or `*`.
    actions: Mapped[str] = mapped_column(Text, default="")

    token: Mapped[AccessToken] = relationship(back_populates="permissions")

    @property
    def action_list(self) -> list[str]:
        return self.actions.split()


class LoginSession(db.Model):
    """Where and with which browser one login session (a `session` token) started; its
    last use is its token's `last_used_at`, like any token's."""

    __tablename__ = "login_sessions"

    token_id: Mapped[int] = mapped_column(ForeignKey("access_tokens.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    browser: Mapped[str] = mapped_column(String(100), default="")
