"""Scale-out: two gunicorn processes over one PostgreSQL database, rate limits in Redis.

No state may live in one process that the other needs: a token made through one server
works at once on the other, a token deleted through one is refused at once by the other,
and failed logins count toward one throttle whichever server they reach."""

import os
import secrets
import uuid

import pytest
import requests

from tests.conftest import TEST_DATABASE_URL, csrf_token_from, fresh_postgres_database, start_live_server

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
REDIS_DB = 3  # other test runs use other numbers; keys carry a random username anyway

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set: the scale-out test needs "
                       "PostgreSQL shared by two gunicorn processes"),
    pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set: the scale-out test needs Redis "
                       "for rate limits shared by two gunicorn processes"),
]


def redis_url() -> str:
    """TEST_REDIS_URL on our own database number, unless it names one."""
    base = TEST_REDIS_URL.rstrip("/")
    return base if base.rsplit("/", 1)[-1].isdigit() else f"{base}/{REDIS_DB}"


@pytest.fixture(scope="module")
def shared_database_url():
    """A fresh PostgreSQL database (test_bench_scale_*), dropped after the module."""
    with fresh_postgres_database("test_bench_scale") as url:
        yield url


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory, shared_database_url):
    """Two gunicorn processes, as two hosts behind a load balancer: one database, one
    Redis, one SECRET_KEY; `portal init` runs once. Shared by the module's tests, which
    leave each other alone (each its own username; its own tokens)."""
    env = {
        "RATELIMIT_STORAGE_URI": redis_url(),
        "LOGIN_RATE_LIMIT": "3 per minute",
        "SECRET_KEY": secrets.token_hex(32),
    }
    servers = []
    try:
        servers.append(start_live_server(tmp_path_factory.mktemp("scale"), database_url=shared_database_url,
                                         extra_env=env, workers=2))
        servers.append(start_live_server(tmp_path_factory.mktemp("scale"), database_url=shared_database_url,
                                         extra_env=env, workers=2, run_init=False))
        assert servers[0].url != servers[1].url
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()


def failed_login(server, username: str) -> int:
    session = requests.Session()
    page = session.get(server.url + "/login", timeout=10)
    assert page.status_code == 200
    response = session.post(server.url + "/login", timeout=10, allow_redirects=False,
                            data={"username": username, "password": "wrong password",
                                  "csrf_token": csrf_token_from(page.text)})
    return response.status_code


def test_login_throttling_counts_across_both_servers(two_servers):
    first, second = two_servers
    username = f"nobody-{uuid.uuid4().hex[:8]}"  # its own counter, whatever else is in Redis

    # Three failures spread over both servers use up the limit of three per minute...
    assert [failed_login(first, username), failed_login(second, username), failed_login(first, username)] == [
        200, 200, 200]
    # ...so the next attempt is refused on either server.
    assert failed_login(second, username) == 429
    assert failed_login(first, username) == 429
    # Another username is not affected.
    assert failed_login(second, f"other-{uuid.uuid4().hex[:8]}") == 200


def api(server, method: str, path: str, token: str, **kwargs) -> requests.Response:
    return requests.request(method, server.url + "/api/v1" + path, timeout=10,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_a_token_made_or_deleted_through_one_server_counts_at_once_on_the_other(two_servers):
    first, second = two_servers
    master = first.default_tokens["adminconsole"]
    first.cli("create-tenant", "site1")
    probe = api(first, "GET", "/access-tokens", master)
    if probe.status_code == 404:
        pytest.skip("the JSON API (/api/v1/access-tokens) is not there yet")
    assert probe.status_code == 200, probe.text

    # Made through the first server...
    created = api(first, "POST", "/access-tokens", master,
                  json={"application": "crafterengine",
                        "tenant_permissions": [{"tenant": "site1", "actions": ["READ_TENANT"]}]})
    assert created.status_code == 201, created.text
    token_id, value = created.json()["id"], created.json()["value"]

    # ...it works on the second at once, and the second lists it.
    assert api(second, "GET", "/tenants/site1", value).status_code == 200
    assert api(second, "GET", f"/access-tokens/{token_id}", master).status_code == 200

    # Deleted through the second server...
    assert api(second, "DELETE", f"/access-tokens/{token_id}", master).status_code == 204

    # ...it is refused by the first at once (and by the second).
    for server in (first, second):
        refused = api(server, "GET", "/tenants/site1", value)
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in refused.headers.get("WWW-Authenticate", "")
    assert api(first, "GET", f"/access-tokens/{token_id}", master).status_code == 404

    # The same for a token made with the command line against the shared database.
    value = first.cli("create-token", "--application", "craftersocial", "--tenant", "site1=READ_TENANT").stdout
    for server in (second, first):
        response = api(server, "GET", "/tenants/site1", value.strip())
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "site1"

