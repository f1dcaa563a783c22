"""/api/v1/access-tokens: master tokens only; tokens are immutable."""

import pytest
from sqlalchemy import func, select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.api.conftest import bearer
from tests.factories import make_application, make_user

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

URL = "/api/v1/access-tokens"


def count_tokens() -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken))


def test_master_creates_a_token_shown_once(app, client, master, site1, token_format):
    body = {"application": "crafterengine", "tenant_permissions": [
        {"tenant": "site1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]}], "expires_in": 3600}
    response = client.post(URL, json=body, headers=bearer(master))
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    created = response.json
    # The test runs once per format (tests/conftest.py's token_format): jwt makes signed values.
    assert app.config["ACCESS_TOKEN_FORMAT"] == token_format
    assert created["value"].startswith("eyJ" if token_format == "jwt" else "tsr_")
    assert created["source"] == "api" and created["master"] is False
    assert created["tenant_permissions"] == [{"tenant": "site1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]}]
    # the new token works at once, within its permissions
    assert client.get("/api/v1/tenants/site1/profiles", headers=bearer(created["value"])).status_code == 200
    assert client.get("/api/v1/tenants/site2/profiles", headers=bearer(created["value"])).status_code == 403
    # reading it later never shows the value
    read = client.get(f"{URL}/{created['id']}", headers=bearer(master))
    assert read.status_code == 200 and "value" not in read.json
    assert read.json["hint"] == created["hint"]
    row = db.session.get(AccessToken, created["id"])
    assert created["value"] not in (row.token_hash, row.hint)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.created")
                               .order_by(AuditEvent.id.desc())).first()
    assert event.actor == f"token {tokens.hint_for(master)} (crafterengine)"


def test_create_with_custom_value_user_master_and_expires_at(client, master, site1):
    user = make_user(username="alice", tenant=site1)
    make_application("other")
    value = "legacy-token-value-0123456789"
    year = clock.now().year + 1  # within the ten-year cap
    response = client.post(URL, headers=bearer(master), json={
        "application": "other", "user": "alice", "value": value, "master": True, "scope": "openid  email",
        "expires_at": f"{year}-01-01T02:00:00+02:00"})
    assert response.status_code == 201, response.json
    assert response.json["value"] == value
    assert response.json["user"] == "alice" and response.json["master"] is True
    assert response.json["expires_at"] == f"{year}-01-01T00:00:00Z"
    assert response.json["scope"] == "openid email"
    assert tokens.find_by_value(value).user_id == user.id
    again = client.post(URL, headers=bearer(master), json={"application": "other", "value": value})
    assert again.status_code == 409
    assert again.json["error"] == "duplicate_value" and again.json["field"] == "value"


@pytest.mark.parametrize("body, status, field", [
    ({"application": "nope"}, 422, "application"),
    ({"application": "crafterengine", "user": "nobody"}, 422, "user"),
    ({"application": "crafterengine", "master": "yes"}, 422, "master"),
    ({"application": 7}, 422, "application"),
    ({}, 422, "application"),
    ({"application": "crafterengine", "surprise": 1}, 422, "surprise"),
    ({"application": "crafterengine", "tenant_permissions": [{"tenant": "site1", "actions": ["FLY"]}]},
     422, "tenant_permissions[0].actions[0]"),
    ({"application": "crafterengine", "tenant_permissions": [{"tenant": "site9", "actions": ["READ_TENANT"]}]},
     422, "tenant_permissions"),
    ({"application": "crafterengine", "tenant_permissions": [{"tenant": "site1", "actions": ["READ_TENANT"]},
                                                            {"tenant": "site1", "actions": ["*"]}]},
     422, "tenant_permissions[1].tenant"),
    ({"application": "crafterengine", "tenant_permissions": "site1"}, 422, "tenant_permissions"),
    ({"application": "crafterengine", "value": "short"}, 422, "value"),
    ({"application": "crafterengine", "expires_in": 0}, 422, "expires_in"),
    ({"application": "crafterengine", "expires_in": 60, "expires_at": "2099-01-01T00:00:00Z"}, 422, "expires_in"),
    ({"application": "crafterengine", "expires_at": "2001-01-01T00:00:00Z"}, 422, "expires_at"),
    ({"application": "crafterengine", "expires_at": "tomorrow"}, 422, "expires_at"),
])
def test_bad_create_names_the_field_and_writes_nothing(client, master, site1, body, status, field):
    before = count_tokens()
    response = client.post(URL, json=body, headers=bearer(master))
    assert response.status_code == status, response.json
    assert response.json["field"] == field, response.json
    assert response.json["error"] and response.json["message"]
    assert count_tokens() == before


def test_malformed_json_is_400_and_other_bodies_415(client, master):
    response = client.post(URL, data='{"application": ', content_type="application/json", headers=bearer(master))
    assert response.status_code == 400
    assert response.json["error"] == "malformed_json" and response.json["field"] == "body"
    response = client.post(URL, data="application=crafterengine", headers=bearer(master),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    response = client.post(URL, data="[1, 2]", content_type="application/json", headers=bearer(master))
    assert response.status_code == 422 and response.json["field"] == "body"


@pytest.mark.both_databases  # pages and filters in SQL
def test_list_is_paginated_and_filtered_by_application(client, master, token_for):
    other = make_application("other")
    for _ in range(3):
        token_for(("site1", ["READ_TENANT"]))
    tokens.create_token(application=other, source="admin", actor="test")
    seen = []
    after = 0
    while True:
        page = client.get(f"{URL}?limit=2&after={after}", headers=bearer(master))
        assert page.status_code == 200
        assert len(page.json["items"]) <= 2
        seen += [item["id"] for item in page.json["items"]]
        if page.json["next_after"] is None:
            break
        after = page.json["next_after"]
    assert len(seen) == len(set(seen)) == 5
    assert all("value" not in item for item in page.json["items"])
    filtered = client.get(f"{URL}?application=other", headers=bearer(master)).json["items"]
    assert [item["application"] for item in filtered] == ["other"]
    assert client.get(f"{URL}?limit=1000", headers=bearer(master)).status_code == 422
    assert client.get(f"{URL}?limit=abc", headers=bearer(master)).json["field"] == "limit"


def test_non_master_gets_403_everywhere(client, master, plain):
    token_id = tokens.find_by_value(master).id
    before = count_tokens()
    for method, path in [("get", URL), ("post", URL), ("get", f"{URL}/{token_id}"), ("delete", f"{URL}/{token_id}")]:
        response = getattr(client, method)(path, headers=bearer(plain), json={"application": "crafterengine"}
                                           if method == "post" else None)
        assert response.status_code == 403, (method, path)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="insufficient_scope"'
        assert response.json["error"] == "insufficient_scope"
        assert "master" in response.json["message"]
    assert count_tokens() == before


def test_master_without_token_or_bad_token_is_401(client, master):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=bearer(master + "x")).status_code == 401


def test_read_and_delete_unknown_token_is_404(client, master):
    assert client.get(f"{URL}/99999", headers=bearer(master)).status_code == 404
    assert client.delete(f"{URL}/99999", headers=bearer(master)).json["error"] == "not_found"
    assert client.get(f"{URL}/99999999999999999999", headers=bearer(master)).status_code == 404


def test_tokens_are_immutable(client, master):
    token_id = tokens.find_by_value(master).id
    for method in ("patch", "put"):
        response = getattr(client, method)(f"{URL}/{token_id}", json={"master": False}, headers=bearer(master))
        assert response.status_code == 405
        assert response.json["error"] == "method_not_allowed"
    assert tokens.find_by_value(master).master is True


def test_master_does_not_bypass_tenant_permissions(client, token_for):
    master_site1 = token_for(("site1", ["READ_TENANT"]), master=True)
    assert client.get("/api/v1/tenants/site1", headers=bearer(master_site1)).status_code == 200
    assert client.get("/api/v1/tenants/site2", headers=bearer(master_site1)).status_code == 403
    assert client.get("/api/v1/tenants/site1/profiles", headers=bearer(master_site1)).status_code == 403


@pytest.mark.parametrize("caller, requested, missing", [
    ([("site1", ["MANAGE_PROFILES"])], [("site1", ["MANAGE_PROFILES"])], None),
    ([("site1", ["MANAGE_PROFILES"])], [("site2", ["MANAGE_PROFILES"])], "MANAGE_PROFILES on site2"),
    # CREATE_TENANT is global: a site1 entry cannot grant it, so READ_TENANT is the first excess
    ([("site1", ["MANAGE_PROFILES"])], [("site1", ["*"])], "READ_TENANT on site1"),
    ([("site1", ["*"])], [("*", ["READ_TENANT"])], "READ_TENANT on *"),
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("site2", ["*"])], None),
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("site1", ["MANAGE_PROFILES"])], "MANAGE_PROFILES on site1"),
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("*", ["MANAGE_PROFILES"])], "MANAGE_PROFILES on site1"),
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("*", ["MANAGE_PROFILES"]), ("site1", ["READ_TENANT"])], None),
])
def test_a_master_token_cannot_grant_more_than_it_holds(client, token_for, caller, requested, missing):
    value = token_for(*caller, master=True)
    before = count_tokens()
    response = client.post(URL, headers=bearer(value), json={"application": "crafterengine", "tenant_permissions": [
        {"tenant": tenant, "actions": actions} for tenant, actions in requested]})
    if missing is None:
        assert response.status_code == 201, response.json
    else:
        assert response.status_code == 403, response.json
        assert response.json["missing"] == missing
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="insufficient_scope"'
        assert count_tokens() == before
