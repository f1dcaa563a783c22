"""Applications: OAuth clients, or plain named consumers of admin-made tokens."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from sqlalchemy import JSON, String, Text, text, update
from sqlalchemy.orm import Mapped, mapped_column

from portal.domain import clock
from portal.extensions import db
from portal.domain.hashing import django_algorithm, django_password_matches, sha256_hex

CONFIDENTIAL = "confidential"
PUBLIC = "public"
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
# A confidential client registered without naming a method accepts both (RFC 6749 §2.3.1:
# Basic MUST be supported; many clients send the secret in the body).
EITHER_SECRET_METHOD = " ".join(SECRET_METHODS)


def hash_secret(secret: str) -> str:
    return sha256_hex(secret)


def adopt_secret_hash(application_id: int, kept_hash: str, client_secret: str) -> None:
    """Store Tessera's hash of a secret that matched its kept Django hash: Django's PBKDF2
    would cost most of a second on every /token and /introspect call."""
    from portal.db.connections import hot_connection

    applications = Application.__table__
    connection = hot_connection()
    connection.execute(update(applications)
                       .where(applications.c.id == application_id, applications.c.client_secret_hash == kept_hash)
                       .values(client_secret_hash=hash_secret(client_secret)))
    connection.commit()


class ClientRules(ClientMixin):
    """Authlib's client interface, read from an application's columns: one set of rules for
    the ORM model and for ClientRecord, the read-only copy the OAuth endpoints load."""

    @property
    def is_public(self) -> bool:
        return self.client_type == PUBLIC

    @property
    def client_metadata(self) -> dict:
        return {
            "redirect_uris": list(self.redirect_uris or []),
            "grant_types": list(self.grant_types or []),
            "response_types": list(self.response_types or []),
            "scope": self.scope,
            "token_endpoint_auth_method": self.token_auth_methods[0],
            "client_name": self.name,
        }

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope or ""))
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison only (RFC 9700 §2.1).
        return redirect_uri in (self.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.client_secret_hash or not isinstance(client_secret, str):
            return False
        if django_algorithm(self.client_secret_hash):  # kept from django-oauth-toolkit
            from portal.web import throttle

            throttle.check_address(throttle.CLIENT_SECRET)  # no slow hash for an address over its limit
            if not django_password_matches(self.client_secret_hash, client_secret):
                return False
            adopt_secret_hash(self.id, self.client_secret_hash, client_secret)
            return True
        return secrets.compare_digest(self.client_secret_hash, hash_secret(client_secret))

    @property
    def token_auth_methods(self) -> tuple[str, ...]:
        """How this client may authenticate at /token: `none`, or one or both secret methods."""
        return tuple(self.token_endpoint_auth_method.split())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        if endpoint == "token":
            return method in self.token_auth_methods
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type in (self.response_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])


class Application(ClientRules, db.Model):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    # SHA-256 hex, or a Django password hash kept from django-oauth-toolkit (`portal import dot`).
    client_secret_hash: Mapped[str | None] = mapped_column(String(256))
    client_type: Mapped[str] = mapped_column(String(16), default=CONFIDENTIAL)
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    response_types: Mapped[list] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    # Where /end_session may send the browser after logout (RP-Initiated Logout 1.0; exact match).
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # `none`, `client_secret_basic`, `client_secret_post`, or both secret methods (space-separated).
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(64), default=EITHER_SECRET_METHOD)
    # The resource servers (audience URIs) this client may ask tokens for (RFC 8707 `resource`).
    resources: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    builtin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    def set_secret(self, secret: str | None = None) -> str | None:
        """Store a new secret's hash; return the plaintext to show once (None for public)."""
        if self.is_public:
            self.client_secret_hash = None
            return None
        secret = secret or secrets.token_urlsafe(32)
        self.client_secret_hash = hash_secret(secret)
        return secret

    def __repr__(self) -> str:
        return f"<Application {self.name}>"


@dataclass(frozen=True)
class ClientRecord(ClientRules):
    """An application's OAuth settings read with one Core query and no ORM session
    (introspection and /token authenticate a client on every call)."""

    __tablename__ = "applications"  # so an audit event names it as it names the model

    id: int
    name: str
    description: str
    client_id: str
    client_secret_hash: str | None
    client_type: str
    redirect_uris: list
    grant_types: list
    response_types: list
    scope: str
    token_endpoint_auth_method: str
    resources: list
