"""Master tokens (issue 22 point 10, issue 24 point 3): a token that grants no tenant action
is reached only by master tokens of its own application and by `*`/`*` master tokens, in
the JSON API and in Crafter's access-token API alike; and every door (the API, Crafter's
API, the admin form, the CLI) takes permission entries by the token core's one rule."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken
from tests.api.conftest import bearer
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant, make_token

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

API = "/api/v1/access-tokens"
CRAFTER = "/crafter-profile/api/1/access_token"
SECRET = "geoserver-secret-0123456789"


@pytest.fixture
def world(app, client):
    """crafterengine's narrow master (site1=READ_TENANT), GeoServer's service token (from
    client_credentials), an admin-made token of another application with no permissions,
    and one of crafterengine's own with none."""
    make_tenant("site1")
    engine = make_application("crafterengine")
    geoserver = make_application("geoserver", client_id="geoserver", client_secret=SECRET,
                                 grant_types=["client_credentials"], scope="read")
    issued = client.post("/token", data={"grant_type": "client_credentials", "scope": "read"},
                         auth=("geoserver", SECRET))
    assert issued.status_code == 200, issued.get_json()
    return {
        "narrow": make_token(engine, master=True, tenant_permissions=[{"tenant": "site1",
                                                                        "actions": ["READ_TENANT"]}]).value,
        "service": issued.get_json()["access_token"],
        "others": make_token(geoserver).value,
        "own": make_token(engine).value,
        "full_elsewhere": make_token(geoserver, master=True,
                                     tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value,
        "star_read_elsewhere": make_token(geoserver, master=True,
                                          tenant_permissions=[{"tenant": "*", "actions": ["READ_TENANT"]}]).value,
    }


def token_id(value: str) -> int:
    return tokens.find_by_value(value).id


def listed(client, caller: str) -> set[int]:
    response = client.get(f"{API}?limit=100", headers=bearer(caller))
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["items"]}


def test_a_tenant_master_does_not_reach_other_applications_tokens_without_permissions(client, world):
    narrow = world["narrow"]
    assert token_id(world["own"]) in listed(client, narrow)
    for hidden in ("service", "others"):
        assert token_id(world[hidden]) not in listed(client, narrow), hidden
        url = f"{API}/{token_id(world[hidden])}"
        assert client.get(url, headers=bearer(narrow)).status_code == 404
        response = client.delete(url, headers=bearer(narrow))
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
        assert tokens.find_by_value(world[hidden]).revoked_at is None
    # a master token with some `*` permissions, but not all, of the other application still reaches them
    star_read = listed(client, world["star_read_elsewhere"])
    assert {token_id(world["service"]), token_id(world["others"])} <= star_read
    assert token_id(world["own"]) not in star_read


def test_a_star_star_master_reaches_every_application(client, world):
    full = listed(client, world["full_elsewhere"])
    assert {token_id(world[name]) for name in ("service", "others", "own", "narrow")} <= full
    response = client.delete(f"{API}/{token_id(world['own'])}", headers=bearer(world["full_elsewhere"]))
    assert response.status_code == 204


def test_crafters_api_keeps_the_same_reach(client, world):
    narrow = world["narrow"]
    everything = client.get(f"{CRAFTER}/all?accessTokenId={narrow}").get_json()
    without_permissions = [entry["application"] for entry in everything if not entry["tenantPermissions"]]
    assert without_permissions == ["crafterengine"]
    for response in (client.get(f"{CRAFTER}/{world['others']}?accessTokenId={narrow}"),
                     client.post(f"{CRAFTER}/{world['others']}/delete?accessTokenId={narrow}")):
        assert response.status_code == 403 and response.get_json()["errorCode"] == "ACTION_DENIED"
    assert tokens.find_by_value(world["others"]).revoked_at is None
    assert client.get(f"{CRAFTER}/{world['own']}?accessTokenId={narrow}").get_json()["application"] == "crafterengine"


# --- one rule for permission entries ------------------------------------------------------

def token_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken))


@pytest.fixture
def master(app):
    make_tenant("site1")
    make_application("crafterengine")
    return make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value


ENTRY_WITHOUT_ACTIONS = "needs at least one action"


def test_an_entry_without_actions_is_refused_by_every_door(app, client, admin_client, master):
    before = token_count()
    response = client.post(API, headers=bearer(master), json={
        "application": "crafterengine", "tenant_permissions": [{"tenant": "site1", "actions": []}]})
    assert response.status_code == 422 and response.get_json()["field"] == "tenant_permissions[0].actions"

    response = client.post(f"{CRAFTER}/create?accessTokenId={master}", json={
        "application": "crafterengine", "tenantPermissions": [{"tenant": "site1", "allowedActions": []}]})
    assert response.status_code == 400 and ENTRY_WITHOUT_ACTIONS in response.get_json()["message"]
    assert "tenantPermissions[0].allowedActions" in response.get_json()["message"]

    page = admin_client.get("/admin/tokens/new").get_data(as_text=True)
    application_id = db.session.scalar(select(AccessToken.application_id).limit(1))
    response = admin_client.post("/admin/tokens/new", data={
        "csrf_token": csrf_token_from(page), "application": str(application_id), "value": "", "user": "",
        "scope": "", "expires_at": (clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "perm-0-tenant": "site1", "save": "1"})
    assert response.status_code == 422 and ENTRY_WITHOUT_ACTIONS in response.get_data(as_text=True)

    result = app.test_cli_runner().invoke(args=["create-token", "--application", "crafterengine",
                                                "--tenant", "site1="])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and ENTRY_WITHOUT_ACTIONS in result.output
    assert "--tenant: 'site1=':" in result.output
    assert token_count() == before


def test_more_than_a_hundred_entries_are_refused_by_every_door(app, client, master):
    before = token_count()
    entries = [{"tenant": f"t{i}", "actions": ["READ_TENANT"]} for i in range(101)]
    response = client.post(API, headers=bearer(master), json={"application": "crafterengine",
                                                               "tenant_permissions": entries})
    assert response.status_code == 422 and response.get_json()["field"] == "tenant_permissions"
    response = client.post(f"{CRAFTER}/create?accessTokenId={master}", json={
        "application": "crafterengine",
        "tenantPermissions": [{"tenant": e["tenant"], "allowedActions": e["actions"]} for e in entries]})
    assert response.status_code == 400 and "at most 100" in response.get_json()["message"]
    arguments = ["create-token", "--application", "crafterengine"]
    for entry in entries:
        arguments += ["--tenant", f"{entry['tenant']}=READ_TENANT"]
    result = app.test_cli_runner().invoke(args=arguments)
    assert result.exit_code != 0 and "at most 100" in result.output and "Traceback" not in result.output
    assert token_count() == before
