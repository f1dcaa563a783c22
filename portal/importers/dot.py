"""`portal import dot DATABASE_URL`: a django-oauth-toolkit database (GeoNode's).

- Users (`auth_user`, or GeoNode's `people_profile`): username, email, name, active flag,
  join date, and the Django password hash, checked at login and rehashed Tessera's way on
  the first success (a hash whose cost lies outside hashing's limits is not kept). A
  superuser becomes a Tessera administrator; staff without superuser rights become end
  users (Django's staff flag grants only the permissions given to it, a Tessera
  administrator everything). A GeoNode user becomes an existing Tessera user only by a
  rule the operator chose (`Matching`): never because the names look alike.
- Applications (`oauth2_provider_application`): client id, name, client type, redirect
  URIs, grant type, and the client secret as DOT stored it (a Django hash since DOT 2, or
  the plain secret before), so clients keep authenticating at /token with their secret.
- Live tokens (`oauth2_provider_accesstoken`, with `oauth2_provider_refreshtoken`): values
  (stored as hashes), user, application, scope, expiry (at most ten years away); an
  unrevoked refresh token lives REFRESH_TOKEN_EXPIRE_SECONDS from when DOT issued it, and
  keeps its access token's row even when that has expired.
"""

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import MetaData, String, create_engine, func, select, type_coerce
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from portal.domain import applications, audit, clock, users
from portal.extensions import db
from portal.domain.hashing import django_algorithm, django_hash_problem
from portal.importers import (CREATED, EXPIRED, IMPORT_ACTOR, PRESENT, ApplicationMaker, SourceError, Summary,
                              capped_expiry, one_transaction, utc_naive)
from portal.models import Application, AuditEvent, User
from portal.models.application import CONFIDENTIAL, PUBLIC
from portal.tokens.errors import TokenError
from portal.tokens.imported import check_imported_value, value_present
from portal.tokens.values import hint_for

SOURCE_NAME = "django-oauth-toolkit"  # in the audit events of the users an import made
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
MAX_MAPPING_BYTES = 16 * 1024 * 1024


class RecordError(Exception):
    """A field of one record that cannot be read as what it should be."""


def as_datetime(value, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_naive(value)
    if isinstance(value, str):
        try:
            return utc_naive(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise RecordError(f"{name} is not a date")


def text_or_none(value, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RecordError(f"{name} is not text")


def raw(column):
    """A column as the database hands it over: SQLite keeps any type in any column, and
    SQLAlchemy would fail the whole read on one date it cannot parse."""
    return type_coerce(column, String).label(column.name)


def role(user: User) -> str:
    return "administrator" if user.is_admin else "end user"


@dataclass(frozen=True)
class Matching:
    """Which existing Tessera user a GeoNode user is, by the operator's choice: `mapping`
    (`--map FILE`: GeoNode username -> (Tessera username, line)), the same email
    (`--match email`), and whether an administrator may be one (`--allow-admin-match`).
    Without a rule a GeoNode user whose name Tessera has already is refused."""

    mapping: dict[str, tuple[str, int]] = field(default_factory=dict)
    by_email: bool = False
    allow_admin: bool = False


def read_mapping(text: str) -> dict[str, tuple[str, int]]:
    """A mapping file: `geonode_username=tessera_username` lines; blank lines and lines
    starting with # are skipped. Each GeoNode user and each Tessera user once."""
    mapping: dict[str, tuple[str, int]] = {}
    targets: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, equals, target = (part.strip() for part in line.partition("="))
        if not equals or not source or not target:
            raise SourceError(f"line {number}: write geonode_username=tessera_username")
        try:
            target = users.normalize_username(target)
        except users.UserError as error:
            raise SourceError(f"line {number}: {target!r}: {error.message}") from None
        if source in mapping:
            raise SourceError(f"line {number}: GeoNode user {source!r} is already mapped on line {mapping[source][1]}")
        if target.lower() in targets:
            raise SourceError(f"line {number}: Tessera user {target!r} is already named on line "
                              f"{targets[target.lower()]}")
        mapping[source], targets[target.lower()] = (target, number), number
    return mapping


def earlier_imports() -> dict[str, tuple[int, str]]:
    """The Tessera users earlier runs made, as (id, username) by the GeoNode username each
    was made from (their `user.created` audit events say so)."""
    made = {}
    for target_id, label, details in db.session.execute(
            select(AuditEvent.target_id, AuditEvent.target_label, AuditEvent.details).where(
                AuditEvent.action == "user.created", AuditEvent.actor == IMPORT_ACTOR,
                AuditEvent.target_type == "user")):
        details = details or {}
        if details.get("imported_from") == SOURCE_NAME and target_id.isdigit():
            made[int(target_id)] = (details.get("source_username", label), details.get("sub"), label)
    found = {}
    for user_id, username, user_sub in db.session.execute(select(User.id, User.username, User.sub)):
        if user_id in made:
            source, sub, label = made[user_id]
            if (user_sub == sub) if sub else (username == label):  # not a later user with a reused id
                found[source] = (user_id, username)
    return found


class UserMatcher:
    """For each GeoNode user, the Tessera user it is: one an earlier run made from it, one the
    operator's rule names (attached), a new one (created), or none (refused, and its tokens
    with it). Two GeoNode users never become one Tessera user, and a dry run decides as
    `--apply` does."""

    def __init__(self, summary: Summary, matching: Matching):
        self.summary, self.matching = summary, matching
        self.earlier = earlier_imports()
        self.holders = {user_id: source for source, (user_id, _) in self.earlier.items()}  # -> GeoNode username
        self.claimed: dict[str, str] = {}  # lower-cased name made in this run -> GeoNode username
        self.mapped_lines: set[int] = set()

    def resolve(self, row) -> str | None:
        """The Tessera username GeoNode's user `row` becomes (or would), or None if refused."""
        source = row.username
        if not isinstance(source, str) or not source:
            return self.refuse(repr(source), "the username is not text")
        label = repr(source)
        email, email_problem = clean_email(row.email)
        if source in self.earlier:
            self.summary.count("users", PRESENT)
            return self.earlier[source][1]
        if source in self.matching.mapping:
            target, line = self.matching.mapping[source]
            self.mapped_lines.add(line)
            why = f"--map line {line}"
            if target.lower() in self.claimed:
                return self.refuse(label, f"{why}: {target!r} is made in this run for GeoNode user "
                                          f"{self.claimed[target.lower()]!r}")
            existing = users.find_by_name(target)
            if existing is None:
                return self.create(row, label, target, email, email_problem)
            if existing.username != target:
                return self.refuse(label, f"{why} names {target!r}, but Tessera's user is {existing.username!r}: "
                                          "write the name as Tessera has it")
            return self.attach(row, label, email, existing, why)
        try:
            username = users.normalize_username(source)
        except users.UserError as error:
            return self.refuse(label, f"{error.message}; give it a Tessera name with --map ({source}=NEW_NAME)")
        if username.lower() in self.claimed:
            return self.refuse(label, f"{username!r} is made in this run for GeoNode user "
                                      f"{self.claimed[username.lower()]!r}; give this one a name with --map")
        if self.matching.by_email and email:
            same = [user for user in db.session.scalars(select(User).where(func.lower(User.email) == email.lower()))
                    if user.username.lower() not in self.claimed]
            if len(same) > 1:
                return self.refuse(label, f"{len(same)} Tessera users have the email {email}: choose one with --map")
            if same:
                return self.attach(row, label, email, same[0], "the same email (--match email)")
        existing = users.find_by_name(username)
        if existing is not None:
            return self.refuse(label, f"Tessera has a user {existing.username!r} ({role(existing)}, email "
                                      f"{existing.email or 'none'}) and no rule you chose makes them the same person: "
                                      f"attach it with --map ({source}={existing.username}) or import it under a new "
                                      f"name with --map ({source}=NEW_NAME)")
        return self.create(row, label, username, email, email_problem)

    def refuse(self, label: str, reason: str) -> None:
        self.summary.refuse("users", label, reason)
        return None

    def attach(self, row, label: str, email: str | None, user: User, why: str) -> str | None:
        """GeoNode's user becomes the existing `user`: its tokens are that user's; nothing of
        the Tessera user changes (password, email, role)."""
        source = row.username
        holder = self.holders.get(user.id)
        if holder is not None and holder != source:
            return self.refuse(label, f"Tessera user {user.username!r} is already GeoNode user {holder!r}")
        if user.is_admin and not self.matching.allow_admin:
            return self.refuse(label, f"{why} names Tessera user {user.username!r}, an administrator: attaching to an "
                                      "administrator needs --allow-admin-match")
        self.holders[user.id] = source
        self.summary.match("users", f"user {label} (GeoNode email {email or 'none'}"
                                    f"{', superuser' if row.is_superuser else ''}) -> Tessera user {user.username!r} "
                                    f"({role(user)}, email {user.email or 'none'}): {why}")
        if self.summary.apply:
            audit.record("user.import_matched", actor=IMPORT_ACTOR, target=user, imported_from=SOURCE_NAME,
                         source_username=source, reason=why)
            db.session.commit()
        return user.username

    def create(self, row, label: str, username: str, email: str | None, email_problem: str | None) -> str | None:
        summary, source = self.summary, row.username
        self.claimed[username.lower()] = source
        password = row.password if isinstance(row.password, str) else ""
        problem = django_hash_problem(password) if password and not password.startswith("!") else None
        if problem:
            summary.note(f"user {label}: password hash refused ({problem}): imported without a password "
                         "(an admin sets one)")
        if email_problem:
            summary.note(f"user {label}: {email_problem}: imported without an email")
        name = " ".join(part.strip() for part in (row.first_name, row.last_name)
                        if isinstance(part, str) and part.strip())
        if not name.isprintable():
            summary.note(f"user {label}: the name has control or invisible characters: imported without a name")
            name = ""
        try:
            joined = as_datetime(row.date_joined, "date_joined")
        except RecordError:
            joined = None
        if summary.apply:
            try:
                user = users.create(username, None, actor=IMPORT_ACTOR, email=email, name=name[:200],
                                    is_admin=bool(row.is_superuser), active=bool(row.is_active),
                                    imported_from=SOURCE_NAME, source_username=source)
            except users.UserError as error:
                db.session.rollback()
                return self.refuse(label, error.message)
            users.keep_password_hash(user, password)
            user.created_at = min(joined, clock.now()) if joined else user.created_at
            db.session.commit()
        summary.count("users", CREATED)
        return username


def clean_email(value) -> tuple[str | None, str | None]:
    """An imported email as Tessera stores one (normalised), and why it was dropped if it was."""
    if not isinstance(value, str) or not value.strip():
        return None, None if value is None or isinstance(value, str) else "the email is not text"
    value = value.strip()
    try:
        return validate_email(value, check_deliverability=False).normalized, None
    except EmailNotValidError as error:
        return None, f"the email is not valid ({error})"


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
        try:
            self.connection = self.engine.connect()
        except DBAPIError as error:
            raise SourceError(f"cannot read the database: {error.orig}") from None
        return self

    def __exit__(self, *exc):
        self.connection.close()
        self.engine.dispose()

    def length(self) -> int:
        try:
            return sum(self.connection.scalar(select(func.count()).select_from(table))
                       for table in (self.users, self.applications, self.access))
        except DBAPIError as error:
            raise SourceError(f"cannot read the database: {error.orig}") from None

    def user_rows(self):
        c = self.users.c
        return self.connection.execute(
            select(c.id, c.username, c.email, c.first_name, c.last_name, c.is_superuser, c.is_active, c.password,
                   raw(c.date_joined)).order_by(c.id))

    def application_rows(self):
        c = self.applications.c
        return self.connection.execute(
            select(c.id, c.client_id, c.name, c.client_type, c.client_secret, c.redirect_uris,
                   c.authorization_grant_type).order_by(c.id))

    def token_rows(self):
        """Every access token with its unrevoked refresh token, if it has one."""
        access, refresh = self.access, self.refresh
        live_refresh = (refresh.c.access_token_id == access.c.id) & refresh.c.revoked.is_(None)
        return self.connection.execute(
            select(access.c.token, raw(access.c.expires), access.c.scope, access.c.application_id, access.c.user_id,
                   raw(access.c.created), access.c.source_refresh_token_id, refresh.c.token.label("refresh_token"),
                   raw(refresh.c.created).label("refresh_created"))
            .select_from(access.outerjoin(refresh, live_refresh)).order_by(access.c.id))

    def run(self, *, apply: bool, advance=lambda n: None, matching: Matching = Matching()) -> Summary:
        """Import everything (one transaction with `apply`); refused records are listed."""
        summary = Summary("django-oauth-toolkit", apply, ("users", "applications", "tokens"))
        with one_transaction(apply):
            now = clock.now()
            matcher, usernames, refused_users = UserMatcher(summary, matching), {}, {}
            for row in self.user_rows():
                usernames[row.id] = matcher.resolve(row)
                if usernames[row.id] is None:
                    refused_users[row.id] = row.username
                advance(1)
            for source, (_, line) in matching.mapping.items():
                if line not in matcher.mapped_lines:
                    summary.note(f"--map line {line}: GeoNode has no user {source!r} (or an earlier run made it)")
            scopes = token_scopes(self.connection, self.access)
            client_ids, maker = {}, ApplicationMaker(summary)
            for row in self.application_rows():
                key = row.client_id if isinstance(row.client_id, str) else repr(row.client_id)
                client_ids[row.id] = row.client_id if maker.ensure(
                    key, lambda: register(row, scopes.get(row.id, set()), summary)) else None
                advance(1)
            refresh_lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_EXPIRE_SECONDS"])
            seen: set[str] = set()
            for row in self.token_rows():
                import_token_row(row, summary, now, refresh_lifetime, usernames, refused_users, client_ids, seen)
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
        if isinstance(scope, str):
            scopes.setdefault(application_id, set()).update(scope.split())
    return scopes


def register(row, token_scopes_seen: set[str], summary: Summary) -> bool:
    """Register one DOT application (False if its client id is here already)."""
    try:
        client_id = text_or_none(row.client_id, "the client id") or ""
        name = (text_or_none(row.name, "the name") or "").strip() or client_id
        secret = text_or_none(row.client_secret, "the client secret") or ""
        redirect_uris = (text_or_none(row.redirect_uris, "redirect_uris") or "").split()
    except RecordError as error:
        raise applications.ApplicationError(str(error)) from None
    if not applications.CLIENT_ID_PATTERN.match(client_id):
        raise applications.ApplicationError("the client id may use letters, digits and . _ ~ - (at most 100)",
                                            "client_id")
    if db.session.scalar(select(Application.id).where(Application.client_id == client_id)):
        return False
    client_type = PUBLIC if row.client_type == PUBLIC else CONFIDENTIAL
    grant_types = GRANTS.get(row.authorization_grant_type) if isinstance(row.authorization_grant_type, str) else None
    if grant_types is None:
        raise applications.ApplicationError(f"unknown grant type {row.authorization_grant_type!r}", "grant_types")
    if row.authorization_grant_type in ("implicit", "password", "openid-hybrid"):
        summary.note(f"application {client_id!r}: Tessera has no {row.authorization_grant_type} grant; "
                     f"it may use {', '.join(grant_types)}")
    if db.session.scalar(select(Application.id).where(Application.name == name)):
        name = f"{name} ({client_id})"[:100]
    kept_hash = secret if client_type == CONFIDENTIAL and django_algorithm(secret) else None
    problem = django_hash_problem(kept_hash) if kept_hash else None
    if problem:
        raise applications.ApplicationError(f"its secret hash is refused: {problem}", "client_secret")
    if client_type == CONFIDENTIAL and kept_hash is None and "$" in secret:
        raise applications.ApplicationError(
            f"its secret is hashed with {secret.split('$')[0][:40]!r}, which Tessera does not check", "client_secret")
    plain_secret = secret if client_type == CONFIDENTIAL and kept_hash is None and secret else None
    scope = " ".join(dict.fromkeys(DEFAULT_SCOPE + sorted(token_scopes_seen)))
    applications.check_name(name)
    applications.check_settings(client_type, redirect_uris, grant_types, (), None)
    if summary.apply:
        applications.register_application(
            name=name, client_type=client_type, client_id=client_id, client_secret=plain_secret,
            client_secret_hash=kept_hash, redirect_uris=redirect_uris, grant_types=grant_types, scope=scope,
            description="Imported from django-oauth-toolkit", actor=IMPORT_ACTOR)
    return True


def import_token_row(row, summary: Summary, now: datetime, refresh_lifetime: timedelta, usernames: dict,
                     refused_users: dict, client_ids: dict, seen: set[str]) -> None:
    value = row.token
    label = f"{hint_for(value)}…" if isinstance(value, str) and value else "(empty)"
    try:
        # django-oauth-toolkit counts a token without an expiry as expired.
        expires_at = as_datetime(row.expires, "expires") or now
        issued_at = as_datetime(row.created, "created")
        refresh_created = as_datetime(row.refresh_created, "the refresh token's created")
        scope = text_or_none(row.scope, "scope") or ""
        text_or_none(value, "the token"), text_or_none(row.refresh_token, "the refresh token")
    except RecordError as error:
        summary.refuse("tokens", label, str(error))
        return
    refresh_value, refresh_expires_at = row.refresh_token, None
    if refresh_value is not None:
        refresh_expires_at = min(refresh_created or now, now) + refresh_lifetime
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
        summary.refuse("tokens", label, "its application was refused" if row.application_id in client_ids else
                       "its application is not in the database")
        return
    username = usernames.get(row.user_id) if row.user_id is not None else None
    if row.user_id is not None and username is None:
        summary.refuse("tokens", label, f"its user {refused_users[row.user_id]!r} was refused"
                       if row.user_id in refused_users else "its user is not in the database")
        return
    source = ("client_credentials" if row.user_id is None else
              "refresh_token" if row.source_refresh_token_id else "authorization_code")
    summary.add_token(
        label, application=db.session.scalar(select(Application).where(Application.client_id == client_id)),
        source=source, value=value, expires_at=capped_expiry(expires_at, now, summary, label), scope=scope,
        user=users.find_by_name(username) if username else None,
        issued_at=issued_at, refresh_value=refresh_value, refresh_expires_at=refresh_expires_at)
