"""Users: the rules and the lifecycle (create, update, new password, delete, end
sessions, find by name) that the admin views, the API, the CLI, the importers and login share.

A username is NFKC-normalised, then may use only ASCII letters, digits and . _ @ + -
(1 to 150 characters), so no two names render alike (Cyrillic letters, zero-width and
bidirectional characters, full-width forms); names are unique case-insensitively.

An administrator belongs to no tenant, so no tenant permission ever reaches one: the
tenant API sees profiles only (`PROFILE`), never administrators.
"""

import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.domain import audit
from portal import tokens
from portal.extensions import db
from portal.domain.hashing import django_hash_problem
from portal.models import Tenant, User
from portal.domain.rules import RuleError

USERNAME_MAX_LENGTH = 150
USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9._@+-]{{1,{USERNAME_MAX_LENGTH}}}")
USERNAME_RULE = f"1 to {USERNAME_MAX_LENGTH} ASCII letters, digits and . _ @ + - only"
PASSWORD_MIN_LENGTH = 8  # NIST SP 800-63B's floor for a chosen password; Crafter and GeoNode clients use it
PASSWORD_MAX_LENGTH = 1000
PASSWORD_RULE = f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters"
# SQL: the user is a tenant's profile, not an administrator (whatever its tenant column says).
PROFILE = User.is_admin.is_(False)
# What `update` may change (the username never changes; the password has `set_password`).
PROFILE_FIELDS = ("email", "name", "tenant", "is_admin", "active")


class UserError(RuleError):
    """Input the user rules refuse; `field` names the part at fault."""

    default_field = "username"


class UsernameTakenError(UserError):
    def __init__(self, username: str):
        super().__init__(f"a user named {username!r} already exists", "username")


def check_password(password: str) -> str:
    """A new password, as the admin form, the API and the CLI all accept it."""
    if not isinstance(password, str) or not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise UserError(f"a password needs {PASSWORD_RULE}", "password")
    return password


def normalize_username(text: str) -> str:
    """The username as stored: NFKC-normalised and checked against the rule."""
    username = unicodedata.normalize("NFKC", text) if isinstance(text, str) else ""
    if not USERNAME_PATTERN.fullmatch(username):
        raise UserError(f"a username needs {USERNAME_RULE}", "username")
    return username


def username_taken(username: str) -> bool:
    """Is the (normalised) name in use, whatever its letter case?"""
    return db.session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower()).limit(1)) is not None


def find_by_name(text: str) -> User | None:
    """The user a name names, as login reads it: surrounding spaces ignored, any letter case."""
    return db.session.scalar(select(User).where(func.lower(User.username) == text.strip().lower()))


def new_username(text: str) -> str:
    """A normalised username that no user has yet."""
    username = normalize_username(text)
    if username_taken(username):
        raise UsernameTakenError(username)
    return username


def check_membership(is_admin: bool, tenant: Tenant | None) -> None:
    """An administrator belongs to no tenant."""
    if is_admin and tenant is not None:
        raise UserError("an administrator belongs to no tenant: choose no tenant, or make an end user", "tenant")


def keep_password_hash(user: User, encoded: str) -> bool:
    """Keep a password hash Django made (GeoNode's users, `portal import dot`) if Tessera
    checks it (hashing.django_hash_problem: its hasher, and a cost within the limits); the
    first successful login rehashes it Tessera's way (User.check_password)."""
    if django_hash_problem(encoded) is not None:
        return False
    user.password_hash = encoded
    return True


def create(username: str, password: str | None, *, actor: str | None = None, email: str | None = None,
           name: str = "", tenant: Tenant | None = None, is_admin: bool = False, active: bool = True,
           **details) -> User:
    """Check and add a user with its `user.created` audit event (`details` go into the event
    too: an importer's source). Flushed, so it has an id; the caller commits. Password rules
    stay with the callers (check_password)."""
    check_membership(is_admin, tenant)
    user = User(username=new_username(username), email=email, name=name or "", tenant=tenant,
                is_admin=is_admin, active=active)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent request took the name
        db.session.rollback()
        raise UsernameTakenError(user.username) from None
    audit.record("user.created", actor=actor, target=user, sub=user.sub, tenant=tenant.name if tenant else None,
                 administrator=is_admin or None, **details)
    return user


def update(user: User, **changes) -> list[str]:
    """Set PROFILE_FIELDS; returns the names of those that changed, sorted. Deactivating ends
    every session of the user. The caller audits and commits."""
    if unknown := set(changes) - set(PROFILE_FIELDS):
        raise TypeError(f"not a field update() sets: {', '.join(sorted(unknown))}")
    check_membership(changes.get("is_admin", user.is_admin), changes.get("tenant", user.tenant))
    changed = sorted(field for field, value in changes.items() if getattr(user, field) != value)
    for field in changed:
        setattr(user, field, changes[field])
    if "active" in changed and not user.active:
        end_sessions(user)
    return changed


def set_password(user: User, password: str | None) -> int:
    """Give the user a new password (None: none) and end every session of theirs; returns
    how many session tokens ended. The caller checks the password, audits and commits."""
    user.set_password(password)
    return end_sessions(user)


def end_sessions(user: User) -> int:
    """End every login session of the user, in every browser: their session tokens are
    deleted and their session version moves on, which every session cookie is checked
    against (so also without SESSION_EXPIRED_CONTROL_ENABLED). Returns how many session
    tokens were deleted; the caller audits and commits."""
    _, deleted = tokens.end_login_sessions(select(User.id).where(User.id == user.id))
    return deleted


def delete(user: User) -> None:
    """Delete the user; their tokens, login sessions, grants, consents and second factors
    (passkeys, authenticator app, recovery codes) go with them (ON DELETE CASCADE). The
    caller audits and commits."""
    db.session.delete(user)
