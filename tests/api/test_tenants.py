"""/api/v1/tenants: READ_TENANT on * lists; CREATE_TENANT is global; a specific tenant
entry beats the * entry whatever their order."""

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
from tests.api.conftest import bearer
from tests.factories import make_user

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

URL = "/api/v1/tenants"


def tenant_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Tenant))


def test_list_and_count_with_read_tenant_on_star(client, token_for):
    value = token_for(("*", ["READ_TENANT"]))
    response = client.get(URL, headers=bearer(value))
    assert response.status_code == 200
    assert response.json["total"] == 2
    assert [t["name"] for t in response.json["items"]] == ["site1", "site2"]
    assert response.json["items"][0]["label"] == "Site One"
    page = client.get(f"{URL}?limit=1", headers=bearer(value)).json
    assert len(page["items"]) == 1 and page["total"] == 2
    rest = client.get(f"{URL}?limit=1&after={page['next_after']}", headers=bearer(value)).json
    assert [t["name"] for t in rest["items"]] == ["site2"] and rest["next_after"] is None


def test_listing_needs_a_star_entry(client, token_for):
    value = token_for(("site1", ["READ_TENANT"]), ("site2", ["READ_TENANT"]))
    response = client.get(URL, headers=bearer(value))
    assert response.status_code == 403
    assert response.json["missing"] == "READ_TENANT on *"
    assert client.get(f"{URL}/site1", headers=bearer(value)).status_code == 200


def test_create_is_global_and_needs_star(client, token_for):
    site_only = token_for(("site1", ["*"]))
    response = client.post(URL, json={"name": "site3"}, headers=bearer(site_only))
    assert response.status_code == 403 and response.json["missing"] == "CREATE_TENANT on *"
    value = token_for(("*", ["CREATE_TENANT"]))
    response = client.post(URL, json={"name": "site3", "label": "Site Three"}, headers=bearer(value))
    assert response.status_code == 201, response.json
    assert response.json == {"name": "site3", "label": "Site Three", "created_at": response.json["created_at"]}
    assert client.post(URL, json={"name": "site3"}, headers=bearer(value)).status_code == 409
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.created")).one()
    assert event.actor.startswith("token ") and event.actor.endswith("(crafterengine)")


@pytest.mark.parametrize("body, field", [
    ({"name": "Bad Name"}, "name"), ({"name": ""}, "name"), ({"name": "-x"}, "name"), ({}, "name"),
    ({"name": 5}, "name"), ({"name": "ok", "label": ["x"]}, "label"), ({"name": "ok", "extra": 1}, "extra"),
])
def test_create_validation_names_the_field(client, master, body, field):
    before = tenant_count()
    response = client.post(URL, json=body, headers=bearer(master))
    assert response.status_code == 422 and response.json["field"] == field
    assert tenant_count() == before


@pytest.mark.parametrize("order", ["specific-first", "star-first"])
def test_specific_entry_beats_star_whatever_the_order(client, token_for, order):
    entries = [("site1", ["READ_TENANT"]), ("*", ["READ_TENANT", "UPDATE_TENANT"])]
    if order == "star-first":
        entries.reverse()
    value = token_for(*entries)
    # site1 has its own entry (read only): UPDATE is denied there, though * would allow it
    response = client.patch(f"{URL}/site1", json={"label": "x"}, headers=bearer(value))
    assert response.status_code == 403
    assert response.json["missing"] == "UPDATE_TENANT on site1"
    assert "UPDATE_TENANT on site1" in response.json["message"]
    # site2 has none, so * governs it
    assert client.patch(f"{URL}/site2", json={"label": "x"}, headers=bearer(value)).status_code == 200


def test_specific_entry_without_the_action_denies_even_with_star_all(client, token_for):
    value = token_for(("*", ["*"]), ("site2", ["MANAGE_PROFILES"]))
    assert client.get(f"{URL}/site1", headers=bearer(value)).status_code == 200
    assert client.get(f"{URL}/site2", headers=bearer(value)).status_code == 403


def test_read_update_delete(client, token_for, site1):
    value = token_for(("*", ["READ_TENANT", "UPDATE_TENANT", "DELETE_TENANT"]))
    assert client.get(f"{URL}/site1", headers=bearer(value)).json["label"] == "Site One"
    response = client.patch(f"{URL}/site1", json={"label": "Renamed"}, headers=bearer(value))
    assert response.status_code == 200 and response.json["label"] == "Renamed"
    assert response.json["name"] == "site1"
    assert client.patch(f"{URL}/site1", json={"name": "other"}, headers=bearer(value)).status_code == 422
    assert client.patch(f"{URL}/site1", json={"label": 3}, headers=bearer(value)).json["field"] == "label"
    user = make_user(tenant=site1)
    response = client.delete(f"{URL}/site1", headers=bearer(value))
    assert response.status_code == 409 and response.json["error"] == "tenant_not_empty"
    db.session.delete(db.session.merge(user))
    db.session.commit()
    assert client.delete(f"{URL}/site1", headers=bearer(value)).status_code == 204
    assert client.get(f"{URL}/site1", headers=bearer(value)).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "tenant.deleted")) == 1


def test_wrong_tenant_permission_is_403_and_unknown_tenant_404(client, token_for):
    value = token_for(("site1", ["READ_TENANT", "DELETE_TENANT"]))
    response = client.delete(f"{URL}/site2", headers=bearer(value))
    assert response.status_code == 403 and response.json["missing"] == "DELETE_TENANT on site2"
    assert client.get(f"{URL}/site2", headers=bearer(value)).status_code == 403
    star = token_for(("*", ["READ_TENANT"]))
    assert client.get(f"{URL}/nosuch", headers=bearer(star)).json["error"] == "not_found"


def test_non_master_token_with_permissions_may_manage_tenants(client, plain):
    assert client.get(URL, headers=bearer(plain)).status_code == 200
    assert client.post(URL, json={"name": "site9"}, headers=bearer(plain)).status_code == 201


def test_token_without_permissions_gets_403(client, token_for, master):
    bare = token_for()
    assert client.get(URL, headers=bearer(bare)).status_code == 403
    assert client.get(f"{URL}/site1", headers=bearer(bare)).status_code == 403
    assert client.get(URL, headers=bearer(master)).status_code == 200
