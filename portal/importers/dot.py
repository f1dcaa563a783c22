"""`portal import dot DATABASE_URL`: a django-oauth-toolkit database (GeoNode's).

- Users (`auth_user`, or GeoNode's `people_profile`): username, email, name, active flag,
  join date, and the Django password hash, checked at login and rehashed Tessera's way on
  the first success. A superuser becomes a Tessera administrator; staff without superuser
  rights become end users (Django's staff flag grants only the permissions given to it,
  a Tessera administrator everything).
- Applications (`oauth2_provider_application`): client id, name, client type, redirect
  URIs, grant type, and the client secret as DOT stored it (a Django hash since DOT 2, or
  the plain secret before), so clients keep authenticating at /token with their secret.
- Live tokens (`oauth2_provider_accesstoken`, with `oauth2_provider_refreshtoken`): values
  (stored as hashes), user, application, scope, expiry; an unrevoked refresh token lives
  REFRESH_TOKEN_EXPIRE_SECONDS from when DOT issued it, and keeps its access token's row
  even when that has expired.
"""

import os
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import MetaData, create_engine, func, select
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from portal import applications, audit, clock, users
from portal.extensions import db
from portal.hashing import django_algorithm
from portal.importers import (CREATED, EXPIRED, IMPORT_ACTOR, PRESENT, ApplicationMaker, SourceError, Summary,
                              utc_naive)
from portal.models import Application, User
from portal.models.application import CONFIDENTIAL, PUBLIC
from portal.tokens.errors import TokenError
from portal.tokens.imported import check_imported_value, value_present
from portal.tokens.values import hint_for

USER_TABLES = ("people_profile", "auth_user")  # GeoNode's user model, or Django's own
APPLICATIONS, ACCESS_TOKENS, REFRESH_TOKENS = (
    "oauth2_provider_application", "oauth2_provider_accesstoken", "oauth2_provider_refreshtoken")
# DOT's grant type → Tessera's grants. Tessera offers no implicit or password grant: such
# clients get the code grant or only refresh, and their issued tokens keep working.
GRANTS = {
    "authorization-code": ["authorization_code", "refresh_token"],
    "client-credentials": ["client_credentials"],
    "openid-hybrid": ["authorization_code", "refresh_token"],
    "implicit": ["authorization_code", "refresh_token"],
    "password": ["refresh_token"],
}
DEFAULT_SCOPE = ["openid", "email", "profile"]


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def as_datetime(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return utc_naive(value) if value else None
    return utc_naive(datetime.fromisoformat(str(value)))


class DotSource:
    """The django-oauth-toolkit database, read-only."""

    def __init__(self, url: str):
        try:
            self.engine = create_engine(url)
            path = self.engine.url.database
            if self.engine.dialect.name == "sqlite" and path and path != ":memory:" and not os.path.exists(path):
                raise SourceError(f"no such SQLite file: {path}")  # connecting would make an empty one
            self.tables = MetaData()
            with self.engine.connect() as connection:
                names = set(self.engine.dialect.get_table_names(connection))
                user_table = next((t for t in USER_TABLES if t in names), None)
                missing = [t for t in (APPLICATIONS, ACCESS_TOKENS, REFRESH_TOKENS) if t not in names]
                if user_table is None or missing:
                    raise SourceError("not a django-oauth-toolkit database: no table "
                                      + ", ".join(missing or [" or ".join(USER_TABLES)]))
                self.tables.reflect(connection, only=[user_table, APPLICATIONS, ACCESS_TOKENS, REFRESH_TOKENS])
        except (ArgumentError, NoSuchModuleError, ValueError) as error:
            raise SourceError(f"not a database URL: {error}") from None
        except DBAPIError as error:
            raise SourceError(f"cannot read the database: {error.orig}") from None
        self.users = self.tables.tables[user_table]
        self.applications = self.tables.tables[APPLICATIONS]
        self.access = self.tables.tables[ACCESS_TOKENS]
        self.refresh = self.tables.tables[REFRESH_TOKENS]
        self.connection = None

    def __enter__(self):
        self.connection = self.engine.connect()
        return self

    def __exit__(self, *exc):
        self.connection.close()
        self.engine.dispose()

    def length(self) -> int:
        return sum(self.connection.scalar(select(func.count()).select_from(table))
                   for table in (self.users, self.applications, self.access))

    def token_rows(self):
        """Every access token with its unrevoked refresh token, if it has one."""
        access, refresh = self.access, self.refresh
        live_refresh = (refresh.c.access_token_id == access.c.id) & refresh.c.revoked.is_(None)
        return self.connection.execute(
            select(access.c.token, access.c.expires, access.c.scope, access.c.application_id, access.c.user_id,
                   access.c.created, access.c.source_refresh_token_id, refresh.c.token.label("refresh_token"),
                   refresh.c.created.label("refresh_created"))
            .select_from(access.outerjoin(refresh, live_refresh)).order_by(access.c.id))

    def run(self, *, apply: bool, advance=lambda n: None) -> Summary:
        summary = Summary("django-oauth-toolkit", apply, ("users", "applications", "tokens"))
        now = clock.now()
        usernames = {}
        for row in self.connection.execute(select(self.users).order_by(self.users.c.id)):
            usernames[row.id] = import_user(row, summary)
            advance(1)
        scopes = token_scopes(self.connection, self.access)
        client_ids, maker = {}, ApplicationMaker(summary)
        for row in self.connection.execute(select(self.applications).order_by(self.applications.c.id)):
            client_ids[row.id] = row.client_id if maker.ensure(
                row.client_id, lambda: register(row, scopes.get(row.id, set()), summary)) else None
            advance(1)
        refresh_lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_EXPIRE_SECONDS"])
        seen: set[str] = set()
        for row in self.token_rows():
            import_token_row(row, summary, now, refresh_lifetime, usernames, client_ids, seen)
            advance(1)
        orphans = self.connection.scalar(select(func.count()).select_from(self.refresh).where(
            self.refresh.c.access_token_id.is_(None), self.refresh.c.revoked.is_(None)))
        if orphans:
            summary.note(f"{orphans} unrevoked refresh tokens have no access token: not imported (Tessera "
                         "keeps a refresh token on the row of the access token it renews)")
        summary.record()
        return summary


def token_scopes(connection, access) -> dict[int, set[str]]:
    """The scopes each application's tokens carry: a client may keep asking for them."""
    scopes: dict[int, set[str]] = {}
    for application_id, scope in connection.execute(select(access.c.application_id, access.c.scope).distinct()):
        scopes.setdefault(application_id, set()).update((scope or "").split())
    return scopes


def import_user(row, summary: Summary) -> str | None:
    """The user's Tessera username if the user is here (or would be), else None."""
    label = repr(row.username)
    try:
        username = users.normalize_username(row.username)
    except users.UserError as error:
        summary.refuse("users", label, error.message)
        return None
    if find_user(username) is not None:
        summary.count("users", PRESENT)
        return username
    password = row.password or ""
    if password and not password.startswith("!") and not django_algorithm(password):
        summary.note(f"user {label}: Tessera does not check {password.split('$')[0]} password hashes; "
                     "imported without a password (set one in the admin console)")
    if summary.apply:
        try:
            user = users.add_user(username, None, email=row.email or None,
                                  name=" ".join(filter(None, (row.first_name, row.last_name))),
                                  is_admin=bool(row.is_superuser), active=bool(row.is_active))
        except users.UserError as error:
            db.session.rollback()
            summary.refuse("users", label, error.message)
            return None
        users.keep_password_hash(user, password)
        user.created_at = as_datetime(row.date_joined) or user.created_at
        audit.record("user.created", actor=IMPORT_ACTOR, target=user, imported_from="django-oauth-toolkit",
                     administrator=bool(row.is_superuser) or None)
        db.session.commit()
    summary.count("users", CREATED)
    return username


def register(row, token_scopes_seen: set[str], summary: Summary) -> bool:
    """Register one DOT application (False if its client id is here already)."""
    if db.session.scalar(select(Application.id).where(Application.client_id == row.client_id)):
        return False
    client_type = PUBLIC if row.client_type == PUBLIC else CONFIDENTIAL
    grant_types = GRANTS.get(row.authorization_grant_type)
    if grant_types is None:
        raise applications.ApplicationError(f"unknown grant type {row.authorization_grant_type!r}", "grant_types")
    if row.authorization_grant_type in ("implicit", "password", "openid-hybrid"):
        summary.note(f"application {row.client_id!r}: Tessera has no {row.authorization_grant_type} grant; "
                     f"it may use {', '.join(grant_types)}")
    name = (row.name or "").strip() or row.client_id
    if db.session.scalar(select(Application.id).where(Application.name == name)):
        name = f"{name} ({row.client_id})"[:100]
    secret = row.client_secret or ""
    kept_hash = secret if client_type == CONFIDENTIAL and django_algorithm(secret) else None
    if client_type == CONFIDENTIAL and kept_hash is None and "$" in secret:
        raise applications.ApplicationError(
            f"its secret is hashed with {secret.split('$')[0]}, which Tessera does not check", "client_secret")
    plain_secret = secret if client_type == CONFIDENTIAL and kept_hash is None and secret else None
    scope = " ".join(dict.fromkeys(DEFAULT_SCOPE + sorted(token_scopes_seen)))
    redirect_uris = (row.redirect_uris or "").split()
    applications.check_name(name)
    if not applications.CLIENT_ID_PATTERN.match(row.client_id or ""):
        raise applications.ApplicationError("the client id may use letters, digits and . _ ~ - (at most 100)",
                                            "client_id")
    applications.check_settings(client_type, redirect_uris, grant_types, (), None)
    if summary.apply:
        applications.register_application(
            name=name, client_type=client_type, client_id=row.client_id, client_secret=plain_secret,
            client_secret_hash=kept_hash, redirect_uris=redirect_uris, grant_types=grant_types, scope=scope,
            description="Imported from django-oauth-toolkit", actor=IMPORT_ACTOR)
    return True


def import_token_row(row, summary: Summary, now: datetime, refresh_lifetime: timedelta, usernames: dict,
                     client_ids: dict, seen: set[str]) -> None:
    value = row.token
    label = f"{hint_for(value)}…" if isinstance(value, str) and value else "(empty)"
    expires_at = as_datetime(row.expires)
    refresh_value, refresh_expires_at = row.refresh_token, None
    if refresh_value is not None:
        refresh_expires_at = (as_datetime(row.refresh_created) or now) + refresh_lifetime
        if refresh_expires_at <= now:
            refresh_value = refresh_expires_at = None
    if expires_at <= now and refresh_value is None:
        summary.count("tokens", EXPIRED)
        return
    try:
        value = check_imported_value(value)
        if refresh_value is not None:
            check_imported_value(refresh_value)
    except TokenError as error:
        summary.refuse("tokens", label, error.message)
        return
    if value in seen or value_present(value):
        summary.count("tokens", PRESENT)
        return
    seen.add(value)
    client_id = client_ids.get(row.application_id)
    if client_id is None:
        summary.refuse("tokens", label, "its application was not imported" if row.application_id else
                       "it has no application")
        return
    username = usernames.get(row.user_id) if row.user_id is not None else None
    if row.user_id is not None and username is None:
        summary.refuse("tokens", label, "its user was not imported")
        return
    source = ("client_credentials" if row.user_id is None else
              "refresh_token" if row.source_refresh_token_id else "authorization_code")
    summary.add_token(label, application=db.session.scalar(select(Application).where(Application.client_id == client_id)), source=source, value=value,
                      expires_at=expires_at, scope=row.scope or "", user=find_user(username) if username else None,
                      issued_at=as_datetime(row.created), refresh_value=refresh_value,
                      refresh_expires_at=refresh_expires_at)
