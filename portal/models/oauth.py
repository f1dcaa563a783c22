"""Authorization codes, remembered consents and the signing keys."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain import clock
from portal.extensions import db
from portal.models.application import Application
from portal.models.user import User


class AuthorizationCode(db.Model):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text, default="")
    response_type: Mapped[str] = mapped_column(String(32), default="code")
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    # The resources (RFC 8707) asked for at /authorize, space-separated; the token's audience.
    resource: Mapped[str | None] = mapped_column(Text)
    auth_time: Mapped[datetime | None]
    # How the user signed in (OIDC `amr`, space-separated; `acr`): portal.auth.sessions.
    amr: Mapped[str | None] = mapped_column(String(100))
    acr: Mapped[str | None] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # A used code is kept (not deleted) so a replay can end the tokens it produced.
    used_at: Mapped[datetime | None]
    grant_id: Mapped[str] = mapped_column(String(64), unique=True)

    application: Mapped[Application] = relationship()
    user: Mapped[User] = relationship()


class Consent(db.Model):
    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "application_id", name="uq_consents_user_application"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    # The scopes granted for tokens that name no resource (their audience is the client).
    scope: Mapped[str] = mapped_column(Text, default="")
    # The scopes granted for each resource server (RFC 8707): {resource URI: "scope ..."}.
    resource_scopes: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    granted_at: Mapped[datetime] = mapped_column(default=clock.now)


class SigningKey(db.Model):
    """An RS256 key pair. Its state follows from the clock alone, so every worker agrees
    (portal.domain.signing): next until `signs_from`, current until a later key's `signs_from`,
    then retiring while a token it signed may still be valid."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    signs_from: Mapped[datetime] = mapped_column(default=clock.now)
    # The latest `exp` of a token it signed for longer than the grants' lifetime (an
    # admin- or API-made JWT access token): it stays published at least until then.
    signed_until: Mapped[datetime | None]
