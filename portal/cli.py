"""The `portal` command group (the same commands as `flask --app wsgi`)."""

import json
import platform
import secrets
import sys
from importlib import metadata

import click
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from portal import __version__, tokens
from portal.domain import audit, factors, tenants, users
from portal.domain.words import plural
from portal.db import lifecycle
from portal.extensions import db
from portal.models import Application, Tenant, User
from portal.models.application import CONFIDENTIAL, PUBLIC, SECRET_METHODS
from portal.tokens import permissions as perms

CLI_ACTOR = "cli"  # how the audit log names what the command line did

# Crafter Profile's default applications and what their tokens may do.
DEFAULT_APPLICATIONS = [
    ("adminconsole", True, [{"tenant": "*", "actions": ["*"]}]),
    ("crafterengine", False, [{"tenant": "*", "actions": list(perms.DEFAULT_ROW_ACTIONS)}]),
    ("craftersocial", False, [{"tenant": "*", "actions": list(perms.DEFAULT_ROW_ACTIONS)}]),
]


def fail(message: str):
    raise click.ClickException(message)


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return users.check_password(password)
    except users.UserError as error:
        fail(f"{error.field}: {error.message}")


def find_tenant(name: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        fail(f"no tenant named {name!r}; create it with: portal create-tenant {name}")
    return tenant


def create_user(username: str, password: str, *, email=None, name="", tenant=None, admin=False) -> User:
    """A new user (an administrator belongs to no tenant), by the rules of portal.domain.users."""
    try:
        user = users.create(username, password, actor=CLI_ACTOR, email=email, name=name, tenant=tenant,
                            is_admin=admin)
    except users.UserError as error:
        fail(f"{error.field}: {error.message}")
    db.session.commit()
    return user


@click.command("init")
@with_appcontext
def init_command():
    """Migrate the database to the latest schema (a SQLite file is backed up beside itself
    first), then create keys, built-in applications, default tokens and an admin if missing."""
    from portal.db.lifecycle import migrate_database
    from portal.domain.signing import ensure_signing_key

    for line in migrate_database():
        click.echo(line)
    if ensure_signing_key():
        click.echo("Created the RS256 signing key.")
    tokens.portal_application()
    created = []
    for name, master, tenant_permissions in DEFAULT_APPLICATIONS:
        if db.session.scalar(select(Application.id).where(Application.name == name)):
            continue
        application = Application(name=name, client_id=name, client_type=CONFIDENTIAL,
                                  description="Crafter-compatible default application")
        application.set_secret()
        db.session.add(application)
        db.session.commit()
        issued = tokens.create_token(application=application, source="admin", master=master,
                                     tenant_permissions=tenant_permissions, actor="portal init",
                                     expires_in=10 * 365 * 86400)
        created.append((name, issued.value))
    if created:
        click.echo("Default application tokens (shown once; store them now):")
        for name, value in created:
            click.echo(f"  {name:<14} {value}")
    if db.session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)) is None:
        username = "admin"
        if users.username_taken(username):
            username = "admin-" + secrets.token_hex(2)
        password = secrets.token_urlsafe(12)
        create_user(username, password, admin=True)
        click.echo(f"Created admin user {username!r} with password: {password}   (shown once)")
    click.echo("Tessera is initialised.")


@click.command("create-admin")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_admin_command(username, password_stdin):
    """Create an administrator."""
    user = create_user(username, read_password(password_stdin), admin=True)
    click.echo(f"Created admin {user.username}.")


@click.command("create-user")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--tenant", "tenant_name")
@click.option("--name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_user_command(username, email, tenant_name, name, password_stdin):
    """Create a user (a profile of a tenant)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        fail(f"--email: {error}")
    tenant = find_tenant(tenant_name) if tenant_name else None
    user = create_user(username, read_password(password_stdin), email=email, name=name, tenant=tenant)
    click.echo(f"Created user {user.username} (sub {user.sub}).")


@click.command("set-password")
@click.argument("username")
@with_appcontext
def set_password_command(username):
    """Set a user's password and end all their login sessions.

    The password is read from standard input (one line); at a terminal, a prompt asks
    for it twice."""
    user = users.find_by_name(username)
    if user is None:
        fail(f"no user named {username!r}")
    sessions = users.set_password(user, read_password(password_stdin=not sys.stdin.isatty()))
    audit.record("user.password_set", actor=CLI_ACTOR, target=user, sessions_ended=sessions)
    db.session.commit()
    click.echo(f"New password set for {user.username}; their login sessions ended.")


@click.command("reset-second-factor")
@click.argument("username")
@with_appcontext
def reset_second_factor_command(username):
    """Remove a user's passkeys, authenticator app and recovery codes (a locked-out admin).

    They sign in with their password alone until they set a factor up again (with
    ADMIN_SECOND_FACTOR=required, an administrator is sent to do so at once)."""
    user = users.find_by_name(username)
    if user is None:
        fail(f"no user named {username!r}")
    removed = factors.reset(user, actor=CLI_ACTOR, via="portal reset-second-factor")
    db.session.commit()
    click.echo(f"Second factors of {user.username} reset ({removed} removed).")


@click.command("reencrypt-second-factors")
@with_appcontext
def reencrypt_second_factors_command():
    """After SECRET_KEY changed: encrypt the authenticator-app secrets under the new key.

    The old SECRET_KEY is read from standard input (one line); the new one is the
    configured one. Secrets under neither key are left alone (reset those users)."""
    old_key = sys.stdin.readline().strip()
    if not old_key:
        fail("give the old SECRET_KEY on standard input")
    changed = factors.reencrypt(old_key)
    audit.record("second_factor.reencrypted", actor=CLI_ACTOR, target_type="second_factor", count=changed)
    db.session.commit()
    click.echo(f"{plural(changed, 'authenticator secret')} re-encrypted under the current SECRET_KEY.")


@click.command("create-tenant")
@click.argument("name")
@click.option("--label", default=None, help="Display name (defaults to NAME).")
@with_appcontext
def create_tenant_command(name, label):
    """Create a tenant."""
    try:
        tenants.create_tenant(name, label, actor=CLI_ACTOR)
    except tenants.TenantError as error:
        fail(f"{error.field}: {error.message}")
    click.echo(f"Created tenant {name}.")


@click.command("create-application")
@click.argument("name")
@click.option("--client-id")
@click.option("--client-secret")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--response-type", "response_types", multiple=True)
@click.option("--scope", default="openid email profile")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--auth-method", type=click.Choice(SECRET_METHODS),
              help="Accept only this client authentication at /token (default: both).")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Where /end_session may send the browser after logout (exact match; repeatable).")
@click.option("--resource", "resources", multiple=True,
              help="A resource server (audience URI) this client may ask tokens for with `resource` (repeatable).")
@with_appcontext
def create_application_command(name, client_id, client_secret, redirect_uris, grant_types,
                               response_types, scope, public, auth_method, post_logout_redirect_uris, resources):
    """Register an application (OAuth client); prints its client_id and client_secret."""
    from portal.domain.applications import ApplicationError, register_application

    try:
        application, secret = register_application(
            name=name, client_id=client_id, client_secret=client_secret, redirect_uris=list(redirect_uris),
            grant_types=list(grant_types), response_types=list(response_types), scope=scope,
            client_type=PUBLIC if public else CONFIDENTIAL, token_endpoint_auth_method=auth_method, actor="cli",
            post_logout_redirect_uris=list(post_logout_redirect_uris), resources=list(resources),
        )
    except ApplicationError as error:
        fail(str(error))
    click.echo(json.dumps({"name": application.name, "client_id": application.client_id,
                           "client_secret": secret}, indent=2))


@click.command("create-token")
@click.option("--application", "application_name", required=True)
@click.option("--user", "username")
@click.option("--value")
@click.option("--master", is_flag=True)
@click.option("--scope", default="")
@click.option("--expires-in", type=click.IntRange(min=1))
@click.option("--tenant", "tenant_specs", multiple=True, help="site1=READ_TENANT,MANAGE_PROFILES (repeatable)")
@with_appcontext
def create_token_command(application_name, username, value, master, scope, expires_in, tenant_specs):
    """Create an access token and print its value (shown once)."""
    application = db.session.scalar(select(Application).where(Application.name == application_name))
    if application is None:
        fail(f"no application named {application_name!r}")
    user = None
    if username:
        user = users.find_by_name(username)
        if user is None:
            fail(f"no user named {username!r}")
    try:
        permission_list = [perms.parse_cli_spec(spec) for spec in tenant_specs]
        issued = tokens.create_token(application=application, source="admin", user=user, value=value,
                                     master=master, scope=scope, expires_in=expires_in,
                                     tenant_permissions=permission_list, actor="cli")
    except tokens.TokenError as error:
        fail(f"--{error.field.split('[')[0].replace('_', '-')}: {error.message}")
    click.echo(issued.value)


@click.command("purge-expired")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(min=1))
@click.option("--revoked-days", default=30, show_default=True, type=click.IntRange(min=0),
              help="Keep revoked rows this long (they detect refresh-token replay).")
@with_appcontext
def purge_expired_command(batch_size, revoked_days):
    """Delete expired tokens, used or expired codes and long-revoked rows, in batches."""
    from portal.web import ratelimit
    from portal.tokens.purge import purges

    totals = {}
    for purge in purges(revoked_days):
        totals[purge.label] = 0
        with click.progressbar(length=purge.count(), label=f"Purging {purge.label}", file=sys.stderr) as bar:
            for deleted in purge.batches(batch_size):
                totals[purge.label] += deleted
                bar.update(deleted)
    counters = ratelimit.purge_expired()
    click.echo(f"Purged {totals['tokens']} tokens and {totals['codes']} authorization codes "
               f"(and {counters} finished rate-limit windows).")


@click.command("rotate-keys")
@click.option("--now", "at_once", is_flag=True,
              help="Sign with the new key at once (emergencies: verifiers with a cached /jwks refuse its tokens "
                   "until their cache expires).")
@with_appcontext
def rotate_keys_command(at_once):
    """Make the next signing key: published in /jwks now, signing after the JWKS cache
    lifetime (JWKS_CACHE_SECONDS); the old key stays in /jwks until its tokens expire."""
    from portal.domain.signing import RotationError, jwks_cache_seconds, rotate

    try:
        rotation = rotate(at_once=at_once)
    except RotationError as error:
        fail(str(error))
    key, seconds = rotation.key, jwks_cache_seconds()
    audit.record("signing_key.rotated", actor=CLI_ACTOR, target_type="signing_key", target_id=key.id,
                 target_label=key.kid, signs_from=key.signs_from.isoformat(), at_once=at_once,
                 previous=rotation.previous.kid if rotation.previous else None, withdrawn=rotation.withdrawn or None)
    db.session.commit()
    when = f"{key.signs_from:%Y-%m-%d %H:%M:%S} UTC"
    for kid in rotation.withdrawn:
        click.echo(f"Withdrew key {kid}, which was waiting to sign and never signed.")
    if at_once:
        click.echo(f"Key {key.kid} is published in /jwks and signs from now ({when}).")
        click.echo(f"Cost: a verifier that fetched /jwks in the last {seconds} s does not know {key.kid} and "
                   f"refuses every token it signs until its cached copy expires (up to {seconds} s; sooner if it "
                   "refetches /jwks on an unknown kid).")
    else:
        click.echo(f"Key {key.kid} is published in /jwks now and starts signing at {when}, after the JWKS "
                   f"cache lifetime ({seconds} s), so verifiers with a cached /jwks know it by then.")
    if rotation.previous is not None:
        until = rotation.previous_published_until()
        click.echo(f"Key {rotation.previous.kid} {'no longer signs' if at_once else 'signs until then'} and stays "
                   f"in /jwks until at least {until:%Y-%m-%d %H:%M:%S} UTC, when its last token has expired.")


@click.group("import")
def import_group():
    """Move tokens, applications, tenants and users from Crafter Profile or django-oauth-toolkit.
    A dry run unless --apply; with --apply, one transaction: the valid records land together,
    the refused ones are listed, and an error leaves nothing written."""


def run_import(label: str, length: int, run, apply: bool) -> None:
    """Run an importer under a progress bar, then print its summary; any error is one line
    (the importer's transaction has rolled back: nothing was written)."""
    from portal.importers import SourceError, describe, visible

    try:
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            summary = run(apply=apply, advance=bar.update)
    except SourceError as error:
        fail(visible(str(error)) + (" (nothing was written)" if apply else ""))
    except Exception as error:  # one clear line, never a traceback
        fail(f"the import stopped at an unexpected error{', and wrote nothing' if apply else ''}: {describe(error)}")
    click.echo("\n".join(summary.lines()))


@import_group.command("crafter")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--apply", is_flag=True, help="Write (one transaction); without it nothing is written.")
@with_appcontext
def import_crafter_command(file, apply):
    """Import a mongoexport of Crafter Profile's accessToken collection (JSON lines or array)."""
    from portal.importers import SourceError, crafter, visible

    try:
        records = crafter.read_export_file(file)
    except SourceError as error:
        fail(visible(f"{file}: {error}"))
    run_import("Reading Crafter tokens", len(records), lambda **kw: crafter.run(records, **kw), apply)


@import_group.command("dot")
@click.argument("database_url")
@click.option("--apply", is_flag=True, help="Write (one transaction); without it nothing is written.")
@click.option("--match", "match", type=click.Choice(["email"]),
              help="Attach a GeoNode user to the Tessera user with the same email (default: attach nobody).")
@click.option("--map", "map_file", type=click.Path(dir_okay=False),
              help="A file of geonode_username=tessera_username lines: attach to that Tessera user, or import "
                   "under that new name.")
@click.option("--allow-admin-match", is_flag=True,
              help="Let --match or --map attach a GeoNode user to a Tessera administrator.")
@with_appcontext
def import_dot_command(database_url, apply, match, map_file, allow_admin_match):
    """Import users, applications and live tokens from a django-oauth-toolkit (GeoNode) database."""
    from portal.importers import SourceError, dot, read_text, visible

    mapping = {}
    if map_file:
        try:
            mapping = dot.read_mapping(read_text(map_file, dot.MAX_MAPPING_BYTES))
        except SourceError as error:
            fail(visible(f"--map {map_file}: {error}"))
    matching = dot.Matching(mapping=mapping, by_email=match == "email", allow_admin=allow_admin_match)
    try:
        with dot.DotSource(database_url) as source:
            run_import("Reading django-oauth-toolkit", source.length(),
                       lambda **kw: source.run(matching=matching, **kw), apply)
    except SourceError as error:
        fail(visible(str(error)))


COMMANDS = [
    init_command, create_admin_command, create_user_command, set_password_command, reset_second_factor_command,
    reencrypt_second_factors_command, create_tenant_command,
    create_application_command, create_token_command, purge_expired_command, rotate_keys_command,
    import_group, *lifecycle.COMMANDS,
]


def register_commands(app) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def create_cli_app():
    """The app, with a DATABASE_URL it cannot use reported as a bad setting."""
    import os

    from sqlalchemy.exc import ArgumentError

    from portal import create_app
    from portal.config import ConfigError

    try:
        return create_app()
    except ArgumentError as error:  # not a URL, or no such dialect
        raise ConfigError(f"DATABASE_URL: {error}") from None
    except ModuleNotFoundError as error:
        if not os.environ.get("DATABASE_URL"):
            raise
        raise ConfigError(f"DATABASE_URL: its database driver is not installed ({error})") from None


def print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"portal {__version__}\nFlask {metadata.version('flask')}\nPython {platform.python_version()}")
    ctx.exit()


version_option = click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                              callback=print_version, help="Show Tessera's version (and Flask's and Python's).")

# load_dotenv=False: settings come from the environment, or from a file named with
# -e/--env-file; never from a .env or .flaskenv that Flask would look for in the current
# directory and every folder above it (docs/command-line.md).
portal_group = FlaskGroup(name="portal", create_app=create_cli_app, add_version_option=False, load_dotenv=False,
                          params=[version_option],
                          help="Tessera's command line (the same commands as `flask --app wsgi`).")


def main():
    """The `portal` console script: a bad setting or an unreachable database is a
    one-line error, not a traceback."""
    from sqlalchemy.exc import OperationalError

    from portal.config import ConfigError

    try:
        portal_group.main(prog_name="portal")
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except OperationalError as error:
        click.echo(f"Error: cannot use the database: {lifecycle.first_line(error)}", err=True)
        sys.exit(1)
