"""Tenants and users (a user's profile belongs to one tenant)."""

import uuid
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from portal.domain import clock
from portal.extensions import db
from portal.domain.hashing import django_algorithm, django_password_matches


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    def __repr__(self) -> str:
        return f"<Tenant {self.name}>"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable public subject identifier (OIDC `sub`); never the database id.
    sub: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: uuid.uuid4().hex)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    # Moved on whenever sessions end (portal.domain.users.end_sessions: logout without a session
    # token, a new password, deactivation; logging everyone out): every older cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # When the profile (the claims: username, name, email) last changed: OIDC `updated_at`.
    # Not an onupdate: logins and session bumps write this row too.
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_login_at: Mapped[datetime | None]

    tenant: Mapped[Tenant | None] = relationship(lazy="joined")

    @validates("username", "name", "email")
    def profile_changed(self, key: str, value):
        if getattr(self, key) != value:
            self.updated_at = clock.now()
        return value

    @property
    def is_active(self) -> bool:
        return self.active

    def set_password(self, password: str | None) -> None:
        """Only the hash: portal.domain.users.set_password also ends the user's sessions."""
        self.password_hash = generate_password_hash(password) if password else None

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        if django_algorithm(self.password_hash):  # kept from GeoNode (`portal import dot`)
            if not django_password_matches(self.password_hash, password):
                return False
            # Rehashed Tessera's way on the first success; the same password, so no session ends.
            self.password_hash = generate_password_hash(password)
            return True
        return check_password_hash(self.password_hash, password)

    def get_user_id(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<User {self.username}>"
