"""Authorization boundaries of the JSON API (issue 13): no token reaches past what it
holds, no tenant token reaches an administrator, and bad input is a clear JSON error."""

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, User
from portal.tokens import permissions as perms
from portal.tokens.core import MAX_EXPIRES_IN
from tests.api.conftest import application, bearer, master, site1, site2, token_for  # noqa: F401 (fixtures)
from tests.conftest import Auth
from tests.factories import make_tenant, make_token, make_user

TOKENS = "/api/v1/access-tokens"


def profiles(tenant="site1", profile_id=None) -> str:
    base = f"/api/v1/tenants/{tenant}/profiles"
    return base if profile_id is None else f"{base}/{profile_id}"


def logged_in(app, username: str, home: str = "/"):
    """A browser (test client) logged in as `username`, checked to be logged in."""
    browser = app.test_client()
    assert Auth(browser).login(username).status_code == 303
    assert browser.get(home).status_code == 200
    return browser


def logged_out(browser, path="/") -> bool:
    response = browser.get(path)
    return response.status_code in (302, 303) and "/login" in response.headers["Location"]


def listed_ids(client, value: str, limit: int = 100) -> list[int]:
    """Every token id the list shows, following next_after to the end."""
    ids, after = [], 0
    while after is not None:
        page = client.get(f"{TOKENS}?limit={limit}&after={after}", headers=bearer(value))
        assert page.status_code == 200, page.json
        ids += [item["id"] for item in page.json["items"]]
        after = page.json["next_after"]
    return ids


def token_id(value: str) -> int:
    return tokens.find_by_value(value).id


# --- 1. administrators are out of reach of the tenant API ---------------------------------

def test_an_administrator_in_a_tenant_is_no_profile_of_it(app, client, token_for, site1):
    """An old admin row with a tenant: never listed, 404 on read, change and delete."""
    admin = make_user("boss", is_admin=True, tenant=site1)
    alice = make_user("alice", tenant=site1)
    value = token_for(("site1", ["MANAGE_PROFILES"]))
    page = client.get(profiles(), headers=bearer(value)).json
    assert [p["username"] for p in page["items"]] == ["alice"] and page["total"] == 1
    found = client.get(profiles() + "?q=boss", headers=bearer(value)).json
    assert found["items"] == [] and found["total"] == 0
    assert client.get(profiles(profile_id=admin.id), headers=bearer(value)).status_code == 404
    for change in ({"password": "taken over!!"}, {"email": "mallory@example.org"}, {"active": False}):
        response = client.patch(profiles(profile_id=admin.id), json=change, headers=bearer(value))
        assert response.status_code == 404 and response.json["error"] == "not_found", change
    assert client.delete(profiles(profile_id=admin.id), headers=bearer(value)).status_code == 404
    db.session.expire_all()
    boss = db.session.get(User, admin.id)
    assert boss.check_password("correct horse battery") and boss.email == "boss@example.org" and boss.active
    assert client.get(profiles(profile_id=alice.id), headers=bearer(value)).status_code == 200


def test_ending_a_tenants_sessions_leaves_its_old_admin_row_logged_in(app, client, token_for, site1):
    make_user("boss", is_admin=True, tenant=site1)
    boss = logged_in(app, "boss", home="/admin")
    value = token_for(("site1", ["MANAGE_TICKETS"]))
    assert client.get("/api/v1/tenants/site1/sessions", headers=bearer(value)).json["items"] == []
    assert client.delete("/api/v1/tenants/site1/sessions", headers=bearer(value)).json == {"ended": 0}
    assert boss.get("/admin").status_code == 200


# --- 2. master tokens reach only what they hold --------------------------------------------

def test_a_narrow_master_sees_and_deletes_only_tokens_within_its_permissions(app, client, token_for, site1,
                                                                             site2):
    narrow = token_for(("site1", ["READ_TENANT", "MANAGE_PROFILES"]), master=True)
    full_master = token_for(("*", ["*"]), master=True)
    site2_token = token_for(("site2", ["READ_TENANT"]))
    star_read = token_for(("*", ["READ_TENANT"]))
    within = [token_for(("site1", ["READ_TENANT"])), token_for(), narrow]
    assert sorted(listed_ids(client, narrow)) == sorted(token_id(v) for v in within)
    for value in (full_master, site2_token, star_read):
        assert client.get(f"{TOKENS}/{token_id(value)}", headers=bearer(narrow)).status_code == 404
        response = client.delete(f"{TOKENS}/{token_id(value)}", headers=bearer(narrow))
        assert response.status_code == 404 and response.json["error"] == "not_found"
        assert tokens.find_by_value(value) is not None
    assert client.get(f"{TOKENS}/{token_id(within[0])}", headers=bearer(narrow)).status_code == 200
    assert client.delete(f"{TOKENS}/{token_id(within[0])}", headers=bearer(narrow)).status_code == 204


def test_login_sessions_and_administrators_tokens_are_invisible_even_to_a_full_master(app, client, master,
                                                                                       application, site1):
    make_user("root", is_admin=True)
    root = logged_in(app, "root", home="/admin")
    carol = make_user("carol", tenant=site1)
    carol_browser = logged_in(app, "carol")
    session_ids = list(db.session.scalars(select(AccessToken.id).where(AccessToken.source == "session")))
    assert len(session_ids) == 2
    admin_token = make_token(application, user=db.session.scalar(select(User).where(User.username == "root")))
    carol_token = make_token(application, user=carol)
    hidden = session_ids + [admin_token.token.id]
    listed = listed_ids(client, master)
    assert carol_token.token.id in listed and not set(hidden) & set(listed)
    for hidden_id in hidden:
        assert client.get(f"{TOKENS}/{hidden_id}", headers=bearer(master)).status_code == 404
        assert client.delete(f"{TOKENS}/{hidden_id}", headers=bearer(master)).status_code == 404
    assert root.get("/admin").status_code == 200 and carol_browser.get("/").status_code == 200
    assert tokens.find_by_value(admin_token.value) is not None


def test_a_users_token_is_visible_only_with_manage_profiles_on_the_users_tenant(client, token_for, application,
                                                                                site1, site2):
    alice, bob, nomad = make_user("alice", tenant=site1), make_user("bob", tenant=site2), make_user("nomad")
    for_alice, for_bob, for_nomad = (make_token(application, user=u).token.id for u in (alice, bob, nomad))
    site1_manager = token_for(("site1", ["MANAGE_PROFILES"]), master=True)
    star_manager = token_for(("*", ["MANAGE_PROFILES"]), ("site2", ["READ_TENANT"]), master=True)
    no_profiles = token_for(("*", ["READ_TENANT"]), master=True)
    assert {for_alice, for_bob, for_nomad} & set(listed_ids(client, site1_manager)) == {for_alice}
    assert {for_alice, for_bob, for_nomad} & set(listed_ids(client, star_manager)) == {for_alice, for_nomad}
    assert {for_alice, for_bob, for_nomad} & set(listed_ids(client, no_profiles)) == set()
    assert client.get(f"{TOKENS}/{for_bob}", headers=bearer(star_manager)).status_code == 404
    assert client.get(f"{TOKENS}/{for_nomad}", headers=bearer(star_manager)).status_code == 200


@pytest.mark.parametrize("caller, username, status, missing", [
    ([("*", ["*"])], "root", 422, None),                             # an administrator: never
    ([], "root", 422, None),
    ([], "nomad", 403, "MANAGE_PROFILES on *"),                      # no tenant: the * entry decides
    ([("site1", ["MANAGE_PROFILES"])], "bob", 403, "MANAGE_PROFILES on site2"),
    ([("*", ["MANAGE_PROFILES"]), ("site2", ["READ_TENANT"])], "bob", 403, "MANAGE_PROFILES on site2"),
    ([("site2", ["MANAGE_PROFILES"])], "bob", 201, None),
])
def test_binding_a_new_token_to_a_user_needs_manage_profiles_there(client, token_for, site1, site2, caller,
                                                                   username, status, missing):
    make_user("root", is_admin=True)
    make_user("bob", tenant=site2)
    make_user("nomad")
    value = token_for(*caller, master=True)
    before = db.session.scalar(select(db.func.count()).select_from(AccessToken))
    response = client.post(TOKENS, headers=bearer(value), json={
        "application": "crafterengine", "user": username, "scope": "openid profile email"})
    assert response.status_code == status, response.json
    if status == 201:
        assert response.json["user"] == username
        return
    assert db.session.scalar(select(db.func.count()).select_from(AccessToken)) == before
    if status == 403:
        assert response.json["error"] == "insufficient_scope" and response.json["missing"] == missing
    else:
        assert response.json["field"] == "user" and "administrator" in response.json["message"]


@pytest.mark.both_databases  # keyset pages in SQL
def test_listing_pages_stay_full_and_lead_to_the_end(client, token_for, site1, site2):
    narrow = token_for(("site1", ["READ_TENANT"]), master=True)
    expected = [token_id(narrow)]
    for _ in range(4):  # visible and invisible tokens interleaved
        expected.append(token_id(token_for(("site1", ["READ_TENANT"]))))
        token_for(("site2", ["READ_TENANT"]))
        token_for(("*", ["READ_TENANT"]))
    pages, after = [], 0
    while after is not None:
        page = client.get(f"{TOKENS}?limit=2&after={after}", headers=bearer(narrow)).json
        pages.append([item["id"] for item in page["items"]])
        after = page["next_after"]
    assert [i for page in pages for i in page] == sorted(expected)
    assert all(len(page) == 2 for page in pages[:-1]) and len(pages[-1]) >= 1


PERMISSION_OPTIONS = [None, ["READ_TENANT"], ["READ_TENANT", "MANAGE_PROFILES"], ["CREATE_TENANT", "MANAGE_PROFILES"],
                      list(perms.TENANT_ACTIONS), list(perms.ACTIONS), ["*"]]


def permission_sets() -> list[list[perms.Permission]]:
    """Every combination of an entry (or none) for *, site1 and site2."""
    sets = []
    for choice in itertools.product(PERMISSION_OPTIONS, repeat=3):
        sets.append(perms.normalize([{"tenant": tenant, "actions": actions}
                                     for tenant, actions in zip(("*", "site1", "site2"), choice) if actions]))
    return sets


@pytest.mark.both_databases  # the permission rule as SQL
def test_the_sql_rule_for_lists_says_what_beyond_says(app, application, site1, site2):
    """within_clause (lists) and beyond (create) agree on every pair of permission sets."""
    sets = permission_sets()
    ids = [make_token(application, tenant_permissions=granted).id for granted in sets]
    for held in sets:
        within = set(db.session.scalars(select(AccessToken.id).where(perms.within_clause(held))))
        expected = {i for i, granted in zip(ids, sets) if perms.beyond(held, granted) is None}
        assert within == expected, held


@pytest.mark.parametrize("held, granted, missing", [
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("*", ["*"])], "UPDATE_TENANT on site1"),
    ([("*", ["*"]), ("site1", ["READ_TENANT"])], [("*", ["CREATE_TENANT"])], None),  # global: * only
    ([("site1", ["*"])], [("site1", ["CREATE_TENANT"])], None),  # grants nothing: CREATE_TENANT is global
    ([("*", ["READ_TENANT"]), ("site2", ["MANAGE_PROFILES"])], [("*", ["READ_TENANT"])], "READ_TENANT on site2"),
    ([("site1", list(perms.TENANT_ACTIONS))], [("site1", ["*"])], None),
])
def test_beyond_reads_both_sides_by_the_resolution_rule(held, granted, missing):
    def entries(pairs):
        return perms.normalize([{"tenant": t, "actions": a} for t, a in pairs])

    assert perms.beyond(entries(held), entries(granted)) == missing


# --- 3. ending a tenant's sessions logs its users out, with or without session tokens ------

class TestEndingATenantsSessions:
    @pytest.fixture(params=[True, False], ids=["session-tokens", "session-version-only"])
    def app_config(self, request):
        return {"SESSION_EXPIRED_CONTROL_ENABLED": request.param}

    def test_every_user_of_the_tenant_is_logged_out(self, app, client, token_for, site1, site2):
        make_user("carol", tenant=site1)
        make_user("dave", tenant=site1)
        make_user("erin", tenant=site2)
        carol, dave, erin = (logged_in(app, name) for name in ("carol", "dave", "erin"))
        value = token_for(("site1", ["MANAGE_TICKETS"]))
        response = client.delete("/api/v1/tenants/site1/sessions", headers=bearer(value))
        assert response.status_code == 200 and response.json == {"ended": 2}  # users logged out
        assert logged_out(carol) and logged_out(dave)
        assert erin.get("/").status_code == 200
        assert Auth(carol).login("carol").status_code == 303  # ended, not locked


# --- 4. the tenant list leaves out tenants the token may not read -------------------------

@pytest.mark.parametrize("entries", [
    [("*", ["READ_TENANT"]), ("site2", ["MANAGE_PROFILES"])],
    [("site2", ["MANAGE_PROFILES"]), ("*", ["READ_TENANT"])],
])
def test_list_of_tenants_leaves_out_a_tenant_whose_own_entry_denies_read(client, token_for, site1, site2, entries):
    make_tenant("site3")
    value = token_for(*entries)
    page = client.get("/api/v1/tenants", headers=bearer(value)).json
    assert [t["name"] for t in page["items"]] == ["site1", "site3"] and page["total"] == 2
    assert client.get("/api/v1/tenants/site2", headers=bearer(value)).status_code == 403


# --- 5. one username rule --------------------------------------------------------------------

@pytest.mark.parametrize("username, status", [
    ("\u0430dmin", 422),        # Cyrillic а
    ("ad\u200bmin", 422),       # zero-width space
    ("\ufeffadmin", 422),       # byte-order mark
    ("admin\u202e", 422),       # right-to-left override
    ("al ice", 422),
    ("ａｄｍｉｎ", 409),           # full-width: NFKC makes it admin, which is taken
    ("ADMIN", 409),
])
def test_profiles_refuse_usernames_that_render_like_others(client, master, site1, username, status):
    make_user("admin", is_admin=True)
    before = db.session.scalar(select(db.func.count()).select_from(User))
    response = client.post(profiles(), json={"username": username}, headers=bearer(master))
    assert response.status_code == status, response.json
    assert response.json["field"] == "username"
    assert db.session.scalar(select(db.func.count()).select_from(User)) == before


def test_a_profile_username_is_stored_nfkc_normalised(client, master, site1):
    response = client.post(profiles(), json={"username": "ａｌｉｃｅ"}, headers=bearer(master))
    assert response.status_code == 201 and response.json["username"] == "alice"


# --- 6. deeply nested JSON ---------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("post", TOKENS), ("post", "/api/v1/tenants/site1/profiles"), ("patch", "/api/v1/tenants/site1"),
])
def test_json_nested_too_deep_is_400_malformed_json(client, master, site1, method, path):
    body = '{"label": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = getattr(client, method)(path, data=body, content_type="application/json", headers=bearer(master))
    assert response.status_code == 400 and response.json["error"] == "malformed_json"


# --- 7. out-of-range ids and expiries -------------------------------------------------------

@pytest.mark.both_databases  # PostgreSQL refuses integers past its columns' range
@pytest.mark.parametrize("method, path, status", [
    ("get", f"{TOKENS}/99999999999999999999", 404),
    ("delete", f"{TOKENS}/99999999999999999999", 404),
    ("delete", f"{TOKENS}/0", 404),
    ("patch", f"{TOKENS}/99999999999999999999", 405),  # tokens are immutable, whatever the id
    ("get", "/api/v1/tenants/site1/profiles/99999999999999999999", 404),
    ("patch", "/api/v1/tenants/site1/profiles/99999999999999999999", 404),
    ("delete", "/api/v1/tenants/site1/profiles/99999999999999999999", 404),
    ("delete", "/api/v1/tenants/site1/profiles/2147483648", 404),
])
def test_out_of_range_ids_answer_like_missing_ones(client, master, site1, method, path, status):
    response = getattr(client, method)(path, json={"name": "x"} if method == "patch" else None,
                                       headers=bearer(master))
    assert response.status_code == status
    assert response.is_json and response.json["error"] == ("not_found" if status == 404 else "method_not_allowed")


def test_expires_at_has_the_same_ten_year_cap_as_expires_in(client, master):
    far = clock.now().replace(microsecond=0) + timedelta(seconds=MAX_EXPIRES_IN + 60)
    response = client.post(TOKENS, headers=bearer(master), json={
        "application": "crafterengine", "expires_at": far.isoformat() + "Z"})
    assert response.status_code == 422 and response.json["field"] == "expires_at"
    assert "ten years" in response.json["message"]
    near = far - timedelta(days=2)
    response = client.post(TOKENS, headers=bearer(master), json={
        "application": "crafterengine", "expires_at": near.isoformat() + "Z"})
    assert response.status_code == 201, response.json
