"""Fixtures: an app per test, a real gunicorn for end-to-end tests, and Debian's Chromium
through Playwright.

Which database a test's `app` uses: SQLite, unless the test is marked `both_databases`
(on the test, its class, or the module's `pytestmark`); then it runs once on SQLite and
once on PostgreSQL (skipped there without TEST_DATABASE_URL; CI sets it). Mark a test
`both_databases` when the database can change its outcome: migrations and schema,
constraints and what the database refuses (NUL characters, over-long values, duplicates),
SQL that differs by dialect or that the test counts (statement budgets, LIKE and case
rules, ordering and keyset pages, estimates), transactions, locking and concurrency, the
throttle's store, outages and readiness. Logic above the database (forms, OAuth flows,
headers, permissions) runs on SQLite only. A test that names its database itself
(`@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)`) keeps that
choice. Test ids keep the database's name (`test_x[sqlite]`, `test_x[postgresql]`).

What is made once per process rather than per test, as nothing a test does can change it:
the tables (SQLite: a file with the schema, copied for each test; PostgreSQL: made once,
their rows deleted after each test), the RSA signing keys (`premade_signing_keys`; tests
marked `real_signing_keys` and gunicorn servers make their own) and Jinja's compiled
templates, and the URL builders of the app's routes (`CachedBuilderRule`). Each test still
gets its own app, database rows, keys and kids.

Under pytest-xdist (`-n 2`) each worker has its own PostgreSQL database, TEST_DATABASE_URL's
name plus the worker's id (test_gw0, test_gw1, ...), made on first use; a module that holds
a server or a browser for several tests runs on one worker (`--dist loadgroup`)."""

import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from bench.harness import free_port
from bench.releases import build_wheel
from portal import create_app
from portal.config import access_token_format
from portal.db.connections import close_hot_connection, release_idle_connection
from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# TEST_DATABASE_URL as given: its database must exist; the server's other databases are made from it.
SERVER_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under pytest-xdist


def worker_database_url(url: str, worker: str) -> str:
    """The database this process's tests use: `url` itself, or `<name>_<worker>` under xdist."""
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


TEST_DATABASE_URL = worker_database_url(SERVER_DATABASE_URL, XDIST_WORKER)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
NO_POSTGRES = "TEST_DATABASE_URL is not set: the PostgreSQL run of this test is skipped"
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|value="([^"]+)" name="csrf_token"'
                          r'|name="csrf_token" value="([^"]+)"')

_postgres_schema_ready = False


def csrf_token_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no csrf_token field on the page"
    return next(group for group in match.groups() if group)


@contextmanager
def fresh_postgres_database(prefix: str):
    """A new, empty database on TEST_DATABASE_URL's server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@functools.cache
def ensure_test_database() -> str:
    """TEST_DATABASE_URL, its database made first if missing (an xdist worker's, the first time)."""
    name = make_url(TEST_DATABASE_URL).database
    if TEST_DATABASE_URL != SERVER_DATABASE_URL:
        admin = create_engine(SERVER_DATABASE_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                            {"name": name}).scalar()
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
    return TEST_DATABASE_URL


# --- the app, per test ---------------------------------------------------------------

DATABASES = ("sqlite", "postgresql")
TOKEN_FORMATS = ("opaque", "jwt")


def chooses_its_database(definition) -> bool:
    """Whether the test parametrizes `database_url` itself."""
    for marker in definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = names.split(",")
        if "database_url" in (name.strip() for name in names):
            return True
    return False


def pytest_generate_tests(metafunc):
    """The database matrix (module docstring): SQLite, or both for `both_databases`; and
    each access-token format for `token_format`."""
    if metafunc.definition.get_closest_marker("token_format") is not None:
        metafunc.parametrize("token_format", TOKEN_FORMATS, indirect=True)
    if "database_url" not in metafunc.fixturenames or chooses_its_database(metafunc.definition):
        return
    both = metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database_url", DATABASES if both else DATABASES[:1], indirect=True)


@pytest.fixture(autouse=True)
def token_format(request, monkeypatch) -> str:
    """The format of the access tokens the test's app issues. A test marked `token_format`
    (it has access tokens issued and uses them, so the format can change its outcome) runs
    once per format, `[opaque]` and `[jwt]`; the others take ACCESS_TOKEN_FORMAT's."""
    chosen = getattr(request, "param", None)
    if chosen is None:
        return access_token_format()
    monkeypatch.setenv("ACCESS_TOKEN_FORMAT", chosen)
    return chosen


@pytest.fixture
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    return ensure_test_database()


@pytest.fixture(autouse=True)
def cheap_password_hashes(request, monkeypatch):
    """Passwords hashed with one PBKDF2 round (real scrypt costs ~0.1 s a hash, half the
    time of a login test). Tests about hashing or login timing are marked
    `real_password_hashes` and keep scrypt; gunicorn servers, in their own processes, too."""
    if request.node.get_closest_marker("real_password_hashes") is None:
        monkeypatch.setattr("portal.models.user.generate_password_hash",
                            functools.partial(generate_password_hash, method="pbkdf2:sha256:1"))


_premade_keys: list = []  # RSA private keys (cryptography's), made once per process


@pytest.fixture(autouse=True)
def premade_signing_keys(request, monkeypatch):
    """Signing keys made once per process (a 2048-bit RSA key costs about 0.07 s to make,
    and every test that has a token issued or signed needs one). The n-th key a test asks
    for is the process's n-th, under the kid the app chose, so the keys of one test still
    differ from each other (rotations, a hint signed by an older key). Tests marked
    `real_signing_keys` make theirs; so do gunicorn servers, in their own processes."""
    if request.node.get_closest_marker("real_signing_keys") is not None:
        return
    from joserfc.jwk import RSAKey

    handed_out = 0

    def premade(kid: str) -> RSAKey:
        nonlocal handed_out
        while len(_premade_keys) <= handed_out:
            _premade_keys.append(RSAKey.generate_key(2048, private=True).raw_value)
        raw = _premade_keys[handed_out]
        handed_out += 1
        # What RSAKey.generate_key returns, minus the generation (import_key would check
        # the key again, which costs as much as making it).
        return RSAKey(raw, raw, {"kid": kid, "use": "sig", "alg": "RS256"})

    monkeypatch.setattr("portal.domain.signing.generate_rsa_key", premade)


def base_config(tmp_path, database_url, **overrides) -> dict:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config():
    """Extra settings for the `app` fixture; override this fixture in a test module."""
    return {}


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (its own `g` and database session), as under
    gunicorn; otherwise the test's pushed context would leak the logged-in user between
    requests."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


class CachedBuilderRule(Rule):
    """A URL rule whose URL builders are made once per process. Werkzeug compiles two Python
    functions per rule (with `compile()`) when an app registers it: most of what building an
    app costs, and every test builds one with the same routes. A builder depends only on the
    rule's parsed parts and its defaults; rules with defaults are compiled as usual."""

    _builders: dict = {}

    def _compile_builder(self, append_unknown: bool = True):
        if self.defaults:
            return super()._compile_builder(append_unknown)
        key = (tuple(self._trace), append_unknown)
        if key not in self._builders:
            self._builders[key] = super()._compile_builder(append_unknown)
        return self._builders[key]


if hasattr(Rule, "_compile_builder"):  # Werkzeug's own, until it changes
    Flask.url_rule_class = CachedBuilderRule


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates kept in memory for the whole process: each test's app has
    its own Jinja environment, which would compile every page it renders again. Keyed by
    the template's name and checked against its source (Jinja's own bytecode cache rules)."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """An empty SQLite database with the models' tables, made once per process: each test's
    `app` starts from a copy of the file (PostgreSQL's tables are made once and emptied
    after each test instead)."""
    folder = tmp_path_factory.mktemp("sqlite-schema")
    path = folder / "schema.db"
    schema_app = create_app(base_config(folder, f"sqlite:///{path}"))
    with schema_app.app_context():
        db.create_all()
        db.engine.dispose()  # checkpoints the WAL into the file
    return path


@pytest.fixture
def app(database_url, tmp_path, app_config, sqlite_schema):
    global _postgres_schema_ready
    if database_url.startswith("sqlite"):
        shutil.copyfile(sqlite_schema, make_url(database_url).database)
    app = create_app(base_config(tmp_path, database_url, **app_config))
    app.test_client_class = FreshContextClient
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    with app.app_context():
        if database_url.startswith("postgresql") and not _postgres_schema_ready:
            db.drop_all()
            db.create_all()
            _postgres_schema_ready = True
        yield app
        db.session.remove()
        close_hot_connection()
        release_idle_connection()
        if database_url.startswith("postgresql"):
            empty_postgres_tables()
        db.engine.dispose()


def empty_postgres_tables() -> None:
    """Every row deleted, children first, and the id sequences restarted: what TRUNCATE ...
    RESTART IDENTITY does, at a tenth of its cost on tables this small (TRUNCATE makes
    every table and index a new file)."""
    with db.engine.begin() as connection:
        # Fail clearly, rather than hang, if another process holds these rows.
        connection.execute(text("SET LOCAL lock_timeout = '60s'"))
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
        sequences = connection.scalars(text("SELECT sequencename FROM pg_sequences "
                                            "WHERE schemaname = current_schema()")).all()
        for name in sequences:
            connection.execute(text(f'ALTER SEQUENCE "{name}" RESTART'))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def schema_at_head(app):
    """Record the latest revision as Alembic would: the `app` fixture's tables come from
    create_all, and /readyz wants a migrated database."""
    from portal.db import schema

    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))  # left by a test that failed
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": schema.head()})
    yield
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Auth:
    """Log in and out through the real forms, CSRF included."""

    def __init__(self, client):
        self.client = client

    def csrf(self, path="/login") -> str:
        return csrf_token_from(self.client.get(path, follow_redirects=True).get_data(as_text=True))

    def login(self, username="admin", password="correct horse battery", next_url=None):
        data = {"username": username, "password": password, "csrf_token": self.csrf()}
        if next_url is not None:
            data["next"] = next_url
        return self.client.post("/login", data=data)

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf("/")})


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def admin_user(app):
    from tests.factories import make_user

    return make_user(username="admin", password="correct horse battery", is_admin=True)


@pytest.fixture
def admin_client(client, auth, admin_user):
    """A test client logged in as an admin."""
    response = auth.login()
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


# --- builds shared by the whole run ------------------------------------------------------

# Left out of the copy a wheel is built from: local state, caches, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".cache", "instance", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "node_modules")


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder `build(folder)` fills once per test run: the first xdist worker to ask builds
    it under a lock, the others wait for it and use it as it is."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if XDIST_WORKER else base  # pytest-N/, shared by its popen-gwN/
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def checkout_wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout (`pip wheel --no-deps` of a clean copy), built once per run
    for the tests that install Tessera as an operator does (tests/deploy, tests/upgrade,
    test_cli_lifecycle)."""
    def build(folder: Path) -> None:
        source = folder / "source"
        shutil.copytree(ROOT, source, ignore=NOT_SOURCE, symlinks=True)
        build_wheel(source, folder)
        shutil.rmtree(source)

    (wheel,) = built_once(tmp_path_factory, "checkout-wheel", build).glob("*.whl")
    return wheel


# --- a real gunicorn -------------------------------------------------------------------

def portal_batch(python: str | Path, env: dict, commands, cwd: Path | None = None) -> list[str]:
    """`portal` commands run by tests/portal_batch.py under `python` (whose `portal` package
    it uses) with `env`; what each printed. A command is a tuple of arguments, or
    (arguments, standard input). A failing command fails the test with its output."""
    batch = [[list(c[0]), c[1]] if len(c) == 2 and isinstance(c[0], (tuple, list)) else [list(c), None]
             for c in commands]
    run = subprocess.run([str(python), str(ROOT / "tests" / "portal_batch.py")], env=env, cwd=cwd,
                         input=json.dumps(batch), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"tests/portal_batch.py failed: {run.stderr}{run.stdout}"
    results = json.loads(run.stdout)
    for (arguments, _), (code, output) in zip(batch, results):
        assert code == 0, f"portal {' '.join(arguments)} exited {code}: {output}"
    return [output for _, output in results]


@dataclass
class LiveServer:
    url: str
    env: dict
    process: subprocess.Popen
    log_path: Path
    init_output: str = ""
    admin_password: str = ""
    default_tokens: dict = field(default_factory=dict)

    def cli(self, *args, input=None, check=True) -> subprocess.CompletedProcess:
        """Run `portal ARGS` against this server's database."""
        result = subprocess.run([str(VENV_BIN / "portal"), *args], env=self.env, input=input,
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"portal {' '.join(args)} failed: {result.stderr}{result.stdout}")
        return result

    def cli_many(self, *commands) -> list[str]:
        """Several `portal` commands in one process (tests/portal_batch.py), in order; what
        each printed. A command is a tuple of arguments, or (arguments, standard input)."""
        return portal_batch(sys.executable, self.env, commands)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def server_env(instance: Path, database_url: str | None, extra_env: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env["TESSERA_INSTANCE_PATH"] = str(instance)
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra_env or {})
    return env


def start_live_server(tmp_dir: Path, *, database_url: str | None = None, extra_env: dict | None = None,
                      workers: int = 2, run_init: bool = True, tls: tuple[str, str] | None = None) -> LiveServer:
    """`portal init`, then gunicorn with the project's config; `tls` = (certificate, key)
    files for gunicorn to serve HTTPS itself."""
    instance = tmp_dir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    env = server_env(instance, database_url, extra_env)
    port = free_port()
    log_path = tmp_dir / f"gunicorn-{port}.log"
    init_output = ""
    if run_init:
        init = subprocess.run([str(VENV_BIN / "portal"), "init"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert init.returncode == 0, init.stderr + init.stdout
        init_output = init.stdout
    with open(log_path, "w") as log_file:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
             "-w", str(workers), *(["--certfile", tls[0], "--keyfile", tls[1]] if tls else []), "wsgi:app"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=f"{'https' if tls else 'http'}://127.0.0.1:{port}", env=env, process=process,
                        log_path=log_path, init_output=init_output)
    match = re.search(r"password: (\S+)", init_output)
    server.admin_password = match.group(1) if match else ""
    server.default_tokens = dict(re.findall(r"^\s+(adminconsole|crafterengine|craftersocial)\s+(\S+)$",
                                            init_output, re.M))
    # Patient: on a busy 2-core machine booting workers can take a while to answer.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log_path.read_text()}")
        try:
            # Ready: the database answers and is at the latest schema.
            if requests.get(server.url + "/readyz", timeout=5, verify=tls[0] if tls else True).status_code == 200:
                return server
        except requests.RequestException:  # workers still booting, or slow under load
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"gunicorn did not answer in time: {log_path.read_text()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`portal init` + `gunicorn wsgi:app` on a fresh SQLite instance, for the whole session."""
    server = start_live_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


@pytest.fixture
def live_server_factory(tmp_path_factory):
    """Start extra gunicorn servers (other settings, PostgreSQL); all stopped after the test."""
    servers = []

    def start(**kwargs) -> LiveServer:
        server = start_live_server(tmp_path_factory.mktemp("live"), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def make_certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl); returns (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


# --- Debian's Chromium through Playwright ----------------------------------------------

# Debian's Chromium as the browser tests launch it (tests/deploy adds a flag to one of its own).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_missing_reason() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser tests skipped"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = browser_missing_reason()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def new_page(browser):
    """Open extra independent browser sessions (another user's browser)."""
    contexts = []

    def open_page():
        context = browser.new_context()
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


# Session-scoped, but a cheap file every process makes for itself, or a build the workers
# share (built_once): no reason to group.
PER_PROCESS_FIXTURES = {"sqlite_schema", "checkout_wheel"}
# Session fixtures that several modules share and that cost seconds to make (Django's migrations
# build them): their modules form one group, so one worker makes each once.
SHARED_GROUPS = {"geonode": "django-oauth-toolkit databases", "strangers_geonode": "django-oauth-toolkit databases",
                 "odd_geonode": "django-oauth-toolkit databases"}
# Groups that build virtual environments (tens of seconds): started first, so that the other
# worker's short tests fill the time rather than wait for them at the end.
STARTED_FIRST = ("tests/upgrade/", "tests/deploy/")
BRACKETS = str.maketrans("[]", "()")


def shared_fixtures(item) -> dict:
    """name → definition of the module- and session-scoped fixtures of the suite the test uses."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return {name: fixturedefs[-1] for name, fixturedefs in definitions.items()
            if fixturedefs[-1].scope != "function" and fixturedefs[-1].func.__module__.startswith("tests.")
            and name not in PER_PROCESS_FIXTURES}


def group_of(item) -> str | None:
    """The test's xdist group: the tests that share a server, a browser or a build run on one
    worker, which makes it once. A module's tests form a group; those of a parametrized
    module-scoped fixture (an upgrade case, a server per database) form one per parameter, so
    the cases run side by side."""
    shared = shared_fixtures(item)
    if not shared:
        return None
    for name in shared:
        if name in SHARED_GROUPS:
            return SHARED_GROUPS[name]
    module = item.nodeid.split("::")[0]
    callspec = getattr(item, "callspec", None)
    parameters = [str(callspec.params[name]) for name, definition in shared.items()
                  if callspec and name in callspec.params and definition.scope == "module" and definition.params]
    # No "]" after the "@" xdist puts before the group in the test's id: xdist would take the
    # whole id for the group (its guard against a "@" in a parameter), one group per test.
    return f"{module} with {', '.join(parameters)}".translate(BRACKETS) if parameters else module


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    # Under `--dist loadgroup --no-loadscope-reorder` (Makefile) xdist hands the groups out
    # in this order, then the other tests one by one to whichever worker is free.
    groups = {}
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "page" in fixtures or "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        groups[item] = group_of(item)
    # A module with one test that holds a server holds it for all its tests.
    module_groups = {}
    for item, group in groups.items():
        if group is not None:
            module_groups.setdefault(item.nodeid.split("::")[0], group)
    for item in items:
        if groups[item] is None:
            groups[item] = module_groups.get(item.nodeid.split("::")[0])
    if config.pluginmanager.has_plugin("xdist"):
        for item, group in groups.items():
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: 0 if item.nodeid.startswith(STARTED_FIRST) else 1 if groups[item] else 2)
