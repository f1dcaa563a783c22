"""The same username, password and tenant name are accepted or refused alike by the
portal, the API and the CLI (issue 14: one home per rule: portal/domain/users.py, portal/domain/tenants.py)."""

import pytest
from tests.api.conftest import bearer
from tests.conftest import csrf_token_from
from tests.factories import make_tenant, make_token

PASSWORDS = [("seven77", False), ("eight888", True), ("x" * 1000, True), ("x" * 1001, False)]
USERNAMES = [("carol", True), ("carol.o'neil", False), ("саrol", False), ("car\u200bol", False),
             ("ｃａｒｏｌ２", True), ("a" * 151, False)]
TENANTS = [("site-9", True), ("Site9", False), ("*", False), ("a" * 65, False), ("_x", False)]


@pytest.fixture
def master(app):
    make_tenant("site1")
    return make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value


def via_portal(admin_client, username, password) -> bool:
    token = csrf_token_from(admin_client.get("/admin/users/new").get_data(as_text=True))
    response = admin_client.post("/admin/users/new", data={
        "csrf_token": token, "username": username, "email": "x@example.org", "password": password, "tenant": ""})
    return response.status_code == 303


def via_api(client, master, username, password) -> bool:
    response = client.post("/api/v1/tenants/site1/profiles", headers=bearer(master),
                           json={"username": username, "email": "x@example.org", "password": password})
    assert response.status_code in (201, 409, 422), response.get_data(as_text=True)
    return response.status_code == 201


def via_cli(app, username, password) -> bool:
    result = app.test_cli_runner().invoke(args=["create-user", username, "--email", "x@example.org",
                                                "--password-stdin"], input=password + "\n")
    return result.exit_code == 0


@pytest.mark.parametrize("password, accepted", PASSWORDS)
def test_passwords(app, admin_client, client, master, password, accepted):
    assert via_portal(admin_client, "p-portal", password) is accepted
    assert via_api(client, master, "p-api", password) is accepted
    assert via_cli(app, "p-cli", password) is accepted


@pytest.mark.parametrize("username, accepted", USERNAMES)
def test_usernames(app, admin_client, client, master, username, accepted):
    """Each door gets its own variant of the name (a suffix keeps it valid or invalid)."""
    password = "a long password"
    assert via_portal(admin_client, username, password) is accepted
    assert via_api(client, master, username + "2", password) is accepted
    assert via_cli(app, username + "3", password) is accepted
    if accepted:  # taken everywhere, normalised and whatever the case
        assert via_cli(app, (username + "2").upper(), password) is False
        assert via_api(client, master, username + "3", password) is False


@pytest.mark.parametrize("name, accepted", TENANTS)
def test_tenant_names(app, admin_client, client, master, name, accepted):
    token = csrf_token_from(admin_client.get("/admin/tenants").get_data(as_text=True))
    portal = admin_client.post("/admin/tenants", data={"csrf_token": token, "name": name})
    assert (portal.status_code == 303) is accepted
    api = client.post("/api/v1/tenants", headers=bearer(master), json={"name": name + "a"})
    assert api.status_code in (201, 422) and (api.status_code == 201) is accepted
    cli = app.test_cli_runner().invoke(args=["create-tenant", name + "b"])
    assert (cli.exit_code == 0) is accepted
    if accepted:
        assert app.test_cli_runner().invoke(args=["create-tenant", name]).exit_code != 0  # taken


def test_a_tenant_that_tokens_grant_on_is_not_deleted_by_the_portal_or_the_api(app, admin_client, client, master):
    """A tenant made later with the same name would inherit the grants (issue 16)."""
    from portal.models import Tenant
    from portal.extensions import db

    doomed = make_tenant("doomed")
    make_token(tenant_permissions=[{"tenant": "doomed", "actions": ["READ_TENANT"]}])
    refused = client.delete("/api/v1/tenants/doomed", headers=bearer(master))
    assert refused.status_code == 409 and refused.get_json()["error"] == "tenant_not_empty"
    assert "1 token grants permissions on tenant doomed" in refused.get_json()["message"]
    path = f"/admin/tenants/{doomed.id}/delete"
    token = csrf_token_from(admin_client.get(path).get_data(as_text=True))
    page = admin_client.post(path, data={"csrf_token": token}, follow_redirects=True)
    assert "1 token grants permissions on tenant doomed" in page.get_data(as_text=True)
    assert db.session.scalar(db.select(Tenant.id).where(Tenant.name == "doomed")) is not None


APPLICATION_NAMES = [("Map viewer", True), ("Карты: 2 ✓", True), ("Map \u202eweiv", False),
                     ("Map\u200bviewer", False), ("Map\tviewer", False), ("Map \u3164", False), ("x" * 101, False)]


@pytest.mark.parametrize("name, accepted", APPLICATION_NAMES)
def test_application_names(app, admin_client, tmp_path, name, accepted):
    """Consent pages show an application's name: the portal (new and edit), the CLI and the
    importers refuse one with control, bidirectional or invisible characters alike
    (portal/domain/applications.py: check_name; issue 22)."""
    import json

    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import Application
    from tests.factories import make_application

    def form(path: str, suffix: str) -> dict:
        return {"csrf_token": csrf_token_from(admin_client.get(path).get_data(as_text=True)), "name": name + suffix,
                "client_type": "confidential", "redirect_uris": "", "grant_types": ["client_credentials"],
                "scope": "api", "token_endpoint_auth_method": "", "client_id": "", "description": ""}

    assert (admin_client.post("/admin/applications/new", data=form("/admin/applications/new", "1")).status_code
            == 303) is accepted
    edited = make_application(name="plain")
    edit = f"/admin/applications/{edited.id}/edit"
    assert (admin_client.post(edit, data=form(edit, "2")).status_code == 303) is accepted
    assert (app.test_cli_runner().invoke(args=["create-application", name + "3"]).exit_code == 0) is accepted
    export = tmp_path / "accessToken.json"
    export.write_text(json.dumps({"_id": "a-crafter-token-value-0001", "application": name + "4"}))
    assert app.test_cli_runner().invoke(args=["import", "crafter", str(export), "--apply"]).exit_code == 0
    names = set(db.session.scalars(select(Application.name)))
    assert all((name + suffix in names) is accepted for suffix in "1234")
