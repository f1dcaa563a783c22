"""/api/v1/tenants/<name>/profiles: MANAGE_PROFILES on the tenant; a profile is never
visible through a tenant it is not in."""

import pytest
from sqlalchemy import func, select

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, User
from tests.api.conftest import bearer
from tests.factories import make_user

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format


def url(tenant="site1", profile_id=None):
    base = f"/api/v1/tenants/{tenant}/profiles"
    return f"{base}/{profile_id}" if profile_id is not None else base


def test_crud(client, token_for, site1):
    value = token_for(("site1", ["MANAGE_PROFILES"]))
    response = client.post(url(), json={"username": "alice", "email": "alice@example.org", "name": "Alice",
                                        "password": "a long password"}, headers=bearer(value))
    assert response.status_code == 201, response.json
    alice = response.json
    assert alice["tenant"] == "site1" and alice["has_password"] is True and "password" not in alice
    assert db.session.get(User, alice["id"]).check_password("a long password")
    response = client.post(url(), json={"username": "bob"}, headers=bearer(value))
    assert response.status_code == 201 and response.json["has_password"] is False
    assert client.get(url(profile_id=alice["id"]), headers=bearer(value)).json["email"] == "alice@example.org"
    response = client.patch(url(profile_id=alice["id"]), json={"name": "Alice A.", "active": False},
                            headers=bearer(value))
    assert response.status_code == 200 and response.json["name"] == "Alice A." and response.json["active"] is False
    response = client.patch(url(profile_id=alice["id"]), json={"password": None}, headers=bearer(value))
    assert response.json["has_password"] is False
    assert client.delete(url(profile_id=alice["id"]), headers=bearer(value)).status_code == 204
    assert client.get(url(profile_id=alice["id"]), headers=bearer(value)).status_code == 404
    assert db.session.get(User, alice["id"]) is None


@pytest.mark.both_databases  # duplicates found by SQL lower() and the unique constraint
def test_duplicate_username_409_and_bad_fields_422(client, master, site1):
    make_user(username="taken")
    response = client.post(url(), json={"username": "Taken"}, headers=bearer(master))
    assert response.status_code == 409 and response.json["field"] == "username"
    for body, field in [({"username": "x", "email": "not-an-email"}, "email"), ({"username": ""}, "username"),
                        ({"username": "x", "password": "short"}, "password"), ({"username": "x", "active": "no"},
                                                                                "active"), ({}, "username")]:
        response = client.post(url(), json=body, headers=bearer(master))
        assert response.status_code == 422 and response.json["field"] == field, body
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.both_databases  # search (LIKE) and pages in SQL
def test_paging_and_search(client, master, site1, site2):
    for i in range(5):
        make_user(username=f"user{i}", tenant=site1, name="Zed" if i == 3 else f"User {i}")
    make_user(username="zed-elsewhere", tenant=site2, name="Zed")
    page = client.get(url() + "?limit=2", headers=bearer(master)).json
    assert len(page["items"]) == 2 and page["total"] == 5 and page["next_after"]
    names = []
    after = 0
    while after is not None:
        page = client.get(url() + f"?limit=2&after={after}", headers=bearer(master)).json
        names += [p["username"] for p in page["items"]]
        after = page["next_after"]
    assert names == [f"user{i}" for i in range(5)]
    found = client.get(url() + "?q=zed", headers=bearer(master)).json
    assert [p["username"] for p in found["items"]] == ["user3"] and found["total"] == 1
    assert client.get(url() + "?q=%25", headers=bearer(master)).json["total"] == 0  # LIKE wildcards are literal


def test_profile_of_another_tenant_is_404_through_this_tenant(client, token_for, site1, site2):
    other = make_user(tenant=site2)
    value = token_for(("*", ["MANAGE_PROFILES"]))
    response = client.get(url("site1", other.id), headers=bearer(value))
    assert response.status_code == 404
    assert other.username not in response.get_data(as_text=True)
    assert client.patch(url("site1", other.id), json={"name": "x"}, headers=bearer(value)).status_code == 404
    assert client.delete(url("site1", other.id), headers=bearer(value)).status_code == 404
    assert db.session.get(User, other.id).name != "x"
    assert client.get(url("site2", other.id), headers=bearer(value)).status_code == 200


def test_wrong_tenant_permission_is_403_naming_it(client, token_for, site2):
    make_user(tenant=site2)
    value = token_for(("site1", ["MANAGE_PROFILES"]))
    response = client.get(url("site2"), headers=bearer(value))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="insufficient_scope"'
    assert response.json["missing"] == "MANAGE_PROFILES on site2"
    assert "MANAGE_PROFILES on site2" in response.json["message"]
    assert "items" not in response.json
    response = client.post(url("site2"), json={"username": "mallory"}, headers=bearer(value))
    assert response.status_code == 403
    assert db.session.scalar(select(User).where(User.username == "mallory")) is None


def test_specific_entry_beats_star_for_profiles(client, token_for, site1):
    for entries in ([("site1", ["READ_TENANT"]), ("*", ["MANAGE_PROFILES"])],
                    [("*", ["MANAGE_PROFILES"]), ("site1", ["READ_TENANT"])]):
        value = token_for(*entries)
        assert client.get(url("site1"), headers=bearer(value)).status_code == 403
        assert client.get(url("site2"), headers=bearer(value)).status_code == 200


def test_deleting_a_profile_ends_its_tokens(client, master, site1, application):
    user = make_user(tenant=site1)
    session_id = tokens.create_session_token(user).token.id
    assert client.delete(url(profile_id=user.id), headers=bearer(master)).status_code == 204
    db.session.expire_all()
    assert db.session.get(AccessToken, session_id) is None


def test_unknown_tenant_is_404(client, master):
    assert client.get(url("nosuch"), headers=bearer(master)).status_code == 404
    assert client.post(url("nosuch"), json={"username": "x"}, headers=bearer(master)).status_code == 404
