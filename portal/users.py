"""Users: the rules the admin form, the API and the CLI share.

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

from portal.extensions import db
from portal.hashing import django_hash_problem
from portal.models import Tenant, User
from portal.rules import RuleError

USERNAME_MAX_LENGTH = 150
USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9._@+-]{{1,{USERNAME_MAX_LENGTH}}}")
USERNAME_RULE = f"1 to {USERNAME_MAX_LENGTH} ASCII letters, digits and . _ @ + - only"
PASSWORD_MIN_LENGTH = 8  # NIST SP 800-63B's floor for a chosen password; Crafter and GeoNode clients use it
PASSWORD_MAX_LENGTH = 1000
PASSWORD_RULE = f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters"
# SQL: the user is a tenant's profile, not an administrator (whatever its tenant column says).
PROFILE = User.is_admin.is_(False)


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


def find_by_login_name(text: str) -> User | None:
    """The user a login form's username names: surrounding spaces ignored, any letter case."""
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


def add_user(username: str, password: str | None, *, email: str | None = None, name: str = "",
             tenant: Tenant | None = None, is_admin: bool = False, active: bool = True) -> User:
    """Check and add a user to the session (flushed, so it has an id; not committed).
    Password rules stay with the callers."""
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
    return user
