"""Token pages over HTTP: create, show once, list, search, filter, extend, replace, delete."""

import re
from datetime import timedelta

import pytest
from werkzeug.datastructures import MultiDict

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken
from tests.admin.conftest import audit_count, token_count
from tests.factories import make_token, make_user


def future(days=3) -> str:
    return (clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def create_data(setup, csrf_value, **overrides) -> MultiDict:
    data = MultiDict({
        "csrf_token": csrf_value,
        "value": "",
        "application": str(setup["app"].id),
        "user": "",
        "scope": "",
        "expires_at": future(),
        "perm-0-tenant": "site1",
        "save": "1",
    })
    data.setlist("perm-0-actions", ["READ_TENANT", "MANAGE_PROFILES"])
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, list):
            data.setlist(key, value)
        else:
            data[key] = value
    return data


def test_create_shows_value_once_not_cached(admin_client, setup, csrf):
    user = make_user("carol", email="carol@example.org")
    data = create_data(setup, csrf(), user="carol@example.org", master="y", scope="read write",
                       **{"perm-1-tenant": "*", "perm-1-actions": ["*"]})
    response = admin_client.post("/admin/tokens/new", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)  # post/redirect/get
    shown = admin_client.get(response.headers["Location"])
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    html = shown.get_data(as_text=True)
    value = html.split('id="token-value" type="text" readonly value="')[1].split('"')[0]
    assert value not in admin_client.get(response.headers["Location"]).get_data(as_text=True)  # once
    token = tokens.find_by_value(value)
    assert token.user_id == user.id and token.master and token.scope == "read write"
    assert token.tenant_permissions == [{"tenant": "site1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]},
                                        {"tenant": "*", "actions": ["*"]}]
    detail = admin_client.get(f"/admin/tokens/{token.id}").get_data(as_text=True)
    assert value not in detail and token.hint in detail
    assert value not in admin_client.get("/admin/tokens").get_data(as_text=True)


def test_custom_value(admin_client, setup, csrf):
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), value="legacy-value-0123456789"))
    assert response.status_code == 303
    assert tokens.find_by_value("legacy-value-0123456789") is not None


@pytest.mark.parametrize("overrides, message", [
    ({"application": "0"}, "Choose an application."),
    ({"application": None}, "Choose an application."),
    ({"application": "99999"}, "Choose an application."),
    ({"expires_at": "2001-01-01T00:00"}, "The expiry must be in the future."),
    ({"expires_at": "tomorrow"}, "Not a valid datetime value."),
    ({"value": "short-value"}, "A custom token value needs at least 16 characters."),
    ({"value": "taken-value-0123456789"}, "A token with this value already exists."),
    ({"perm-1-tenant": "site1", "perm-1-actions": ["READ_TENANT"]}, "Tenant site1 already has a row"),
    ({"perm-0-tenant": "nowhere"}, "Unknown tenant &#39;nowhere&#39;."),
    ({"perm-0-tenant": ""}, "Choose a tenant"),
    ({"perm-0-actions": ["FLY"]}, "Unknown action FLY; use CREATE_TENANT"),
    ({"perm-0-actions": []}, "The entry for site1 needs at least one action (or remove the entry)."),
    ({"user": "nobody@example.org"}, "No user with username or email"),
])
def test_create_bad_input_writes_nothing(admin_client, setup, csrf, overrides, message):
    make_token(setup["app"], value="taken-value-0123456789")
    before_tokens, before_audit = token_count(), audit_count()
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), **overrides))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert token_count() == before_tokens
    assert audit_count() == before_audit


def test_create_without_csrf_is_400_and_writes_nothing(admin_client, setup):
    before = token_count()
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, "", csrf_token=None))
    assert response.status_code == 400
    assert token_count() == before


def test_editor_without_javascript_adds_and_removes_rows(admin_client, setup, csrf):
    data = create_data(setup, csrf(), save=None, add_row="1")
    html = admin_client.post("/admin/tokens/new", data=data).get_data(as_text=True)
    assert 'name="perm-1-tenant"' in html
    # the new row starts with READ_TENANT only: nothing more is granted unseen
    assert 'id="perm-1-READ_TENANT" name="perm-1-actions" value="READ_TENANT" checked' in html
    for action in ("CREATE_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS"):
        assert f'id="perm-1-{action}" name="perm-1-actions" value="{action}" data-global' in html
    data = create_data(setup, csrf(), save=None, remove_row_0="1")
    html = admin_client.post("/admin/tokens/new", data=data).get_data(as_text=True)
    assert 'name="perm-0-tenant"' not in html
    assert token_count() == 0


def test_new_form_defaults(admin_client, setup):
    html = admin_client.get("/admin/tokens/new").get_data(as_text=True)
    assert '<label for="value">' in html and '<label for="application">' in html
    assert 'id="perm-0-READ_TENANT" name="perm-0-actions" value="READ_TENANT" checked' in html
    assert 'value="MANAGE_TICKETS" checked' not in html and 'value="MANAGE_PROFILES" checked' not in html
    assert '<option value="site2">' in html and '<option value="*">' in html


@pytest.mark.both_databases  # search (LIKE), filters and keyset pages in SQL
def test_list_search_filter_and_pages(admin_client, setup):
    other = make_user("dave", email="dave@corp.example")
    mine = make_token(setup["app"], value="tsr_abcdefSEARCHME0123456", user=other,
                      tenant_permissions=[{"tenant": "site2", "actions": ["READ_TENANT"]}])
    for _ in range(55):
        make_token(setup["app"])

    def hints(query):
        return admin_client.get("/admin/tokens" + query).get_data(as_text=True)

    assert mine.token.hint in hints("?q=tsr_abcd")
    assert mine.token.hint in hints("?q=dave%40corp")
    assert mine.token.hint in hints("?q=tsr_abcdefSEARCHME0123456")  # a whole value: found by hash
    assert mine.token.hint in hints("?tenant=site2")
    assert "No tokens match these filters." in hints("?tenant=site1")
    assert mine.token.hint in hints("?user=dave")
    assert "No tokens match these filters." in hints("?master=yes")
    assert "No tokens match these filters." in hints("?status=expired")
    first = hints("?source=admin")
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "after=" in next_url and "source=admin" in next_url
    second = admin_client.get(next_url).get_data(as_text=True)
    assert second.count('name="ids"') == 6 and 'rel="next"' not in second
    seen_first = set(re.findall(r'name="ids" value="(\d+)"', first))
    assert not seen_first & set(re.findall(r'name="ids" value="(\d+)"', second))
    by_expiry = hints("?source=admin&sort=expires_asc")
    assert by_expiry.count('name="ids"') == 50
    assert "No tokens match these filters." in hints("?after=garbage~x&q=zzz")


def test_extend(admin_client, setup, csrf):
    issued = make_token(setup["app"])
    url = f"/admin/tokens/{issued.token.id}"
    bad = admin_client.post(url + "/extend", data={"csrf_token": csrf(url), "expires_at": "2000-01-01T00:00"})
    assert bad.status_code == 422 and "The new expiry must be in the future." in bad.get_data(as_text=True)
    target = clock.now() + timedelta(days=30)
    ok = admin_client.post(url + "/extend",
                           data={"csrf_token": csrf(url), "expires_at": target.strftime("%Y-%m-%dT%H:%M")})
    assert ok.status_code == 303
    db.session.expire_all()
    assert db.session.get(AccessToken, issued.token.id).expires_at == target.replace(second=0)
    assert admin_client.post(url + "/extend", data={"expires_at": "2099-01-01T00:00"}).status_code == 400


def test_replace_keeps_value(admin_client, setup, csrf):
    issued = make_token(setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    url = f"/admin/tokens/{issued.token.id}/replace"
    page = admin_client.get(url).get_data(as_text=True)
    assert "keeps <strong>the same value</strong>, its address and its history" in page
    assert 'value="site1" selected' in page
    data = create_data(setup, csrf(url), master="y", **{"perm-0-tenant": "site2", "perm-0-actions": ["*"]})
    response = admin_client.post(url, data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/tokens/{issued.token.id}")
    db.session.expire_all()
    token = tokens.find_by_value(issued.value)
    assert token.id == issued.id and token.master
    assert token.tenant_permissions == [{"tenant": "site2", "actions": ["*"]}]
    history = admin_client.get(f"/admin/tokens/{token.id}").get_data(as_text=True)
    assert "token.created" in history and "token.replaced" in history
    assert "master: no → yes" in history
    dup = create_data(setup, csrf(f"/admin/tokens/{token.id}/replace"),
                      **{"perm-1-tenant": "site1", "perm-1-actions": ["READ_TENANT"]})
    response = admin_client.post(f"/admin/tokens/{token.id}/replace", data=dup)
    assert response.status_code == 422 and "already has a row" in response.get_data(as_text=True)
    assert tokens.find_by_value(issued.value).id == token.id


def test_delete_and_bulk_delete(admin_client, setup, csrf):
    one, two, three = (make_token(setup["app"]) for _ in range(3))
    url = f"/admin/tokens/{one.token.id}/delete"
    assert "lose access at once" in admin_client.get(url).get_data(as_text=True)
    assert admin_client.post(url).status_code == 400
    assert admin_client.post(url, data={"csrf_token": csrf(url)}).status_code == 303
    assert tokens.find_by_value(one.value) is None
    ids = [str(two.token.id), str(three.token.id)]
    ask = admin_client.post("/admin/tokens/delete", data={"csrf_token": csrf("/admin/tokens"), "ids": ids})
    assert ask.status_code == 200 and "Revoke 2 tokens" in ask.get_data(as_text=True)
    assert tokens.find_by_value(two.value) is not None
    done = admin_client.post("/admin/tokens/delete", data={"csrf_token": csrf("/admin/tokens"), "ids": ids,
                                                            "confirm": "yes"})
    assert done.status_code == 303
    assert tokens.find_by_value(two.value) is None and tokens.find_by_value(three.value) is None


@pytest.mark.both_databases  # search (LIKE) in SQL
def test_user_search_json(admin_client, setup):
    make_user("erin", email="erin@example.org")
    assert admin_client.get("/admin/users/search?q=eri").get_json()[0]["username"] == "erin"
    assert admin_client.get("/admin/users/search?q=erin%40ex").get_json()[0]["email"] == "erin@example.org"
    assert admin_client.get("/admin/users/search?q=").get_json() == []


def test_detail_grid_and_history(admin_client, setup):
    issued = make_token(setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]},
                                                          {"tenant": "*", "actions": ["*"]}])
    html = admin_client.get(f"/admin/tokens/{issued.token.id}").get_data(as_text=True)
    assert 'data-tenant="site1"' in html and "token.created" in html
    assert admin_client.get("/admin/tokens/999999").status_code == 404


def test_not_for_non_admins(client, auth, setup):
    make_user("bob", password="correct horse battery")
    auth.login("bob")
    assert client.get("/admin/tokens").status_code == 403
