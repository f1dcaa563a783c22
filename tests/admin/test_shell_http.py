"""The console's shell and its non-token pages over HTTP (issue 25): the menu and its
active mark, breadcrumbs, flashes, signing a user out apart from revoking their tokens,
confirmations, the user, session, tenant and application lists, plurals and 404s."""

import re

import pytest

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent, User
from tests.conftest import Auth, csrf_token_from
from tests.factories import make_application, make_token, make_user


def form_csrf(client, path):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def count_tokens(user: User, source: str | None = None) -> int:
    db.session.expire_all()
    statement = db.select(db.func.count()).select_from(AccessToken).where(AccessToken.user_id == user.id)
    if source == "session":
        statement = statement.where(AccessToken.source == "session")
    elif source:
        statement = statement.where(AccessToken.source != "session")
    return db.session.scalar(statement)


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


# --- the shell ------------------------------------------------------------------------------

def test_every_page_has_a_skip_link_a_menu_button_and_marks_where_it_is(admin_client, setup):
    user = make_user("noor", tenant=setup["site1"])
    html = admin_client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert '<a href="#main" class="skip-link">Skip to content</a>' in html and 'id="main"' in html
    assert '<details class="nav-narrow">' in html and "<summary" in html and ">Menu</summary>" in html
    # the Users entry is marked (in the wide row and in the menu), and only it
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == ["/admin/users", "/admin/users"]
    dashboard = admin_client.get("/admin").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', dashboard) == ["/admin", "/admin"]


@pytest.mark.parametrize("path, trail", [
    ("/admin/users/{user}", ["Users"]),
    ("/admin/users/{user}/edit", ["Users", "noor"]),
    ("/admin/applications/{application}", ["Applications"]),
    ("/admin/tenants/{tenant}", ["Tenants"]),
])
def test_detail_pages_have_breadcrumbs(admin_client, setup, path, trail):
    user = make_user("noor", tenant=setup["site1"])
    html = admin_client.get(path.format(user=user.id, application=setup["app"].id,
                                        tenant=setup["site1"].id)).get_data(as_text=True)
    crumbs = html.split('<nav aria-label="breadcrumb">', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r"<a href=\"[^\"]+\">([^<]+)</a>", crumbs) == trail
    assert 'aria-current="page"' in crumbs


def test_a_flash_has_an_icon_and_says_its_kind_in_words(admin_client, setup):
    response = admin_client.post("/admin/tenants", data={"csrf_token": form_csrf(admin_client, "/admin/tenants"),
                                                         "name": "site9"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert ('class="flash flash-success" role="status"><span class="flash-icon" aria-hidden="true">✓</span>'
            '<span class="visually-hidden">Done: </span><span>Tenant site9 created.</span>') in html


def test_regenerate_secret_and_deactivate_are_styled_as_destructive(admin_client, setup):
    html = admin_client.get(f"/admin/applications/{setup['app'].id}").get_data(as_text=True)
    assert 'role="button" class="danger outline">Regenerate secret…</a>' in html
    user = make_user("noor")
    html = admin_client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert 'role="button" class="danger outline">Deactivate…</a>' in html


# --- a user's sessions and tokens: two actions ----------------------------------------------

def test_sign_out_everywhere_ends_the_sessions_only(app, admin_client, setup):
    carol = make_user("carol", tenant=setup["site1"])
    api = make_token(setup["app"], user=carol)
    browser = app.test_client()
    assert Auth(browser).login("carol").status_code == 303
    path = f"/admin/users/{carol.id}"
    page = admin_client.get(path).get_data(as_text=True)
    assert "Sign out everywhere…" in page and "Revoke all API and OAuth tokens…" in page
    asked = admin_client.get(path + "/end-sessions").get_data(as_text=True)
    assert "This ends <strong>1 login session</strong> of carol" in asked
    assert "Their API and OAuth tokens are not touched" in asked
    assert count_tokens(carol, "session") == 1  # asking changed nothing
    assert admin_client.post(path + "/end-sessions").status_code == 400  # no CSRF token

    done = admin_client.post(path + "/end-sessions", data={"csrf_token": form_csrf(admin_client, path)},
                             follow_redirects=True).get_data(as_text=True)
    assert "Signed carol out of every browser: 1 login session ended. Their API and OAuth tokens still work." in done
    assert count_tokens(carol, "session") == 0 and count_tokens(carol, "api") == 1
    assert tokens.find_by_value(api.value) is not None
    assert browser.get("/").status_code in (302, 303)  # carol's browser is logged out
    (event,) = events("user.sessions_ended")
    assert event.target_label == "carol" and event.details == {"sessions_ended": 1}


def test_revoke_all_tokens_leaves_the_sessions(app, admin_client, setup):
    carol = make_user("carol", tenant=setup["site1"])
    values = [make_token(setup["app"], user=carol).value for _ in range(3)]
    browser = app.test_client()
    assert Auth(browser).login("carol").status_code == 303
    path = f"/admin/users/{carol.id}"
    asked = admin_client.get(path + "/revoke-tokens").get_data(as_text=True)
    assert "This deletes <strong>3 tokens</strong> of carol" in asked and ">Revoke 3 tokens</button>" in asked
    assert count_tokens(carol, "api") == 3  # asking changed nothing

    done = admin_client.post(path + "/revoke-tokens", data={"csrf_token": form_csrf(admin_client, path)},
                             follow_redirects=True).get_data(as_text=True)
    assert "Revoked 3 tokens of carol: applications using them lost access. Their login sessions go on." in done
    assert all(tokens.find_by_value(value) is None for value in values)
    assert count_tokens(carol, "session") == 1
    assert browser.get("/").status_code == 200  # carol stays logged in
    (summary,) = events("user.tokens_revoked")
    assert summary.target_label == "carol" and summary.details == {"tokens_deleted": 3}
    assert len(events("token.deleted")) == 3


def test_own_sign_out_everywhere_keeps_this_browser(admin_client, admin_user, app):
    other = app.test_client()
    assert Auth(other).login("admin").status_code == 303
    path = f"/admin/users/{admin_user.id}"
    admin_client.post(path + "/end-sessions", data={"csrf_token": form_csrf(admin_client, path)})
    assert admin_client.get("/admin").status_code == 200
    assert other.get("/admin").status_code in (302, 303)


def test_deactivate_asks_first(admin_client, setup):
    dana = make_user("dana")
    path = f"/admin/users/{dana.id}"
    asked = admin_client.get(path + "/deactivate")
    assert asked.status_code == 200 and "Deactivate dana?" in asked.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, dana.id).active  # asking changed nothing
    response = admin_client.post(path + "/deactivate", data={"csrf_token": form_csrf(admin_client, path)})
    assert response.status_code == 303
    db.session.expire_all()
    assert not db.session.get(User, dana.id).active
    assert events("user.deactivated")


def test_an_admin_is_not_offered_to_deactivate_themselves(admin_client, admin_user):
    html = admin_client.get(f"/admin/users/{admin_user.id}").get_data(as_text=True)
    assert "Deactivate…" not in html
    asked = admin_client.get(f"/admin/users/{admin_user.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate yourself." in asked.get_data(as_text=True)


# --- lists ----------------------------------------------------------------------------------

@pytest.mark.both_databases  # filters and counts in SQL
def test_user_list_shows_names_counts_and_filters(app, admin_client, setup):
    ana = make_user("ana", name="Ána Łukasiewicz-Øster", tenant=setup["site1"])
    make_user("bob", tenant=setup["site2"], active=False)
    make_user("boss", is_admin=True)
    make_token(setup["app"], user=ana)
    make_token(setup["app"], user=ana)
    tokens.create_session_token(ana)
    html = admin_client.get("/admin/users").get_data(as_text=True)
    assert "Ána Łukasiewicz-Øster" in html
    row = html.split(">ana<", 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-label="Tokens" class="count-cell"><a href="[^"]+">2</a>', row)
    assert re.search(r'data-label="Sessions" class="count-cell"><a href="/admin/sessions\?user=ana">1</a>', row)

    def listed(query):
        page = admin_client.get("/admin/users?" + query).get_data(as_text=True)
        return sorted(re.findall(r'<th scope="row" data-label="Username"><a [^>]+><span class="clip" '
                                 r'title="[^"]*">([^<]+)</span>', page))
    assert listed("tenant=site1") == ["ana"]
    assert listed("admin=yes") == ["admin", "boss"]
    assert listed("active=no") == ["bob"]
    assert listed("admin=no&active=yes&q=a") == ["ana"]
    assert listed("admin=maybe") == ["admin", "ana", "bob", "boss"]  # an unknown value filters nothing
    assert "No users match." in admin_client.get("/admin/users?tenant=nowhere").get_data(as_text=True)
    assert admin_client.get("/admin/users?tenant=" + "x" * 65).status_code == 400


def test_user_forms_show_every_error_at_once_with_a_summary(admin_client, setup):
    data = {"csrf_token": form_csrf(admin_client, "/admin/users/new"), "username": "", "email": "not-an-email",
            "tenant": "nowhere", "password": "short"}
    response = admin_client.post("/admin/users/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    summary = html.split('class="error-summary"', 1)[1].split("</article>", 1)[0]
    assert len(re.findall(r'<li><a href="#(username|email|tenant|password)">', summary)) >= 3
    assert 'href="#username"' in summary and 'href="#email"' in summary and 'href="#password"' in summary


def test_application_form_errors_are_summarised(admin_client, setup):
    data = {"csrf_token": form_csrf(admin_client, "/admin/applications/new"), "name": "",
            "client_type": "confidential", "redirect_uris": "", "grant_types": ["authorization_code"],
            "scope": "", "token_endpoint_auth_method": "", "client_id": "x" * 101, "description": ""}
    html = admin_client.post("/admin/applications/new", data=data).get_data(as_text=True)
    summary = html.split('class="error-summary"', 1)[1].split("</article>", 1)[0]
    assert 'href="#name"' in summary and 'href="#client_id"' in summary


def test_help_text_is_not_an_error(admin_client, setup):
    """Help text keeps its own class and id (CSS keeps it muted beside an error)."""
    html = admin_client.get("/admin/tokens/new").get_data(as_text=True)
    assert '<small class="help" id="value-help">' in html and 'aria-describedby="value-help"' in html


@pytest.mark.both_databases  # search in SQL
def test_application_list_search_and_counts(admin_client, setup):
    shop = make_application("Webshop Ünïcode")
    make_application("billing")
    make_token(shop)
    make_token(shop)
    html = admin_client.get("/admin/applications?q=SHOP").get_data(as_text=True)
    assert "Webshop Ünïcode" in html and "billing" not in html and "1 application matching" in html
    row = html.split("Webshop Ünïcode", 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-label="Active tokens" class="count-cell"><a href="[^"]+">2</a>', row)
    assert "No application matches" in admin_client.get("/admin/applications?q=zz%25").get_data(as_text=True)
    assert admin_client.get("/admin/applications?q=" + "x" * 101).status_code == 400


def test_application_page_counts_tokens_and_offers_a_new_one(admin_client, setup):
    app_row = setup["app"]
    make_token(app_row)
    html = admin_client.get(f"/admin/applications/{app_row.id}").get_data(as_text=True)
    link = f"/admin/tokens/new?application={app_row.id}"
    assert f'href="{link}" role="button">New token for this application' in html
    assert ">1 active token</a>" in html
    form = admin_client.get(link).get_data(as_text=True)
    assert re.search(rf'<option selected value="{app_row.id}">|<option value="{app_row.id}" selected>', form), \
        "the token form does not start with the application chosen"


def test_tenant_page_lists_users_and_tokens_and_offers_delete_only_when_it_can(admin_client, setup):
    site1, site2 = setup["site1"], setup["site2"]
    make_user("ana", tenant=site1, name="Ana Long-Name")
    make_token(setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    html = admin_client.get(f"/admin/tenants/{site1.id}").get_data(as_text=True)
    assert "1 user belongs to site1." in html and "Ana Long-Name" in html
    assert "1 token names site1 in its permissions" in html and "READ_TENANT" not in html
    assert "Delete tenant site1…" not in html and "cannot be deleted while users belong to it and tokens" in html
    empty = admin_client.get(f"/admin/tenants/{site2.id}").get_data(as_text=True)
    assert "0 users belong to site2." in empty and "Delete tenant site2…" in empty
    listing = admin_client.get("/admin/tenants").get_data(as_text=True)
    assert 'href="/admin/users?tenant=site1">1</a>' in listing


# --- words ----------------------------------------------------------------------------------

def test_plurals_are_real(admin_client, setup):
    make_token(setup["app"])
    html = admin_client.get(f"/admin/applications/{setup['app'].id}/delete").get_data(as_text=True)
    assert "Its tokens (1 token) end with it" in html and "(s)" not in html
    user = make_user("noor")
    html = admin_client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "0 active login sessions." in html and "(s)" not in html


@pytest.mark.parametrize("path, message, way_out", [
    ("/admin/users/999999", "No such user (it may have been deleted).", "All users"),
    ("/admin/tenants/999999", "No such tenant (it may have been deleted).", "All tenants"),
    ("/admin/applications/999999", "No such application (it may have been deleted).", "All applications"),
    ("/admin/tokens/999999", "No such token (it may have been deleted or replaced).", "All tokens"),
])
def test_a_404_says_what_was_not_found_and_the_way_back(admin_client, path, message, way_out):
    response = admin_client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and message in html and f">{way_out}</a>" in html
    assert "We could not find that page." not in html


def test_an_unknown_page_keeps_the_plain_404(admin_client):
    assert "We could not find that page." in admin_client.get("/admin/nothing-here").get_data(as_text=True)


def test_long_audit_events_fold_their_details(admin_client, setup):
    make_token(setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    html = admin_client.get("/admin/audit?action=token.created").get_data(as_text=True)
    row = html.split("<code>token.created</code>", 1)[1].split("</tr>", 1)[0]
    assert "<details><summary>All 5 details</summary>" in row
    assert row.index("tenant permissions:") > row.index("<details>")  # folded
