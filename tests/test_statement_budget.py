"""SQL statements per request on the hot paths, budgeted (docs/benchmark.md, "Statements per
request"). A path that grows past its budget fails here, on SQLite and PostgreSQL, with the
statements it ran; lower the budget when a path gets cheaper.

Counted as a deployment runs: the throttle in the database, a warmed-up worker (the first
request of a process loads signing keys and statements once), a correct credential from an
address with no recent failures."""

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from portal.extensions import db
from tests.factories import make_application, make_tenant, make_token, make_user
from tests.oauth.conftest import PASSWORD, REDIRECT_URI, Flow, pkce_pair

# On SQLite and PostgreSQL (tests/conftest.py): statements counted in each database.
pytestmark = pytest.mark.both_databases

# path: statements per request
BUDGET = {
    "api read": 2,  # the token with its permissions; the tenant
    "userinfo": 1,  # the token with its user's claims
    "introspect": 2,  # the client; the token
    "client_credentials": 2,  # the client; the new token (inserted and committed on one connection)
    "refresh": 5,  # the client; the token; its rotation; the user; the new token
    "authorization_code": 8,  # the client; the code; its use; the user; the token; the signing key; the code and
                              # the user again (Authlib's OpenID hook reads them for the ID token)
}


@pytest.fixture
def app_config():
    return {"RATELIMIT_STORAGE_URI": "database://"}


@contextmanager
def statements():
    """The statements the database sees (transaction control aside)."""
    seen = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if statement.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(" ".join(statement.split())[:160])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def within_budget(path: str, request) -> None:
    request()  # warm-up: the process's first request loads what every later one reuses
    with statements() as seen:
        response = request()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(seen) <= BUDGET[path], f"{path}: {len(seen)} statements, budget {BUDGET[path]}:\n" + "\n".join(seen)
    assert not any("rate_limit" in statement for statement in seen), seen


@pytest.fixture
def service(app):
    return make_application(name="svc", grant_types=["client_credentials"], scope="api")


def test_api_read(client, service):
    make_tenant("site1")
    value = make_token(application=service, tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}]).value
    within_budget("api read", lambda: client.get("/api/v1/tenants/site1", headers={"Authorization": f"Bearer {value}"}))


def test_userinfo(client, service):
    value = make_token(application=service, user=make_user(username="bob"), scope="openid profile email").value
    within_budget("userinfo", lambda: client.get("/userinfo", headers={"Authorization": f"Bearer {value}"}))


def test_introspect(client, service):
    value = make_token(application=service).value
    within_budget("introspect", lambda: client.post("/introspect", data={"token": value},
                                                    auth=(service.client_id, service.test_secret)))


def test_client_credentials(client, service):
    within_budget("client_credentials", lambda: client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": service.client_id,
                        "client_secret": service.test_secret}))


@pytest.fixture
def flow(client, auth, app):
    application = make_application(name="rp", redirect_uris=[REDIRECT_URI], response_types=["code"],
                                   scope="openid email profile")
    flow = Flow(client, auth, application, application.test_secret, make_user(username="alice", password=PASSWORD))
    flow.login()
    return flow


def test_refresh(flow):
    refresh_tokens = iter([flow.tokens()["refresh_token"], flow.tokens()["refresh_token"]])
    within_budget("refresh", lambda: flow.refresh(next(refresh_tokens)))


def test_authorization_code_exchange(flow):
    verifiers = []
    codes = []
    for _ in range(2):
        verifier, challenge = pkce_pair()
        verifiers.append(verifier)
        codes.append(flow.code(code_challenge=challenge, code_challenge_method="S256"))
    exchanges = iter(zip(codes, verifiers))

    def exchange():
        code, verifier = next(exchanges)
        return flow.token(code, code_verifier=verifier)

    within_budget("authorization_code", exchange)
