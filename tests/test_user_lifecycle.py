"""portal.domain.users is a user's one home (issue: users get one home): the admin portal, the
API, the CLI and login find a user by name with login's rule (any letter case), record
the same `user.created` event, and a deactivation, wherever it is made, ends every
session of the user."""

import pytest
from sqlalchemy import func, select

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent, User
from tests.api.conftest import bearer
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant, make_token, make_user

PASSWORD = "correct horse battery"


@pytest.fixture
def site1(app):
    return make_tenant("site1")


@pytest.fixture
def master(site1) -> str:
    return make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value


def logged_in(app, username: str):
    """A browser of its own, logged in as `username`."""
    browser = app.test_client()
    csrf = csrf_token_from(browser.get("/login").get_data(as_text=True))
    response = browser.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert browser.get("/").status_code == 200
    return browser


def session_tokens(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken).where(
        AccessToken.user_id == user.id, AccessToken.source == "session"))


# --- a username in another letter case ------------------------------------------------------

def test_the_api_binds_a_token_to_a_username_in_any_letter_case(app, client, master, site1):
    alice = make_user("alice", tenant=site1)
    make_application("crm")
    logged_in(app, "ALICE")  # as login accepts it
    response = client.post("/api/v1/access-tokens", headers=bearer(master),
                           json={"application": "crm", "user": "ALICE"})
    assert response.status_code == 201, response.json
    assert response.json["user"] == "alice"
    assert tokens.find_by_value(response.json["value"]).user_id == alice.id


def test_the_cli_takes_a_username_in_any_letter_case(app, runner, site1):
    alice = make_user("alice", tenant=site1)
    make_application("crm")
    result = runner.invoke(args=["create-token", "--application", "crm", "--user", "ALICE"])
    assert result.exit_code == 0, result.output
    assert tokens.find_by_value(result.output.strip()).user_id == alice.id
    result = runner.invoke(args=["set-password", "Alice"], input="a brand new password\n")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(User, alice.id).check_password("a brand new password")


# --- one user.created event, whichever door ------------------------------------------------

def test_every_door_records_the_same_user_created_event(app, admin_client, master, site1):
    csrf = csrf_token_from(admin_client.get("/admin/users/new").get_data(as_text=True))
    assert admin_client.post("/admin/users/new", data={
        "csrf_token": csrf, "username": "from-portal", "email": "p@example.org", "password": PASSWORD,
        "tenant": "site1"}).status_code == 303
    assert app.test_client().post("/api/v1/tenants/site1/profiles", headers=bearer(master), json={
        "username": "from-api", "email": "a@example.org", "password": PASSWORD}).status_code == 201
    result = app.test_cli_runner().invoke(args=["create-user", "from-cli", "--email", "c@example.org", "--tenant",
                                                "site1", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).all()
    by_user = {event.target_label: event for event in events}
    assert len(events) == 3 and sorted(by_user) == ["from-api", "from-cli", "from-portal"]
    for username, event in by_user.items():
        user = db.session.scalar(select(User).where(User.username == username))
        assert event.target_id == str(user.id)
        assert event.details == {"sub": user.sub, "tenant": "site1"}
    assert by_user["from-portal"].actor == "admin" and by_user["from-cli"].actor == "cli"
    assert by_user["from-api"].actor.startswith("token ")


# --- deactivation ends every session -------------------------------------------------------

def in_the_edit_form(app, admin_client, master, user):
    path = f"/admin/users/{user.id}/edit"
    csrf = csrf_token_from(admin_client.get(path).get_data(as_text=True))
    response = admin_client.post(path, data={"csrf_token": csrf, "email": user.email, "name": user.name,
                                             "tenant": user.tenant.name})  # "active" left unticked
    assert response.status_code == 303, response.get_data(as_text=True)


def with_the_deactivate_button(app, admin_client, master, user):
    path = f"/admin/users/{user.id}"
    csrf = csrf_token_from(admin_client.get(path).get_data(as_text=True))
    assert admin_client.post(path + "/deactivate", data={"csrf_token": csrf}).status_code == 303


def through_the_api(app, admin_client, master, user):
    response = app.test_client().patch(f"/api/v1/tenants/site1/profiles/{user.id}", headers=bearer(master),
                                       json={"active": False})
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("deactivate", [in_the_edit_form, with_the_deactivate_button, through_the_api])
def test_deactivating_ends_every_session_of_the_user(app, admin_client, master, site1, deactivate):
    alice = make_user("alice", tenant=site1)
    browsers = [logged_in(app, "alice"), logged_in(app, "Alice")]
    assert session_tokens(alice) == 2
    deactivate(app, admin_client, master, alice)
    db.session.expire_all()
    alice = db.session.get(User, alice.id)
    assert not alice.active
    # Their session tokens go too: kept, they would be listed as live sessions again on reactivation.
    assert session_tokens(alice) == 0
    alice.active = True
    db.session.commit()
    assert [browser.get("/").status_code for browser in browsers] == [302, 302]  # the cookies are worthless
    assert admin_client.get("/admin").status_code == 200  # the admin's own session goes on
