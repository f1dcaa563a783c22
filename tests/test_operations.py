"""What an operator runs Tessera with (docs/operations.md): liveness and readiness probes,
Prometheus metrics for every gunicorn worker, the address rule of the allow lists, request
ids, the text and JSON log formats, and settings checked before serving.

The first half uses the test client; the second half a real gunicorn."""

import io
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from portal.web import addresses
from portal.db import schema
from portal.config import ConfigError
from portal.extensions import db
from bench.harness import worker_pids
from tests.api.conftest import bearer
from tests.conftest import ROOT, VENV_BIN, base_config
from tests.factories import make_application

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


def sample(name: str, **labels) -> float:
    """This process's count (the test client runs without PROMETHEUS_MULTIPROC_DIR)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str) -> dict:
    """{(name, (label pairs...)): value} of a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests_counted(samples: dict, endpoint: str, status: str = "200") -> float:
    return samples.get(("tessera_http_requests_total", (("endpoint", endpoint), ("status", status))), 0.0)


@pytest.fixture
def statements(app):
    """The SQL statements the application runs while the test watches."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def database_down(app):
    """New connections are refused, as when the database server is stopped."""
    error = psycopg.OperationalError if db.engine.dialect.name == "postgresql" else sqlite3.OperationalError

    def refuse(dialect, connection_record, cargs, cparams):
        raise error("connection refused")

    db.session.close()
    db.engine.dispose()
    event.listen(db.engine, "do_connect", refuse)
    yield
    event.remove(db.engine, "do_connect", refuse)
    db.engine.dispose()


@pytest.fixture
def fresh_proxy_warning(monkeypatch):
    """The missing-proxy warning is given once per process: as if this were a new process."""
    monkeypatch.setattr(addresses, "_missing_proxy_setting_logged", False)


# --- health and readiness ---------------------------------------------------------------

def test_healthz_answers_without_touching_the_database(client, statements):
    for path in ("/healthz", "/healthz/"):
        response = client.get(path)
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert statements == []


@pytest.mark.both_databases  # each driver's connection errors
def test_healthz_stays_up_while_the_database_is_down(client, database_down):
    assert client.get("/healthz").status_code == 200


@pytest.mark.both_databases  # readiness reads each database's schema
def test_readyz_at_the_latest_schema(client, schema_at_head):
    for path in ("/readyz", "/readyz/"):
        response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == {"status": "ok", "database": "ok", "schema": schema.head()}


@pytest.mark.both_databases  # each driver's connection errors
def test_readyz_says_the_database_is_unreachable(client, database_down):
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}


@pytest.mark.both_databases  # readiness reads each database's schema
def test_readyz_says_the_schema_is_behind(client, app, schema_at_head):
    response = client.get("/readyz")
    assert response.status_code == 200
    older = schema.revisions()[schema.head()][0]
    with db.engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{older}'")
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json() == {"status": "unavailable", "schema": "behind", "database_revision": older,
                                   "expected": schema.head()}
    with db.engine.begin() as connection:  # a revision of a newer release
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    assert client.get("/readyz").get_json()["schema"] == "unknown"


@pytest.mark.both_databases  # readiness reads each database's schema
def test_readyz_on_a_database_never_migrated(client):
    """The test database is made by create_all: no alembic_version table at all."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "schema": "behind", "database_revision": None,
                                   "expected": schema.head()}


# --- metrics ----------------------------------------------------------------------------

def test_metrics_count_requests_by_endpoint_and_status(client):
    before = scraped(client.get("/metrics", environ_base=LOOPBACK).get_data(as_text=True))
    client.get("/healthz")
    client.get("/healthz/")
    for path in ("/no-such-page", "/another/missing/path", "/api/v1/nothing-here"):
        client.get(path)
    response = client.get("/metrics", environ_base=LOOPBACK)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    after = scraped(response.get_data(as_text=True))
    assert requests_counted(after, "operations.healthz") - requests_counted(before, "operations.healthz") == 2
    # Paths no route matches are one series, never one per path.
    assert requests_counted(after, "unmatched", "404") - requests_counted(before, "unmatched", "404") == 3
    assert not any("missing" in str(key) or "no-such" in str(key) for key in after)
    for name in ("tessera_tokens_issued_total", "tessera_authentication_failures_total",
                 "tessera_throttled_requests_total"):
        assert any(key[0] == name for key in after), name


def test_metrics_cost_no_statement(client, statements):
    client.get("/healthz")
    client.get("/metrics", environ_base=LOOPBACK)
    assert statements == []


def test_metrics_count_authentication_failures_tokens_and_throttles(app, client, auth, admin_user):
    failures = {kind: sample("tessera_authentication_failures_total", kind=kind)
                for kind in ("password", "client", "bearer")}
    issued = sample("tessera_tokens_issued_total", source="client_credentials")
    throttled = sample("tessera_throttled_requests_total", kind="bearer")
    app.config["BEARER_IP_RATE_LIMIT"] = "1 per minute"

    auth.login(password="not the password")
    client.get("/api/v1/tenants", headers=bearer("tsr_not_a_token_at_all"))
    application = make_application(grant_types=["client_credentials"], scope="api")
    form = {"grant_type": "client_credentials", "client_id": application.client_id}
    assert client.post("/token", data={**form, "client_secret": "wrong"}).status_code == 401
    assert client.post("/token", data={**form, "client_secret": application.test_secret}).status_code == 200

    for kind in failures:
        assert sample("tessera_authentication_failures_total", kind=kind) == failures[kind] + 1, kind
    assert sample("tessera_tokens_issued_total", source="client_credentials") == issued + 1

    response = client.get("/api/v1/tenants", headers=bearer("tsr_still_not_a_token"))
    assert response.status_code == 429
    assert sample("tessera_throttled_requests_total", kind="bearer") == throttled + 1


def test_metrics_count_login_throttling(app, client, auth, admin_user):
    app.config["LOGIN_RATE_LIMIT"] = "1 per minute"
    before = sample("tessera_throttled_requests_total", kind="password")
    auth.login(password="not the password")
    assert auth.login(password="not the password").status_code == 429
    assert sample("tessera_throttled_requests_total", kind="password") == before + 1


@pytest.mark.both_databases  # each driver's connection errors
def test_metrics_count_database_outages(client, database_down):
    before = sample("tessera_database_errors_total", error="OperationalError")
    assert client.get("/api/v1/tenants", headers=bearer("tsr_anything")).status_code == 503
    assert sample("tessera_database_errors_total", error="OperationalError") == before + 1


def test_metrics_refuse_other_addresses(client):
    response = client.get("/metrics", environ_base=ELSEWHERE)
    assert response.status_code == 403 and response.is_json
    assert response.get_json()["error"] == "forbidden" and "METRICS_ALLOW" in response.get_json()["message"]
    assert "tessera_" not in response.get_data(as_text=True)
    assert client.get("/metrics/", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"METRICS_ALLOW": "10.0.0.0/8 192.0.2.7"}])
def test_metrics_allow_takes_addresses_and_networks(client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:192.0.2.7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 403
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 403


@pytest.mark.parametrize("setting", ["METRICS_ALLOW", "AUTH_IP_WHITELIST"])
def test_a_bad_allow_list_names_its_setting(tmp_path, database_url, monkeypatch, setting):
    from portal import create_app

    with pytest.raises(ConfigError, match=f"^{setting}: 'prometheus.local' is not an IP address or network$"):
        create_app(base_config(tmp_path, database_url, **{setting: "127.0.0.1, prometheus.local"}))
    monkeypatch.setenv(setting, "10.0.0.0/33")
    with pytest.raises(ConfigError, match=setting):
        create_app(base_config(tmp_path, database_url))


# --- the address rule: fail closed behind a proxy that is not declared -------------------

@pytest.mark.parametrize("path", ["/metrics", "/api/roles", "/api/adminRole", "/api/users"])
@pytest.mark.parametrize("header", [{"X-Forwarded-For": "198.51.100.20"}, {"Forwarded": "for=198.51.100.20"}])
def test_a_proxied_loopback_request_is_not_loopback_without_trusted_proxies(client, fresh_proxy_warning, path,
                                                                              header):
    assert client.get(path, environ_base=LOOPBACK).status_code == 200
    assert client.get(path, environ_base=LOOPBACK, headers=header).status_code == 403


def test_the_missing_proxy_setting_is_logged_once(client, fresh_proxy_warning, caplog):
    proxied = {"X-Forwarded-For": "198.51.100.20"}
    with caplog.at_level(logging.WARNING, logger="portal"):
        for path in ("/metrics", "/api/roles", "/metrics"):
            assert client.get(path, environ_base=LOOPBACK, headers=proxied).status_code == 403
    warnings = [record for record in caplog.records if "TRUSTED_PROXIES" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "TRUSTED_PROXIES=1" in warnings[0].getMessage()


@pytest.fixture
def behind_proxy(monkeypatch):
    """TRUSTED_PROXIES=1, read when the app is made (request this before `client`)."""
    monkeypatch.setenv("TRUSTED_PROXIES", "1")


@pytest.mark.parametrize("app_config", [{"METRICS_ALLOW": "192.0.2.7", "AUTH_IP_WHITELIST": "192.0.2.7"}])
@pytest.mark.parametrize("path", ["/metrics", "/api/roles"])
def test_with_trusted_proxies_the_forwarded_address_counts(behind_proxy, client, path, caplog):
    with caplog.at_level(logging.WARNING, logger="portal"):
        allowed = client.get(path, environ_base=LOOPBACK, headers={"X-Forwarded-For": "192.0.2.7"})
        refused = client.get(path, environ_base=LOOPBACK, headers={"X-Forwarded-For": "198.51.100.1"})
        # A forwarded loopback address is the proxy host's own client: allowed by loopback entries only.
        loopback = client.get(path, environ_base=LOOPBACK, headers={"X-Forwarded-For": "127.0.0.1"})
    assert allowed.status_code == 200 and refused.status_code == 403 and loopback.status_code == 403
    assert "TRUSTED_PROXIES" not in caplog.text


# --- request ids ------------------------------------------------------------------------

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_every_answer_carries_a_new_request_id(client):
    ids = [client.get(path).headers["X-Request-ID"] for path in ("/healthz", "/healthz", "/no-such-page", "/login")]
    assert all(HEX_ID.fullmatch(value) for value in ids) and len(set(ids)) == 4


def test_a_client_cannot_choose_its_request_id_without_a_trusted_proxy(client):
    response = client.get("/healthz", headers={"X-Request-ID": "chosen-by-the-client"})
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize("sent, kept", [
    ("5f0e8a9c-1b2d-4e3f-8a7b-6c5d4e3f2a1b", True),
    ("nginx.0123456789abcdef:1", True),
    ("x" * 128, True),
    ("x" * 129, False),
    ("has space", False),
    ("<script>", False),
    ("a\tb", False),
    ("é", False),
])
def test_a_trusted_proxys_request_id_is_kept_when_it_is_plain(behind_proxy, client, sent, kept):
    answered = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert (answered == sent) is kept
    if not kept:
        assert HEX_ID.fullmatch(answered)


def boom_route(app):
    @app.get("/_boom")
    def boom():
        raise RuntimeError("the callback /cb?code=tsr_in_the_message failed")


def test_the_applications_log_lines_carry_the_request_id(app, client):
    boom_route(app)
    stream = io.StringIO()
    response = client.get("/_boom?access_token=tsr_in_the_url", errors_stream=stream)
    assert response.status_code == 500
    line = stream.getvalue().splitlines()[0]
    assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] \[([0-9a-f]{32})\] portal: "
                    r"unhandled error on GET /_boom", line)
    assert f"[{response.headers['X-Request-ID']}]" in line
    assert "/cb?code=[REDACTED] failed" in line and "tsr_in_the" not in stream.getvalue()


@pytest.mark.parametrize("app_config", [{"LOG_FORMAT": "json"}])
def test_log_format_json_writes_one_object_per_line(app, client):
    boom_route(app)
    stream = io.StringIO()
    response = client.get("/_boom", errors_stream=stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "ERROR" and line["logger"] == "portal"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["message"].startswith("unhandled error on GET /_boom: RuntimeError")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "code=[REDACTED]" in line["message"] and "tsr_in_the_message" not in stream.getvalue()


def test_log_format_is_checked(tmp_path, database_url, monkeypatch):
    from portal import create_app

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="^LOG_FORMAT must be text or json, not 'xml'$"):
        create_app(base_config(tmp_path, database_url))


def test_worker_class_sync_runs_one_thread(monkeypatch):
    from portal.config import server_threads

    monkeypatch.setenv("WORKER_CLASS", "sync")
    assert server_threads() == 1
    monkeypatch.setenv("THREADS", "8")
    with pytest.raises(ConfigError, match="THREADS must be 1"):
        server_threads()
    monkeypatch.setenv("WORKER_CLASS", "gthread")
    assert server_threads() == 8
    monkeypatch.setenv("WORKER_CLASS", "gevent")
    with pytest.raises(ConfigError, match="WORKER_CLASS must be gthread or sync, not 'gevent'"):
        server_threads()


# --- a real gunicorn ------------------------------------------------------------------

def running_workers(server, count: int, gone: frozenset = frozenset()) -> set[int]:
    """The server's workers, other than `gone`, once there are `count` of them (30 s at most):
    gunicorn starts them one after another, up to 0.1 s apart, and /readyz answers as soon as
    the first one does."""
    deadline = time.monotonic() + 30
    while True:
        workers = worker_pids(server.process.pid) - gone
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


def metrics_text(server) -> str:
    response = requests.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_metrics_add_up_every_worker_and_keep_a_killed_workers_counts(live_server_factory, tmp_path):
    """PROMETHEUS_MULTIPROC_DIR set by the operator: emptied at start, one file per worker."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"counts of an earlier server")
    server = live_server_factory(workers=2, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert not (folder / "counter_999999.db").exists()
    workers = running_workers(server, 2)
    assert len(workers) == 2

    sent = 0
    # New connections until both workers have answered some (the kernel picks the worker).
    while sent < 1000 and not all((folder / f"counter_{pid}.db").exists() for pid in workers):
        for _ in range(10):
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            sent += 1
    assert all((folder / f"counter_{pid}.db").exists() for pid in workers), sent
    counted = requests_counted(scraped(metrics_text(server)), "operations.healthz")
    assert counted == sent

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    assert len(running_workers(server, 2, gone=frozenset({victim}))) == 2  # gunicorn started a new worker
    for _ in range(4):  # whichever worker answers the scrape, the killed one's counts are in it
        assert requests_counted(scraped(metrics_text(server)), "operations.healthz") == sent


def test_metrics_folder_is_private_and_removed_at_exit(live_server_factory):
    server = live_server_factory(workers=2)
    requests.get(server.url + "/healthz", timeout=10)
    maps = "".join(Path(f"/proc/{pid}/maps").read_text() for pid in worker_pids(server.process.pid))
    folders = {Path(match).parent for match in re.findall(r"(/\S*tessera-metrics-[^/\s]+/counter_\d+\.db)", maps)}
    assert len(folders) == 1
    folder = folders.pop()
    assert folder.stat().st_mode & 0o777 == 0o700
    server.stop()
    assert not folder.exists()


def test_allow_lists_behind_a_proxy_on_the_same_host(live_server_factory):
    """Without TRUSTED_PROXIES a local proxy's requests are refused, with one warning per
    worker; with TRUSTED_PROXIES=1 the address it forwards is the one checked."""
    proxied = {"X-Forwarded-For": "198.51.100.20"}
    plain = live_server_factory(workers=1)
    for path in ("/metrics", "/api/roles"):
        assert requests.get(plain.url + path, timeout=10).status_code == 200
        for _ in range(3):
            assert requests.get(plain.url + path, headers=proxied, timeout=10).status_code == 403
    time.sleep(0.5)
    warnings = [line for line in plain.log().splitlines() if "but TRUSTED_PROXIES is 0" in line]
    assert len(warnings) == 1  # once per process (one worker here)
    assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[WARNING\] \[[0-9a-f]{32}\] "
                    r"portal: a request to /metrics came through a proxy", warnings[0])

    trusted = live_server_factory(workers=1, run_init=False, database_url=plain.env.get("DATABASE_URL"),
                                  extra_env={"TRUSTED_PROXIES": "1", "TESSERA_INSTANCE_PATH": plain.env[
                                      "TESSERA_INSTANCE_PATH"], "METRICS_ALLOW": "198.51.100.0/24",
                                      "AUTH_IP_WHITELIST": "198.51.100.20"})
    for path in ("/metrics", "/api/roles"):
        assert requests.get(trusted.url + path, headers=proxied, timeout=10).status_code == 200
        assert requests.get(trusted.url + path, headers={"X-Forwarded-For": "203.0.113.5"},
                            timeout=10).status_code == 403
    assert "TRUSTED_PROXIES is 0" not in trusted.log()


SECRET = "tsr_LOGSECRET" + os.urandom(6).hex()


def requests_with_secrets(server) -> str:
    """Requests whose URLs carry a token; returns the request id of the first."""
    answer = requests.get(server.url + f"/healthz?access_token={SECRET}", timeout=10)
    assert requests.get(server.url + f"/api/v1/tenants?access_token={SECRET}", timeout=10).status_code == 401
    requests.get(server.url + f"/crafter-profile/api/1/access_token/{SECRET}?accessTokenId={SECRET}", timeout=10)
    assert requests.post(server.url + f"/token?client_secret={SECRET}", timeout=10).status_code in (400, 401)
    requests.get(server.url + "/api/roles", headers={"X-Forwarded-For": "198.51.100.20"}, timeout=10)
    time.sleep(0.5)
    return answer.headers["X-Request-ID"]


def test_text_logs_timestamped_with_request_ids_and_no_token(live_server_factory):
    server = live_server_factory(workers=2, extra_env={"TRUSTED_PROXIES": "1"})
    request_id = requests_with_secrets(server)
    chosen = requests.get(server.url + "/healthz", headers={"X-Request-ID": "from-nginx-42"}, timeout=10)
    assert chosen.headers["X-Request-ID"] == "from-nginx-42"
    time.sleep(0.5)
    log = server.log()
    assert SECRET not in log
    access = [line for line in log.splitlines() if '"GET /healthz' in line]
    assert re.fullmatch(r'\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] 127\.0\.0\.1 "GET /healthz\?access_token='
                        r'\[REDACTED\] HTTP/1\.1" 200 \d+ \d+ms "python-requests/[\d.]+" ' + request_id, access[0])
    assert access[-1].endswith(" from-nginx-42")


def test_json_logs_parse_carry_request_ids_and_no_token(live_server_factory):
    server = live_server_factory(workers=2, extra_env={"LOG_FORMAT": "json", "WORKER_CLASS": "sync"})
    request_id = requests_with_secrets(server)
    log = server.log()
    assert SECRET not in log
    lines = [json.loads(line) for line in log.splitlines()]  # every line: the access, error and application logs
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    using_sync = "Using worker: portal.gunicorn_workers.SyncWorker"
    assert any(line["logger"] == "gunicorn.error" and line["message"] == using_sync for line in lines)
    access = next(line for line in lines
                  if line.get("request_id") == request_id and line["logger"] == "gunicorn.access")
    assert access["method"] == "GET" and access["path"] == "/healthz?access_token=[REDACTED]"
    assert access["status"] == 200 and access["bytes"] > 0 and access["duration_ms"] >= 0
    assert access["remote_addr"] == "127.0.0.1" and access["user_agent"].startswith("python-requests/")
    crafter = next(line for line in lines if line.get("path", "").startswith("/crafter-profile/"))
    assert crafter["path"] == "/crafter-profile/api/1/access_token/[REDACTED]?accessTokenId=[REDACTED]"
    warning = next(line for line in lines if line["logger"] == "portal")
    assert warning["level"] == "WARNING" and len(warning["request_id"]) == 32


def test_worker_class_sync_is_honoured(live_server_factory):
    server = live_server_factory(workers=1, extra_env={"WORKER_CLASS": "sync"})
    assert "Using worker: portal.gunicorn_workers.SyncWorker" in server.log()


# --- settings checked before serving -------------------------------------------------------

BAD_SETTINGS = [
    ("ACCESS_TOKEN_EXPIRE_SECONDS", "soon",
     "ACCESS_TOKEN_EXPIRE_SECONDS must be a whole number of seconds, not 'soon'"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json, not 'xml'"),
    ("METRICS_ALLOW", "prometheus.local", "METRICS_ALLOW: 'prometheus.local' is not an IP address or network"),
    ("WORKER_CLASS", "gevent", "WORKER_CLASS must be gthread or sync, not 'gevent'"),
]


def run_gunicorn(arguments: list[str], env: dict, cwd: Path, seconds: float = 30) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        result = subprocess.run([str(VENV_BIN / "gunicorn"), *arguments], env=env, cwd=cwd, capture_output=True,
                                text=True, timeout=seconds)
    except subprocess.TimeoutExpired as error:  # still running: the crash loop this guards against
        output = (error.stdout or b"").decode() + (error.stderr or b"").decode()
        pytest.fail(f"gunicorn still running after {seconds} s:\n{output[-3000:]}")
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def bad_env(tmp_path, name, value) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update({"TESSERA_INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT), name: value})
    return env


@pytest.mark.parametrize("name, value, line", BAD_SETTINGS)
def test_a_bad_setting_stops_the_master_with_the_bundled_settings(tmp_path, name, value, line):
    config = ["-c", str(ROOT / "gunicorn.conf.py")] if name != "LOG_FORMAT" else ["-c", "python:portal.gunicorn_config"]
    code, output, seconds = run_gunicorn([*config, "-b", "127.0.0.1:0", "-w", "2", "wsgi:app"],
                                         bad_env(tmp_path, name, value), ROOT)
    assert code != 0 and seconds < 20
    assert f"Tessera cannot start: {line}\n" in output
    assert "Booting worker" not in output and "Listening at" not in output and "Traceback" not in output


@pytest.mark.parametrize("name, value, line", BAD_SETTINGS[:3])
def test_a_bad_setting_stops_a_bare_gunicorn(tmp_path, name, value, line):
    """`gunicorn wsgi:app` without the bundled settings (run elsewhere than the checkout, whose
    gunicorn.conf.py gunicorn would read): the workers' failure halts the master."""
    code, output, seconds = run_gunicorn(["-b", "127.0.0.1:0", "-w", "2", "wsgi:app"],
                                         bad_env(tmp_path, name, value), tmp_path)
    # 4, gunicorn's status for an app that cannot load; 1 when both workers exited before the
    # master reaped the first (gunicorn then fails on the second while it halts).
    assert code in (1, 4) and seconds < 20, output
    assert f"Tessera cannot start: {line}\n" in output and "App failed to load" in output
    assert output.count("Booting worker") <= 2  # no worker started again
