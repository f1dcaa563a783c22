"""The token pages of issue 25 over HTTP: sorts with keyset pages, chips, bulk extend,
expiry presets, every error in one submit, the last use's details, the deleted token's
404, the expired banner, and a shown-once value no other answer can drop."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from portal import tokens
from portal.admin.queries import TOKEN_SORTS, TokenFilters, token_page
from portal.domain import clock
from portal.extensions import db
from portal.models import AccessToken
from tests.admin.test_tokens_http import create_data
from tests.factories import make_application, make_token, make_user

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@pytest.mark.both_databases  # keyset comparisons on subqueries, NULLs and CASE in SQL
@pytest.mark.parametrize("sort", list(TOKEN_SORTS))
def test_every_sort_pages_through_every_token_once(app, setup, sort):
    users = [make_user(name, email=f"{name}@example.org") for name in ("Zoë", "adam", "Émile")]
    applications = [setup["app"], make_application("Übersicht"), make_application("alpha")]
    for i in range(11):
        issued = make_token(applications[i % 3], user=users[i % 3] if i % 4 else None,
                            expires_at=clock.now() + timedelta(days=i % 5 + 1))
        if i % 3 == 0:
            db.session.execute(update(AccessToken).where(AccessToken.id == issued.id)
                               .values(last_used_at=clock.now() - timedelta(hours=i)))
        if i == 4:
            db.session.execute(update(AccessToken).where(AccessToken.id == issued.id)
                               .values(revoked_at=clock.now()))
    db.session.commit()
    filters = TokenFilters(sort=sort)
    everything, _ = token_page(filters, None, page_size=100)
    seen, cursor = [], None
    while True:
        rows, cursor = token_page(filters, cursor, page_size=3)
        seen += [row.id for row in rows]
        if cursor is None:
            break
    assert seen == [row.id for row in everything] and len(seen) == 11


def test_sort_headers_and_chips(admin_client, setup):
    make_token(setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    html = admin_client.get("/admin/tokens?status=active&tenant=site1&sort=application").get_data(as_text=True)
    assert 'aria-sort="ascending"' in html and "Application (A–Z)" in html
    chips = re.findall(r'<a href="([^"]+)" class="chip">([^<]+)<', html)
    words = [w.strip() for _, w in chips]
    assert words == ["Status: active", "Tenant: site1", "Sorted: Application (A–Z)"]
    removed = dict((w.strip(), url.replace("&amp;", "&")) for url, w in chips)["Tenant: site1"]
    assert "tenant=" not in removed and "status=active" in removed and "sort=application" in removed
    assert "autofocus" not in html  # the box is not focused over chips to read
    assert "autofocus" in admin_client.get("/admin/tokens").get_data(as_text=True)


def test_empty_and_no_match_states_offer_the_next_action(admin_client, setup):
    assert 'id="no-tokens"' in admin_client.get("/admin/tokens").get_data(as_text=True)
    make_token(setup["app"])
    html = admin_client.get("/admin/tokens?q=nothing-like-this").get_data(as_text=True)
    assert 'id="no-match"' in html and "Clear the filters" in html


def test_list_rows_show_badges_and_summarised_permissions(admin_client, setup):
    make_token(setup["app"], master=True, tenant_permissions=[
        {"tenant": "site1", "actions": ["READ_TENANT"]}, {"tenant": "site2", "actions": ["*"]},
        {"tenant": "*", "actions": ["MANAGE_TICKETS"]}])
    html = admin_client.get("/admin/tokens").get_data(as_text=True)
    assert 'class="badge badge-master"' in html and 'class="badge status-badge status-active"' in html
    summary = re.search(r'<span class="perm-summary" title="([^"]+)">(.*?)</span>\s*</td>', html, re.S)
    assert summary.group(1) == "site1: READ_TENANT&#10;site2: all actions&#10;*: MANAGE_TICKETS"
    text = re.sub(r"<[^>]+>", "", summary.group(2))
    assert text == "site1 · site2 +1"


def test_bulk_extend(admin_client, setup, csrf):
    one, two = make_token(setup["app"]), make_token(setup["app"])
    before = {t.id: db.session.get(AccessToken, t.id).expires_at for t in (one, two)}
    response = admin_client.post("/admin/tokens/extend", data={
        "csrf_token": csrf("/admin/tokens"), "ids": [str(one.id), str(two.id)], "days": "30"})
    assert response.status_code == 303
    db.session.expire_all()
    for token_id, expiry in before.items():
        assert db.session.get(AccessToken, token_id).expires_at == expiry + timedelta(days=30)
    flashed = admin_client.get("/admin/tokens").get_data(as_text=True)
    assert "Extended 2 tokens by 30 days." in flashed
    refused = admin_client.post("/admin/tokens/extend", data={
        "csrf_token": csrf("/admin/tokens"), "ids": [str(one.id)], "days": "3650"}, follow_redirects=True)
    assert "Select at least one token and how long to extend it." in refused.get_data(as_text=True)


def test_presets_on_new_extend_and_replace(admin_client, setup, csrf):
    page = admin_client.get("/admin/tokens/new").get_data(as_text=True)
    for days in (7, 30, 90):
        assert f'value="{days}"' in page
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), expiry="30", expires_at=""))
    assert response.status_code == 303
    token = db.session.get(AccessToken, int(response.headers["Location"].split("/")[-2]))
    assert abs(token.expires_at - (clock.now() + timedelta(days=30))) < timedelta(minutes=2)

    url = f"/admin/tokens/{token.id}"
    detail = admin_client.get(url).get_data(as_text=True)
    assert re.search(r'<input checked [^>]*value="30"', detail)  # Extend comes pre-filled
    expires = token.expires_at
    assert admin_client.post(url + "/extend", data={"csrf_token": csrf(url), "expiry": "7"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(AccessToken, token.id).expires_at == expires.replace(second=0) + timedelta(days=7)

    replace = url + "/replace"
    assert re.search(r'<input checked [^>]*value="keep"', admin_client.get(replace).get_data(as_text=True))
    kept = db.session.get(AccessToken, token.id).expires_at
    data = create_data(setup, csrf(replace), expiry="keep", expires_at="garbage")
    assert admin_client.post(replace, data=data).status_code == 303
    db.session.expire_all()
    assert db.session.get(AccessToken, token.id).expires_at == kept


def test_every_error_in_one_submit(admin_client, setup, csrf):
    data = create_data(setup, csrf(), value="short", user="nobody-here", expiry="custom",
                       expires_at="2001-01-01 00:00",
                       **{"perm-1-tenant": "site1", "perm-1-actions": ["READ_TENANT"]})
    response = admin_client.post("/admin/tokens/new", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    summary = html.split('class="error-summary"')[1].split("</article>")[0]
    for message, field in (("A custom token value needs at least 16 characters.", "value"),
                           ("No user with username or email &#39;nobody-here&#39;.", "user"),
                           ("The expiry must be in the future.", "expires_at"),
                           ("Tenant site1 already has a row: give each tenant one row.", "perm-1-tenant")):
        assert f'href="#{field}"' in summary and message in summary, message
    assert "4 problems to fix" in summary
    assert re.findall(r'href="#([^"]+)"', summary) == ["user", "expires_at", "perm-1-tenant", "value"]  # page order
    assert 'class="field-errors"' in html and 'aria-invalid="true"' in html


def test_the_last_use_says_where_and_with_what(app, admin_client, client, setup):
    issued = make_token(setup["app"], tenant_permissions=[{"tenant": "*", "actions": ["READ_TENANT"]}])
    headers = {"Authorization": f"Bearer {issued.value}", "User-Agent": CHROME}
    answer = client.get("/api/v1/tenants", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert answer.status_code == 200
    db.session.expire_all()
    token = db.session.get(AccessToken, issued.id)
    assert (token.last_used_address, token.last_used_user_agent) == ("203.0.113.7", CHROME)
    # At most one write a minute: a second use at once changes nothing.
    client.get("/api/v1/tenants", headers={**headers, "User-Agent": "curl/8.5.0"},
               environ_base={"REMOTE_ADDR": "198.51.100.1"})
    db.session.expire_all()
    assert db.session.get(AccessToken, issued.id).last_used_address == "203.0.113.7"
    html = admin_client.get(f"/admin/tokens/{issued.id}").get_data(as_text=True)
    last_use = html.split('id="last-use">')[1].split("</td>")[0]
    assert "<code>203.0.113.7</code>" in last_use and "Chrome 131 on Linux" in last_use


def test_a_deleted_token_has_its_own_404(admin_client, setup, csrf):
    issued = make_token(setup["app"])
    url = f"/admin/tokens/{issued.id}"
    assert admin_client.post(url + "/delete", data={"csrf_token": csrf(url)}).status_code == 303
    response = admin_client.get(url)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "This token was revoked" in html and "by admin" in html
    assert admin_client.get(url + "/replace").status_code == 404
    other = admin_client.get("/admin/tokens/987654")
    assert other.status_code == 404 and "This token was revoked" not in other.get_data(as_text=True)


def test_an_expired_token_says_so_with_the_way_out(admin_client, setup):
    issued = make_token(setup["app"])
    db.session.execute(update(AccessToken).where(AccessToken.id == issued.id)
                       .values(expires_at=clock.now() - timedelta(days=2)))
    db.session.commit()
    html = admin_client.get(f"/admin/tokens/{issued.id}").get_data(as_text=True)
    banner = html.split('id="expired-banner"')[1].split("</article>")[0]
    assert "This token expired" in banner and "2 days ago" in banner
    assert 'href="#extend"' in banner and f'href="/admin/tokens/{issued.id}/replace"' in banner


def test_the_new_value_rides_its_own_cookie(admin_client, setup, csrf):
    """Issue 25: any answer may re-set the session cookie; the value is not in it."""
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf()))
    location = response.headers["Location"]
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tessera_shown_once="))
    assert f"Path={location}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with admin_client.session_transaction() as session:
        assert "shown_once" not in session  # so a stale session cookie cannot drop it
    admin_client.get("/admin/users/search?q=a")  # another answer re-sets the session cookie
    shown = admin_client.get(location)
    value = shown.get_data(as_text=True).split('id="token-value" type="text" readonly value="')[1].split('"')[0]
    assert tokens.find_by_value(value).id == int(location.split("/")[-2])
    assert value not in admin_client.get(location).get_data(as_text=True)


def test_a_row_for_one_tenant_in_one_click_without_javascript(admin_client, setup, csrf):
    data = create_data(setup, csrf(), save=None, add_row="site2", **{"perm-0-tenant": ""})
    html = admin_client.post("/admin/tokens/new", data=data).get_data(as_text=True)
    # the blank row took it
    assert '<option value="site2" selected>' in html and 'name="perm-1-tenant"' not in html
    data = create_data(setup, csrf(), save=None, add_row="site2")
    html = admin_client.post("/admin/tokens/new", data=data).get_data(as_text=True)
    assert 'name="perm-1-tenant"' in html
    assert 'id="perm-1-READ_TENANT" name="perm-1-actions" value="READ_TENANT" checked' in html
