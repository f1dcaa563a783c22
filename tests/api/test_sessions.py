"""/api/v1/tenants/<name>/sessions: list and end the login sessions of a tenant's users
(MANAGE_TICKETS)."""

import pytest

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.api.conftest import bearer
from tests.factories import make_user

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format


def test_list_and_end_sessions_of_one_tenant_only(client, token_for, site1, site2):
    alice = make_user(tenant=site1)
    bob = make_user(tenant=site2)
    alice_ids = sorted(tokens.create_session_token(alice).token.id for _ in range(2))
    bob_id = tokens.create_session_token(bob).token.id
    value = token_for(("site1", ["MANAGE_TICKETS"]))
    listed = client.get("/api/v1/tenants/site1/sessions", headers=bearer(value))
    assert listed.status_code == 200
    assert sorted(s["id"] for s in listed.json["items"]) == alice_ids
    assert all(s["username"] == alice.username for s in listed.json["items"])
    assert "value" not in listed.json["items"][0]
    ended = client.delete("/api/v1/tenants/site1/sessions", headers=bearer(value))
    assert ended.status_code == 200 and ended.json == {"ended": 1}  # users logged out: alice
    db.session.expire_all()
    assert all(db.session.get(AccessToken, i) is None for i in alice_ids)
    assert db.session.get(AccessToken, bob_id) is not None
    assert client.get("/api/v1/tenants/site1/sessions", headers=bearer(value)).json["items"] == []
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "tenant.sessions_ended")).one()
    assert event.details["sessions_ended"] == 2 and event.actor.startswith("token ")


def test_ended_session_logs_the_user_out(client, app, master, site1):
    make_user(username="carol", password="correct horse battery", tenant=site1)
    browser = app.test_client()
    from tests.conftest import Auth

    assert Auth(browser).login("carol").status_code == 303
    assert client.get("/api/v1/tenants/site1/sessions", headers=bearer(master)).json["items"]
    assert client.delete("/api/v1/tenants/site1/sessions", headers=bearer(master)).json["ended"] >= 1
    response = browser.get("/", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_needs_manage_tickets_on_that_tenant(client, token_for, site2):
    bob = make_user(tenant=site2)
    tokens.create_session_token(bob)
    value = token_for(("site1", ["MANAGE_TICKETS"]), ("*", ["MANAGE_PROFILES"]))
    response = client.delete("/api/v1/tenants/site2/sessions", headers=bearer(value))
    assert response.status_code == 403 and response.json["missing"] == "MANAGE_TICKETS on site2"
    assert client.get("/api/v1/tenants/site2/sessions", headers=bearer(value)).status_code == 403
    star = token_for(("*", ["MANAGE_TICKETS"]))
    assert len(client.get("/api/v1/tenants/site2/sessions", headers=bearer(star)).json["items"]) == 1
    assert client.get("/api/v1/tenants/nosuch/sessions", headers=bearer(star)).status_code == 404
