"""The throttle's store (portal.web.ratelimit), and every rule of docs/operations.md: Throttling held against
four gunicorn workers sharing it, on SQLite and PostgreSQL (issue: 18 tries instead of 5 with
per-worker memory counters; issue 22 points 1, 5, 6, 15)."""

import base64
import concurrent.futures
import hashlib
import html
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import create_engine, insert, select, text

from portal.web import ratelimit
from portal.extensions import db
from portal.models import RateLimitCounter
from tests.conftest import NO_POSTGRES, TEST_DATABASE_URL, csrf_token_from, fresh_postgres_database, start_live_server

# On SQLite and PostgreSQL (tests/conftest.py): the throttle's store: an upsert and a purge per dialect.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def storage(app):
    return ratelimit.DatabaseStorage("database://")


def test_counts_in_one_window_then_starts_a_new_one(storage, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1000.0)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") == 1060.0
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1060.0)
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1 and storage.get_expiry("k") == 1120.0


def test_keys_are_stored_as_hashes_and_can_be_cleared(storage):
    storage.incr("LIMITER/login:alice@example.org", 60)
    storage.incr("other", 60, amount=2)
    stored = db.session.scalars(select(RateLimitCounter.key_hash)).all()
    assert len(stored) == 2 and all(len(h) == 64 and "alice" not in h for h in stored)
    storage.clear("other")
    assert storage.get("other") == 0 and storage.get("LIMITER/login:alice@example.org") == 1
    assert storage.reset() == 1 and storage.check()


def test_concurrent_increments_are_not_lost(storage, app):
    def hit(_):
        with app.app_context():
            return storage.incr("shared", 60)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(hit, range(20)))
    assert results == list(range(1, 21))


def test_purge_expired_removes_finished_windows(storage, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1000.0)
    storage.incr("old", 10)
    storage.incr("live", 600)
    assert ratelimit.purge_expired(now=1500.0) == 1
    assert storage.get("live") == 1


def test_each_write_deletes_at_most_a_hundred_finished_windows_oldest_first(storage, monkeypatch):
    """Issue 22 point 15: the table used to grow until an operator ran purge-expired."""
    db.session.execute(insert(RateLimitCounter), [
        {"key_hash": f"{n:064x}", "count": 1, "expires_at": float(n)} for n in range(1, 251)])
    db.session.commit()
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1000.0)
    left = []
    for _ in range(3):
        storage.incr("fresh", 60)
        left.append(db.session.scalars(select(RateLimitCounter.expires_at).where(
            RateLimitCounter.expires_at <= 1000.0).order_by(RateLimitCounter.expires_at)).all())
        db.session.rollback()
    assert [len(finished) for finished in left] == [150, 50, 0]
    assert left[0][0] == 101.0  # the oldest went first
    assert storage.get("fresh") == 3


@pytest.mark.parametrize("app_config", [{"RATELIMIT_STORAGE_URI": "memory://"},
                                        {"RATELIMIT_STORAGE_URI": "database://"}], ids=["memory", "database"])
def test_a_correct_attempt_taken_back_after_its_window_ended_leaves_nothing(app, monkeypatch):
    """Attempt.succeeded subtracts one; if the window ended in between, it must not leave -1
    (a free guess) in the next window."""
    from portal.web import throttle

    with app.test_request_context("/login", environ_base={"REMOTE_ADDR": "10.0.0.1"}):
        attempt = throttle.guess(throttle.PASSWORD, "alice")
        store, keys = throttle.storage(), [key for _, key in attempt.counters]
        assert [store.get(key) for key in keys] == [1, 1]
        later = time.time() + 3600
        monkeypatch.setattr(time, "time", lambda: later)
        attempt.succeeded()
        assert [store.get(key) for key in keys] == [0, 0]


# --- four gunicorn workers, one store: each sentence of docs/operations.md: Throttling -----

PASSWORD = "correct horse battery"
SECRET_KEY = secrets.token_hex(32)
REDIRECT_URI = "http://example.org/"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """4 workers, default limits; TRUSTED_PROXIES=1, so each test speaks from its own
    addresses (X-Forwarded-For); a known SECRET_KEY, to age a session for the step-up."""
    env = {"TRUSTED_PROXIES": "1", "SECRET_KEY": SECRET_KEY}
    folder = tmp_path_factory.mktemp("throttle-live")
    if request.param == "sqlite":
        live = start_live_server(folder, extra_env=env, workers=4)
        live.database_url = f"sqlite:///{live.env['TESSERA_INSTANCE_PATH']}/tessera.db"
        yield from prepared(live)
        return
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("test_throttle_live") as url:
        live = start_live_server(folder, database_url=url, extra_env=env, workers=4)
        live.database_url = url
        yield from prepared(live)


def prepared(live):
    try:
        *_, svc, legacy, spa, token = live.cli_many(
            *((("create-admin", name, "--password-stdin"), PASSWORD + "\n")
              for name in ("locked", "returning", "owner", "stepper", "fumbler")),
            *((("create-user", name, "--email", f"{name}@example.org", "--password-stdin"), PASSWORD + "\n")
              for name in ("crowd", "reader", "victim")),
            ("create-application", "svc", "--grant-type", "client_credentials"),
            ("create-application", "legacy", "--grant-type", "client_credentials"),
            ("create-application", "spa", "--public", "--redirect-uri", REDIRECT_URI, "--grant-type",
             "authorization_code", "--response-type", "code", "--scope", "openid"),
            ("create-token", "--application", "svc", "--user", "reader", "--scope", "openid",
             "--tenant", "*=READ_TENANT"))
        live.svc, live.legacy, live.spa = json.loads(svc), json.loads(legacy), json.loads(spa)
        live.token = token.strip()
        live.engine = create_engine(live.database_url)
        yield live
    finally:
        if hasattr(live, "engine"):
            live.engine.dispose()
        live.stop()


def sign_in(server, username, password, address, cookies=None) -> requests.Response:
    """One attempt through the real form, on a new connection (so attempts spread over the
    workers), from `address`, with `cookies` (a device cookie) if given."""
    with requests.Session() as session:
        for name, value in (cookies or {}).items():
            session.cookies.set(name, value, path="/login")
        headers = {"X-Forwarded-For": address}
        page = session.get(server.url + "/login", headers=headers, timeout=30)
        return session.post(server.url + "/login", headers=headers, timeout=30, allow_redirects=False,
                            data={"username": username, "password": password, "csrf_token": csrf_token_from(page.text)})


def statuses(server, username, password, address, times, cookies=None) -> list[int]:
    return [sign_in(server, username, password, address, cookies).status_code for _ in range(times)]


def checked_failures(server, username) -> int:
    """Wrong passwords that were checked: each writes one login.failed audit event."""
    with server.engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM audit_events WHERE action = 'login.failed' "
                                      "AND actor = :name"), {"name": username})


def client_auth(server, client, secret, address, path="/token"):
    data = {"grant_type": "client_credentials"} if path.endswith("token") else {"token": "tsr_whatever_000000000"}
    return requests.post(server.url + path, data=data, auth=(client["client_id"], secret), timeout=30,
                         headers={"X-Forwarded-For": address})


def bearer_read(server, token, address, path="/api/v1/tenants"):
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": address},
                        timeout=30)




def browser(server, username, address) -> requests.Session:
    """A signed-in browser (its session cookie), speaking from `address`."""
    session = requests.Session()
    session.headers["X-Forwarded-For"] = address
    page = session.get(server.url + "/login", timeout=30)
    response = session.post(server.url + "/login", timeout=30, allow_redirects=False, data={
        "username": username, "password": PASSWORD, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 303, response.text
    return session


def test_rule_1_one_store_every_worker_counts_together(server):
    """Default store: 5 attempts per account, 30 per address, whatever the worker count."""
    assert statuses(server, "nobody", "wrong password", "10.1.0.1", 6) == [200] * 5 + [429]
    # 6 attempts are already counted for this address; 24 more with other usernames, then 429.
    assert [sign_in(server, f"nobody{n}", "wrong", "10.1.0.1").status_code for n in range(25)] == [200] * 24 + [429]


def test_rule_2_a_refusal_carries_the_seconds_left_in_its_window(server):
    statuses(server, "nobody-retry", "wrong", "10.2.0.1", 5)
    first = sign_in(server, "nobody-retry", "wrong", "10.2.0.1")
    time.sleep(2.2)
    second = sign_in(server, "nobody-retry", "wrong", "10.2.0.1")
    assert first.status_code == second.status_code == 429
    assert 0 < int(second.headers["Retry-After"]) < int(first.headers["Retry-After"]) <= 60


def test_rule_3_simultaneous_wrong_passwords_are_checked_at_most_five_times(server):
    """Issue 22 point 5: 13 to 15 of 20 simultaneous wrong passwords used to be checked."""
    sessions = [requests.Session() for _ in range(20)]
    forms = [csrf_token_from(session.get(server.url + "/login", timeout=30).text) for session in sessions]
    start = threading.Barrier(20)

    def post(index):
        start.wait()
        return sessions[index].post(server.url + "/login", headers={"X-Forwarded-For": "10.3.0.1"}, timeout=60,
                                    allow_redirects=False,
                                    data={"username": "crowd", "password": "wrong", "csrf_token": forms[index]})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = [response.status_code for response in pool.map(post, range(20))]
    for session in sessions:
        session.close()
    assert set(answers) <= {200, 429} and answers.count(429) >= 15
    assert checked_failures(server, "crowd") == answers.count(200) <= 5


def test_rule_4_an_attempt_over_the_limit_is_429_and_not_checked(server):
    assert statuses(server, "locked", "wrong", "10.4.0.1", 5) == [200] * 5
    refused = sign_in(server, "locked", PASSWORD, "10.4.0.2")  # the right password, from elsewhere
    assert refused.status_code == 429 and "Too many attempts" in refused.text
    assert sign_in(server, "locked", "wrong", "10.4.0.3").status_code == 429
    assert checked_failures(server, "locked") == 5


def test_rule_5_a_correct_password_consumes_nothing(server):
    assert statuses(server, "returning", "wrong", "10.5.0.1", 4) == [200] * 4
    assert sign_in(server, "returning", PASSWORD, "10.5.0.2").status_code == 303
    assert statuses(server, "returning", "wrong", "10.5.0.1", 2) == [200, 429]


def device_cookie(response) -> tuple[str, str]:
    """The Set-Cookie header of the device cookie, and its value."""
    cookie = next(value for value in response.raw.headers.getlist("Set-Cookie") if value.startswith("tessera_device="))
    return cookie, cookie.split(";")[0].split("=", 1)[1]


def test_rule_6_a_sign_in_sets_the_device_cookie(server):
    response = sign_in(server, "reader", PASSWORD, "10.6.0.1")
    assert response.status_code == 303
    cookie, _ = device_cookie(response)
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/login", "samesite=lax", "max-age=2592000"} <= attributes and "secure" not in attributes
    again, _ = device_cookie(sign_in(server, "READER", PASSWORD, "10.6.0.1"))
    assert again != cookie  # replaced at each sign-in


def test_rule_7_a_device_cookie_lets_the_owner_in_and_buys_a_thief_only_its_own_bucket(server):
    """Issue 22 point 6: five wrong passwords from anywhere used to lock an administrator out."""
    _, device = device_cookie(sign_in(server, "owner", PASSWORD, "10.7.0.1"))
    assert statuses(server, "owner", "wrong", "10.7.0.2", 6) == [200] * 5 + [429]  # strangers lock it
    assert sign_in(server, "owner", PASSWORD, "10.7.0.3").status_code == 429  # without the cookie
    assert sign_in(server, "owner", PASSWORD, "10.7.0.4", {"tessera_device": device}).status_code == 303
    # A thief with a copy of a cookie: 5 guesses in its own bucket, then 429, password unchecked.
    _, stolen = device_cookie(sign_in(server, "victim", PASSWORD, "10.7.0.5"))
    assert statuses(server, "victim", "wrong", "10.7.0.6", 6, {"tessera_device": stolen}) == [200] * 5 + [429]
    assert sign_in(server, "victim", PASSWORD, "10.7.0.6", {"tessera_device": stolen}).status_code == 429
    assert sign_in(server, "victim", PASSWORD, "10.7.0.7").status_code == 303  # the account was not touched


def aged(server, session) -> requests.Session:
    """The same browser, its password given ten minutes ago: the step-up asks again."""
    signer = Flask("age")
    signer.secret_key = SECRET_KEY
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    contents = serializer.loads(session.cookies["tessera_session"])
    contents["auth"] -= 600
    cookie = next(cookie for cookie in session.cookies if cookie.name == "tessera_session")
    session.cookies.set(cookie.name, serializer.dumps(contents), domain=cookie.domain, path=cookie.path)
    return session


def step_up(server, session, password) -> requests.Response:
    """Ask for a master token, giving the password again."""
    page = session.get(server.url + "/admin/tokens/new", timeout=30)
    application = re.search(r'<option value="(\d+)"[^>]*>svc', page.text).group(1)
    return session.post(server.url + "/admin/tokens/new", timeout=30, allow_redirects=False, data={
        "csrf_token": csrf_token_from(page.text), "application": application, "master": "y", "value": "",
        "user": "", "scope": "", "perm-0-tenant": "*", "perm-0-actions": "READ_TENANT", "save": "1",
        "expires_at": (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "current_password": password})


def test_rule_8_the_step_up_counts_in_a_bucket_only_the_accounts_sessions_reach(server):
    stepper = aged(server, browser(server, "stepper", "10.8.0.1"))
    assert statuses(server, "stepper", "wrong", "10.8.0.2", 6) == [200] * 5 + [429]  # strangers lock the account
    assert "Enter your password" in step_up(server, stepper, "").text  # the session is old: it asks
    assert step_up(server, stepper, PASSWORD).status_code == 303
    fumbler = aged(server, browser(server, "fumbler", "10.8.0.3"))
    for _ in range(5):
        wrong = step_up(server, fumbler, "wrong")
        assert wrong.status_code == 422 and "Wrong password." in wrong.text
    refused = step_up(server, fumbler, PASSWORD)
    assert refused.status_code == 422 and "Too many wrong passwords: try again in" in refused.text


def test_rule_9_a_right_secret_or_a_live_token_is_answered_whatever_others_failed(server):
    """Issue 22 point 1: failures for a client id used to lock out all its users, and junk
    through a relay (GeoServer calling tokeninfo) every valid token behind it."""
    svc = server.svc
    assert [client_auth(server, svc, "wrong", "10.9.0.1").status_code for _ in range(12)] == [401] * 10 + [429] * 2
    for address in ("10.9.0.1", "10.9.0.2"):
        for path in ("/token", "/o/token", "/introspect", "/revoke"):
            assert client_auth(server, svc, svc["client_secret"], address, path).status_code == 200, path
    relay = {"X-Forwarded-For": "10.9.0.3"}
    junk = [requests.post(server.url + "/api/o/v4/tokeninfo", data={"token": f"tsr_junk_{n}_00000000000"},
                          headers=relay, timeout=30).status_code for n in range(61)]
    assert junk == [403] * 60 + [429]
    assert requests.post(server.url + "/api/o/v4/tokeninfo", data={"token": server.token}, headers=relay,
                         timeout=30).status_code == 200
    for path in ("/api/v1/tenants", "/userinfo", "/api/o/v4/userinfo"):
        assert bearer_read(server, server.token, "10.9.0.3", path).status_code == 200, path


def test_rule_10_failed_client_authentications_count_per_client_at_an_address_and_per_address(server):
    answers = [client_auth(server, server.svc, "wrong", "10.10.0.1") for _ in range(11)]
    assert [answer.status_code for answer in answers] == [401] * 10 + [429]
    assert answers[-1].json()["error"] == "invalid_client" and 0 < int(answers[-1].headers["Retry-After"]) <= 60
    assert client_auth(server, server.svc, "wrong", "10.10.0.2").status_code == 401
    unknown = [client_auth(server, {"client_id": f"unknown{n}"}, "wrong", "10.10.0.3").status_code for n in range(31)]
    assert unknown == [401] * 30 + [429]


def test_rule_11_a_public_clients_failures_count_against_the_address_only(server):
    spa = server.spa["client_id"]
    flood = {"grant_type": "authorization_code", "code": "x", "client_id": spa, "client_secret": "guess"}
    assert [requests.post(server.url + "/token", data=flood, headers={"X-Forwarded-For": "10.11.0.1"},
                          timeout=30).status_code for _ in range(15)] == [401] * 15
    # Its users' code exchanges (PKCE, no secret) work all the while.
    user = browser(server, "reader", "10.11.0.2")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = user.get(server.url + "/authorize?" + urlencode({
        "client_id": spa, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid", "state": "s",
        "code_challenge": challenge, "code_challenge_method": "S256"}), timeout=30)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)" class="consent-form">', page.text)[1])
    allowed = user.post(server.url + action, data={"csrf_token": csrf_token_from(page.text), "decision": "allow"},
                        allow_redirects=False, timeout=30)
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    exchanged = requests.post(server.url + "/token", headers={"X-Forwarded-For": "10.11.0.2"}, timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": spa,
        "code_verifier": verifier})
    assert exchanged.status_code == 200, exchanged.text


def django_pbkdf2(secret: str, iterations: int = 100_000) -> str:
    salt = secrets.token_hex(6)
    derived = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(derived).decode()}"


def test_rule_12_an_imported_slow_secret_is_not_checked_from_an_address_over_its_limit(server):
    legacy = server.legacy
    with server.engine.begin() as connection:
        connection.execute(text("UPDATE applications SET client_secret_hash = :hash WHERE client_id = :id"),
                           {"hash": django_pbkdf2("old django secret"), "id": legacy["client_id"]})
    assert [client_auth(server, {"client_id": f"unknown{n}"}, "wrong", "10.12.0.1").status_code
            for n in range(31)][-1] == 429
    refused = client_auth(server, legacy, "old django secret", "10.12.0.1")  # right, but not checked
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert client_auth(server, legacy, "old django secret", "10.12.0.2").status_code == 200


def test_rule_13_failed_bearer_tokens_count_per_address(server):
    answers = [bearer_read(server, f"tsr_guess_{n}_00000000000", "10.13.0.1") for n in range(61)]
    assert [answer.status_code for answer in answers] == [401] * 60 + [429]
    assert answers[-1].json()["error"] == "too_many_requests" and 0 < int(answers[-1].headers["Retry-After"]) <= 60
    assert bearer_read(server, "tsr_guess_x_00000000000", "10.13.0.2").status_code == 401


def test_rule_14_each_counted_failure_deletes_up_to_a_hundred_finished_windows(server):
    """Issue 22 point 15: the table used to grow until an operator ran purge-expired."""
    with server.engine.begin() as connection:
        connection.execute(insert(RateLimitCounter.__table__), [
            {"key_hash": f"{n:064x}", "count": 1, "expires_at": float(n)} for n in range(1, 151)])

    def planted() -> int:
        with server.engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM rate_limit_counters WHERE expires_at < 1000"))

    left = [planted()]
    for n in range(2):
        assert bearer_read(server, f"tsr_purge_{n}_00000000000", "10.14.0.1").status_code == 401
        left.append(planted())
    assert left == [150, 50, 0]
