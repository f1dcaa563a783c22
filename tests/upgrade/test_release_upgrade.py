"""Upgrading from an earlier release keeps every row and every credential (issue 21).

For each release and database, an operator of that release sets Tessera up with the
release's own `portal` commands and gunicorn: `portal init`, tenants, users, a second
admin, OAuth clients, CLI tokens, and a real authorization-code flow with PKCE through
its gunicorn. Then the current wheel's `portal init` upgrades the same database and
instance folder, and the current gunicorn must accept everything the old release
handed out: tokens, refresh tokens, ID tokens, passwords, client secrets, a logged-in
admin's cookie. The tests of one case share its fixture and run in file order: the
refresh test, which spends the refresh token, is last."""

import base64
import hashlib
import html
import json
import re
import secrets
import sqlite3
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from sqlalchemy import create_engine, func, inspect, select, table, text

from portal.db.schema import head, steps_between
from tests.conftest import NO_POSTGRES, TEST_DATABASE_URL, csrf_token_from, fresh_postgres_database
from tests.deploy.conftest import skip_or_fail
from tests.upgrade.conftest import RELEASES, ROOT, Install, Site, unavailable

pytestmark = pytest.mark.upgrade

CASES = [(release, database) for release in RELEASES for database in ("sqlite", "postgresql")]
CONSENT_FORM = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')
CALLBACK = "https://rp.example/callback"  # never visited: the code is read from the Location header
SPA_CALLBACK = "http://127.0.0.1/spa"
DEFAULT_APPLICATIONS = ("adminconsole", "crafterengine", "craftersocial")
# Tables whose row count may differ after the upgrade, and why. None may: between the two
# counts only `portal init` runs, and it adds nothing that the old release already made.
MAY_CHANGE: dict[str, str] = {}
# Releases whose create-application has no --post-logout-redirect-uri (it came in 0.2.0).
NO_POST_LOGOUT_OPTION = {"8bdb08c"}
MIGRATED = re.compile(r"^Migrated the database from (\S+) to (\S+) \((\d+) steps?\)(?:; backup: (.+))?$", re.M)


@dataclass
class Before:
    """What the operator of the old release made, and what it handed out."""

    passwords: dict[str, str]  # username → password
    sub: str  # alice's
    clients: dict[str, dict]  # name → create-application's JSON
    admin_browser: requests.Session  # logged in through the old gunicorn; its cookie is reused
    tokens: dict[str, str] = field(default_factory=dict)  # what → token value
    refresh_token: str = ""
    id_token: str = ""
    revision: str = ""  # the database's, before the upgrade
    counts: dict[str, int] = field(default_factory=dict)  # every table's rows, before the upgrade


@dataclass
class Upgraded:
    release: str
    database: str
    site: Site
    before: Before
    init_output: str
    counts: dict[str, int]
    url: str  # the current gunicorn on the upgraded database


# --- reading the database from the test ----------------------------------------------------

def row_counts(database_url: str) -> dict[str, int]:
    """The row count of every table in the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(table(name)))
                    for name in sorted(inspect(connection).get_table_names())}
    finally:
        engine.dispose()


def database_revision(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


# --- what a browser and a relying party do -----------------------------------------------

def login(url: str, username: str, password: str, browser: requests.Session | None = None) -> requests.Session:
    """A browser logged in through the /login form (CSRF token included)."""
    browser = browser or requests.Session()
    form = browser.get(url + "/login", timeout=10)
    answer = browser.post(url + "/login", allow_redirects=False, timeout=10,
                          data={"username": username, "password": password, "csrf_token": csrf_token_from(form.text)})
    assert answer.status_code == 303, f"login as {username}: {answer.status_code} {answer.text[:500]}"
    return browser


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_code(url: str, browser: requests.Session, client_id: str, redirect_uri: str) -> tuple[str, str]:
    """/authorize with PKCE, the consent form answered `allow`; returns (code, verifier)."""
    verifier, challenge = pkce_pair()
    consent = browser.get(url + "/authorize?" + urlencode({
        "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid email profile",
        "state": "upgrade", "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
        "code_challenge_method": "S256"}), timeout=10)
    form = CONSENT_FORM.search(consent.text)
    assert consent.status_code == 200 and form, f"no consent form: {consent.status_code} {consent.text[:800]}"
    allowed = browser.post(urljoin(url, html.unescape(form.group(1))), allow_redirects=False, timeout=10,
                           data={"csrf_token": csrf_token_from(consent.text), "decision": "allow"})
    assert allowed.status_code == 302, f"{allowed.status_code} {allowed.text[:500]}"
    location = allowed.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["upgrade"]
    return query["code"][0], verifier


def token_request(url: str, data: dict, auth: tuple[str, str] | None = None) -> dict:
    answer = requests.post(url + "/token", data=data, auth=auth, timeout=10)
    assert answer.status_code == 200, f"/token {data['grant_type']}: {answer.status_code} {answer.text}"
    return answer.json()


def secret_in_body(client: dict) -> dict:
    """client_secret_post: the one method every release accepts for a client made without
    naming one (v0.1.0 made them client_secret_post only)."""
    return {"client_id": client["client_id"], "client_secret": client["client_secret"]}


def introspect(url: str, client: dict, value: str) -> dict:
    answer = requests.post(url + "/introspect", data={"token": value}, timeout=10,
                           auth=(client["client_id"], client["client_secret"]))
    assert answer.status_code == 200, f"/introspect: {answer.status_code} {answer.text}"
    return answer.json()


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


# --- the old release's operator ------------------------------------------------------------

def make_data(old: Install, site: Site, admin_browser: requests.Session) -> Before:
    """Set up Tessera as an operator of the old release would, through its CLI and gunicorn."""
    # In one process (the old release's `portal` commands, run by tests/portal_batch.py), in order.
    passwords = {"admin": "", "second-admin": secrets.token_urlsafe(16), "alice": secrets.token_urlsafe(16)}
    custom_value = "migrated-from-crafter-" + secrets.token_hex(8)
    later = [] if old.name in NO_POST_LOGOUT_OPTION else ["--post-logout-redirect-uri", "https://rp.example/bye"]
    printed, *_, created, webapp, spa, service, master, custom, two_tenants = old.portal_many(
        site,
        ("init",),
        ("create-tenant", "site1", "--label", "Site One"),
        ("create-tenant", "site2"),
        (("create-admin", "second-admin", "--password-stdin"), passwords["second-admin"] + "\n"),
        (("create-user", "alice", "--email", "alice@example.org", "--tenant", "site1", "--name", "Alice Liddell",
          "--password-stdin"), passwords["alice"] + "\n"),
        ("create-application", "webapp", "--redirect-uri", CALLBACK, "--grant-type", "authorization_code",
         "--grant-type", "refresh_token", "--response-type", "code", "--scope", "openid email profile", *later),
        ("create-application", "spa", "--public", "--redirect-uri", SPA_CALLBACK,
         "--grant-type", "authorization_code", "--response-type", "code", "--scope", "openid email profile"),
        ("create-application", "service", "--grant-type", "client_credentials", "--scope", "reports"),
        ("create-token", "--application", "adminconsole", "--master"),
        ("create-token", "--application", "craftersocial", "--value", custom_value, "--tenant", "site1=READ_TENANT"),
        ("create-token", "--application", "crafterengine", "--user", "alice",
         "--tenant", "site1=READ_TENANT,MANAGE_PROFILES", "--tenant", "site2=READ_TENANT"))
    admin = re.search(r"Created admin user 'admin' with password: (\S+)", printed)
    assert admin, f"portal init printed no admin password:\n{printed}"
    passwords["admin"] = admin.group(1)
    defaults = dict(re.findall(r"^\s+(adminconsole|crafterengine|craftersocial)\s+(\S+)$", printed, re.M))
    assert sorted(defaults) == sorted(DEFAULT_APPLICATIONS), printed
    assert custom.strip() == custom_value, custom
    before = Before(passwords=passwords, sub=re.search(r"\(sub (\S+)\)", created).group(1),
                    clients={"webapp": json.loads(webapp), "spa": json.loads(spa), "service": json.loads(service)},
                    admin_browser=admin_browser)
    before.tokens.update({f"default {name}": value for name, value in defaults.items()})
    before.tokens.update({"master": master.strip(), "custom value": custom_value, "two tenants": two_tenants.strip()})

    # One worker: the old release only hands out what the test keeps (the current code serves
    # the upgraded site with two, as an operator runs it).
    with old.serving(site, workers=1) as url:
        webapp, spa, service = before.clients["webapp"], before.clients["spa"], before.clients["service"]
        with requests.Session() as browser:
            login(url, "alice", passwords["alice"], browser)
            code, verifier = authorization_code(url, browser, webapp["client_id"], CALLBACK)
            issued = token_request(url, {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                                         "code_verifier": verifier, **secret_in_body(webapp)})
            assert issued["refresh_token"] and issued["id_token"], issued
            before.tokens["oauth access"] = issued["access_token"]
            before.refresh_token, before.id_token = issued["refresh_token"], issued["id_token"]
            code, verifier = authorization_code(url, browser, spa["client_id"], SPA_CALLBACK)
            before.tokens["public client access"] = token_request(url, {
                "grant_type": "authorization_code", "code": code, "redirect_uri": SPA_CALLBACK,
                "code_verifier": verifier, "client_id": spa["client_id"]})["access_token"]
        before.tokens["client credentials"] = token_request(
            url, {"grant_type": "client_credentials", **secret_in_body(service)})["access_token"]
        login(url, "admin", passwords["admin"], admin_browser)
        assert before.admin_browser.get(url + "/admin", allow_redirects=False, timeout=10).status_code == 200
        # Every token works before the upgrade, so a failure after it is the upgrade's.
        for what, value in before.tokens.items():
            assert introspect(url, webapp, value)["active"], f"{what} is not active before the upgrade"

    before.revision = database_revision(site.url)
    before.counts = row_counts(site.url)
    return before


@pytest.fixture(scope="module", params=CASES, ids=[f"{release}-{database}" for release, database in CASES])
def case(request):
    return request.param


@pytest.fixture(scope="module")
def upgraded(case, request, tmp_path_factory):
    """The old release's data, upgraded by the current wheel's `portal init` and served by
    the current gunicorn."""
    release, database = case
    if database == "postgresql" and not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    reason = unavailable(release)
    if reason:
        skip_or_fail(reason)
    installs = request.getfixturevalue("installs")  # built only once a case is sure to run
    old, current = installs[release], installs["current"]
    folder = tmp_path_factory.mktemp(f"upgrade-{release}-{database}")
    with fresh_postgres_database(f"tessera_upgrade_{release}") if database == "postgresql" else nullcontext() as url:
        site = Site(folder, url)
        with requests.Session() as admin_browser:
            started = time.monotonic()
            before = make_data(old, site, admin_browser)
            made = time.monotonic()
            init_output = current.portal(site, "init")
            counts = row_counts(site.url)
            print(f"\n{release} on {database}: data made in {made - started:.1f} s, "
                  f"upgraded in {time.monotonic() - made:.1f} s")
            with current.serving(site) as new_url:
                yield Upgraded(release, database, site, before, init_output, counts, new_url)


# --- after the upgrade ---------------------------------------------------------------------

def test_init_migrates_to_head_and_prints_no_new_secrets(upgraded):
    migrations = str(ROOT / "migrations")
    latest, old = head(migrations), upgraded.before.revision
    printed = upgraded.init_output
    assert database_revision(upgraded.site.url) == latest
    assert "Default application tokens" not in printed and "Created admin user" not in printed, printed
    assert "Created the RS256 signing key" not in printed, printed
    migrated = MIGRATED.search(printed)
    if old == latest:
        assert migrated is None and f"The database is already at the latest schema ({latest})." in printed, printed
        return
    assert migrated, f"portal init did not say it migrated from {old}:\n{printed}"
    assert migrated.group(1, 2, 3) == (old, latest, str(steps_between(old, latest, migrations))), printed
    backup = migrated.group(4)
    if upgraded.database == "postgresql":
        assert backup is None, printed
        return
    assert backup, f"no backup named:\n{printed}"
    backup = upgraded.site.folder / backup  # as printed: absolute, or from the folder portal ran in
    assert backup.is_file(), printed
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (old,)
        tokens = copy.execute("SELECT count(*) FROM access_tokens").fetchone()[0]
    assert tokens == upgraded.before.counts["access_tokens"]


def test_every_row_is_kept(upgraded):
    before, after = upgraded.before.counts, upgraded.counts
    print(f"\nrow counts, {upgraded.release} on {upgraded.database} (before → after the upgrade):")
    for name in sorted(before.keys() | after.keys()):
        print(f"  {name:<24} {before.get(name, '-'):>5} → {after.get(name, '-')}")
    assert before["access_tokens"] >= 10, before  # the data was made: defaults, CLI, OAuth and session tokens
    assert not before.keys() - after.keys(), f"tables gone: {sorted(before.keys() - after.keys())}"
    changed = {name: (count, after[name]) for name, count in before.items()
               if after[name] != count and name not in MAY_CHANGE}
    assert not changed, f"row counts changed (before, after): {changed}"
    new_tables = {name: after[name] for name in after.keys() - before.keys()}
    assert all(count == 0 for count in new_tables.values()), f"new tables with rows: {new_tables}"


def test_old_tokens_authenticate_at_the_api(upgraded):
    url, tokens = upgraded.url, upgraded.before.tokens
    for what in ("master", "default adminconsole"):
        answer = requests.get(url + "/api/v1/access-tokens", headers=bearer(tokens[what]), timeout=10)
        assert answer.status_code == 200, f"{what}: {answer.status_code} {answer.text}"
    for what, tenant in [("two tenants", "site1"), ("two tenants", "site2"), ("custom value", "site1"),
                         ("default crafterengine", "site2"), ("default craftersocial", "site1")]:
        answer = requests.get(f"{url}/api/v1/tenants/{tenant}", headers=bearer(tokens[what]), timeout=10)
        assert answer.status_code == 200, f"{what} on {tenant}: {answer.status_code} {answer.text}"
        assert answer.json()["name"] == tenant
    assert requests.get(url + "/api/v1/tenants/site1", headers={"Authorization": "Bearer tsr_" + "x" * 43},
                        timeout=10).status_code == 401


def test_old_tokens_are_active_at_introspection(upgraded):
    clients = upgraded.before.clients
    for what, value in upgraded.before.tokens.items():
        for client in ("webapp", "service"):
            facts = introspect(upgraded.url, clients[client], value)
            assert facts["active"] is True, f"{what} (asked by {client}): {facts}"
    answer = introspect(upgraded.url, clients["webapp"], upgraded.before.refresh_token)
    assert answer["active"] is True and answer["token_type"] == "refresh_token", answer
    assert introspect(upgraded.url, clients["webapp"], "tsr_" + "x" * 43) == {"active": False}


def test_old_oauth_access_tokens_read_userinfo(upgraded):
    for what in ("oauth access", "public client access"):
        answer = requests.get(upgraded.url + "/userinfo", headers=bearer(upgraded.before.tokens[what]), timeout=10)
        assert answer.status_code == 200, f"{what}: {answer.status_code} {answer.text}"
        assert answer.json()["sub"] == upgraded.before.sub and answer.json()["email"] == "alice@example.org"


def test_old_id_token_verifies_with_the_published_keys(upgraded):
    keys = requests.get(upgraded.url + "/jwks", timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(upgraded.before.id_token)["kid"]
    key = next((jwt.PyJWK(key) for key in keys if key["kid"] == kid), None)
    assert key, f"the old signing key {kid} is no longer in /jwks: {[key['kid'] for key in keys]}"
    # Not the issuer: it is the request's host URL, and the old gunicorn had another port.
    claims = jwt.decode(upgraded.before.id_token, key=key.key, algorithms=["RS256"],
                        audience=upgraded.before.clients["webapp"]["client_id"], options={"verify_iss": False})
    assert claims["sub"] == upgraded.before.sub


def test_old_passwords_log_in(upgraded):
    for username, password in upgraded.before.passwords.items():
        with login(upgraded.url, username, password):
            pass


def test_old_client_secrets_still_work(upgraded):
    url, clients = upgraded.url, upgraded.before.clients
    issued = token_request(url, {"grant_type": "client_credentials", **secret_in_body(clients["service"])})
    assert introspect(url, clients["service"], issued["access_token"])["active"] is True
    wrong = {**secret_in_body(clients["service"]), "client_secret": "not-the-secret"}
    refused = requests.post(url + "/token", data={"grant_type": "client_credentials", **wrong}, timeout=10)
    assert refused.status_code == 401, refused.text


def test_admin_session_cookie_still_opens_admin(upgraded):
    answer = upgraded.before.admin_browser.get(upgraded.url + "/admin", allow_redirects=False, timeout=10)
    assert answer.status_code == 200, f"{answer.status_code} {answer.headers.get('Location')}"
    assert "Dashboard" in answer.text
    with requests.Session() as stranger:
        assert stranger.get(upgraded.url + "/admin", allow_redirects=False, timeout=10).status_code == 302


def test_old_refresh_token_refreshes(upgraded):
    """Last: it spends the refresh token (rotation)."""
    url, webapp = upgraded.url, upgraded.before.clients["webapp"]
    refreshed = token_request(url, {"grant_type": "refresh_token", "refresh_token": upgraded.before.refresh_token},
                              auth=(webapp["client_id"], webapp["client_secret"]))
    assert refreshed["refresh_token"] != upgraded.before.refresh_token
    answer = requests.get(url + "/userinfo", headers=bearer(refreshed["access_token"]), timeout=10)
    assert answer.status_code == 200 and answer.json()["sub"] == upgraded.before.sub, answer.text
