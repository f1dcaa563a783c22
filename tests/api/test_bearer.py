"""Bearer authentication on /api/v1 (RFC 6750; SECURITY.md section E)."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.api.conftest import bearer

REALM = 'Bearer realm="tessera"'


def test_missing_token_is_401_without_error_parameter(client, site1):
    response = client.get("/api/v1/tenants/site1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.json["error"] == "missing_token" and response.json["message"]


@pytest.mark.parametrize("header", ["Bearer ", "Bearer nonsense-value-that-is-unknown", "Basic dXNlcjpwdw==",
                                    "Bearer " + "x" * 5000])
def test_bad_or_garbage_token_is_401_invalid_token_or_missing(client, site1, header):
    response = client.get("/api/v1/tenants/site1", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(REALM)
    assert response.json["error"] in ("invalid_token", "missing_token")


def test_unknown_token_is_invalid_token(client, site1):
    response = client.get("/api/v1/tenants/site1", headers=bearer("tsr_unknown-token-value-123456"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'{REALM}, error="invalid_token"'
    assert response.json["error"] == "invalid_token"


@pytest.mark.token_format
def test_expired_token_is_invalid_token(client, token_for, monkeypatch):
    value = token_for(("*", ["*"]), expires_in=60)
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = client.get("/api/v1/tenants/site1", headers=bearer(value))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'{REALM}, error="invalid_token"'
    assert "expired" in response.json["message"]


@pytest.mark.token_format
def test_deleted_token_fails_on_the_very_next_request(client, master, token_for):
    value = token_for(("*", ["*"]))
    token_id = tokens.find_by_value(value).id
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    assert client.delete(f"/api/v1/access-tokens/{token_id}", headers=bearer(master)).status_code == 204
    response = client.get("/api/v1/tenants/site1", headers=bearer(value))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'{REALM}, error="invalid_token"'


@pytest.mark.token_format
def test_revoked_token_is_invalid_token(client, token_for):
    value = token_for(("*", ["*"]))
    tokens.revoke(tokens.find_by_value(value), actor="test")
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 401


@pytest.mark.token_format
def test_token_of_a_deactivated_user_is_refused(client, token_for, site1):
    from tests.factories import make_user

    user = make_user(tenant=site1)
    value = token_for(("*", ["*"]), user=user)
    user.active = False
    db.session.commit()
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 401


@pytest.mark.token_format
def test_token_accepted_in_header_query_form_and_accessTokenId(client, token_for):
    value = token_for(("*", ["*"]))
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    assert client.get(f"/api/v1/tenants/site1?access_token={value}").status_code == 200
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={value}").status_code == 200
    # form body (RFC 6750 §2.2): not on GET, so on a DELETE of all sessions
    response = client.delete("/api/v1/tenants/site1/sessions", data={"access_token": value})
    assert response.status_code == 200, response.json
    response = client.delete("/api/v1/tenants/site1/sessions", data={"accessTokenId": value})
    assert response.status_code == 200, response.json


@pytest.mark.token_format
def test_form_token_on_get_is_ignored(client, token_for):
    value = token_for(("*", ["*"]))
    response = client.get("/api/v1/tenants/site1", data={"access_token": value},
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401


@pytest.mark.token_format
def test_two_tokens_are_invalid_request(client, token_for):
    value = token_for(("*", ["*"]))
    response = client.get(f"/api/v1/tenants/site1?access_token={value}", headers=bearer(value))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    response = client.delete(f"/api/v1/tenants/site1/sessions?access_token={value}",
                             data={"access_token": value})
    assert response.status_code == 400


class TestQueryTokensOff:
    @pytest.fixture
    def app_config(self):
        return {"ALLOW_QUERY_ACCESS_TOKEN": False}

    @pytest.mark.token_format
    def test_query_token_is_treated_as_no_token(self, client, token_for):
        value = token_for(("*", ["*"]))
        response = client.get(f"/api/v1/tenants/site1?access_token={value}")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == REALM
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200


@pytest.mark.both_databases  # the statements a lookup runs
@pytest.mark.token_format
def test_authentication_is_one_indexed_lookup(app, client, token_for):
    """The bearer check costs the same whatever the number of tokens: one SELECT by hash."""
    from sqlalchemy import event

    value = token_for(("*", ["*"]))
    for _ in range(5):
        token_for(("site1", ["READ_TENANT"]))
    client.get("/api/v1/tenants/site1", headers=bearer(value))  # last_used_at written now
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    token_selects = [s for s in statements if "FROM access_tokens" in s and "token_hash" in s]
    assert len(token_selects) == 1
    assert not any("FROM access_tokens" in s and "token_hash" not in s and s.lstrip().startswith("SELECT")
                   for s in statements)


@pytest.mark.token_format
def test_actions_are_audited_with_the_token_hint_and_application(client, token_for):
    value = token_for(("*", ["*"]))
    client.patch("/api/v1/tenants/site1", json={"label": "New"}, headers=bearer(value))
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "tenant.renamed")).one()
    assert event.actor == f"token {tokens.hint_for(value)} (crafterengine)"
    assert value not in str(event.details)


@contextmanager
def pool_checkouts():
    """The number of connections requests take from the pool while the block runs."""
    checkouts = []

    def listener(*args):
        checkouts.append(1)

    event.listen(db.engine.pool, "checkout", listener)
    try:
        yield checkouts
    finally:
        event.remove(db.engine.pool, "checkout", listener)


def connections_in_a_transaction() -> int:
    """Other connections to the test database that hold a transaction (PostgreSQL)."""
    return db.session.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND state LIKE 'idle in transaction%'")).scalar()


@pytest.mark.both_databases  # each driver's connections and isolation
@pytest.mark.token_format
def test_the_thread_keeps_its_connection_between_requests_and_sees_changes_at_once(app, client, token_for):
    """API reads take no connection from the pool after the first request, yet hold no
    transaction (no read snapshot, no lock) in between: a change made elsewhere is seen at once."""
    value = token_for(("*", ["*"]))
    with pool_checkouts() as checkouts:
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
        first = len(checkouts)
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
        assert len(checkouts) == first
    if db.engine.dialect.name == "postgresql":
        assert connections_in_a_transaction() == 0
        db.session.rollback()
    with app.app_context():
        db.session.execute(db.update(AccessToken).values(revoked_at=clock.now()))
        db.session.commit()
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 401


@pytest.mark.both_databases  # each driver's connections
@pytest.mark.token_format
def test_a_connection_kept_too_long_goes_back_to_the_pool(client, token_for, monkeypatch):
    """Idle past IDLE_RECHECK_SECONDS, the kept connection is given up and the next request
    checks one out of the pool again (whose pre-ping checks it on PostgreSQL)."""
    from portal.db import connections

    value = token_for(("*", ["*"]))
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    monkeypatch.setattr(connections, "IDLE_RECHECK_SECONDS", 0.0)
    with pool_checkouts() as checkouts:
        assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
        assert len(checkouts) == 1


@pytest.mark.token_format
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # only a server drops connections
@pytest.mark.parametrize("idle", ["briefly", "past IDLE_RECHECK_SECONDS"])
def test_connections_the_database_dropped_cost_the_next_request_nothing(app, client, token_for, monkeypatch, idle):
    """What the pool's pre-ping does for a pooled connection: a server restart (here, every
    backend of the test database terminated) between two requests, and the second is answered."""
    from portal.db import connections

    value = token_for(("*", ["*"]))
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    if idle != "briefly":
        monkeypatch.setattr(connections, "IDLE_RECHECK_SECONDS", 0.0)
    with db.engine.connect() as other:
        terminated = other.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    assert terminated >= 1
    response = client.get("/api/v1/tenants/site1", headers=bearer(value))
    assert response.status_code == 200, response.get_data(as_text=True)
