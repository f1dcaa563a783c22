"""Applications, users, tenants, audit and dashboard pages over HTTP."""

import pytest

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, Application, AuditEvent, Tenant, User
from tests.admin.conftest import audit_count
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant, make_token, make_user


def form_csrf(client, path):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_dashboard_figures_and_chart(admin_client, setup):
    make_token(setup["app"])
    make_token(setup["app"], expires_in=3600)
    make_token(make_application("billing"), expires_in=30 * 86400)
    response = admin_client.get("/admin")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # 3 admin-made tokens; the admin's login session is counted apart (issue 16)
    assert 'id="active-tokens">3<' in html and 'id="active-sessions">1<' in html
    assert "<svg" in html and "crm" in html and "billing" in html
    assert " style=" not in html


def test_create_application_shows_secret_once_with_warning(admin_client, setup):
    data = {"csrf_token": form_csrf(admin_client, "/admin/applications/new"), "name": "shop",
            "client_type": "confidential", "redirect_uris": "http://shop.example/cb\nhttps://shop.example/cb",
            "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "openid",
            "token_endpoint_auth_method": "", "client_id": "shop-client", "description": ""}
    response = admin_client.post("/admin/applications/new", data=data)
    assert response.status_code == 303  # post/redirect/get: a reload makes no second application
    # The secret rides in a cookie only its page receives, not in the session, which any other
    # answer (here the user picker's) may set again.
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tessera_shown_once="))
    assert f"Path={response.headers['Location']}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with admin_client.session_transaction() as session:
        assert "shown_once" not in session
    admin_client.get("/admin/users/search?q=a")
    shown = admin_client.get(response.headers["Location"])
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert "plain http on a non-loopback host" in html
    secret = html.split('id="client-secret" type="text" readonly value="')[1].split('"')[0]
    application = db.session.scalar(db.select(Application).where(Application.client_id == "shop-client"))
    assert application.check_client_secret(secret)
    assert secret not in admin_client.get(response.headers["Location"]).get_data(as_text=True)  # once
    detail = admin_client.get(f"/admin/applications/{application.id}").get_data(as_text=True)
    assert secret not in detail
    regen = admin_client.post(f"/admin/applications/{application.id}/secret",
                              data={"csrf_token": form_csrf(admin_client, f"/admin/applications/{application.id}")},
                              follow_redirects=True)
    new_secret = regen.get_data(as_text=True).split('id="client-secret" type="text" readonly value="')[1].split('"')[0]
    db.session.expire_all()
    assert new_secret != secret and db.session.get(Application, application.id).check_client_secret(new_secret)


@pytest.mark.parametrize("overrides, message", [
    ({"name": ""}, "Give the application a name."),
    ({"name": "crm"}, "already exists"),
    ({"redirect_uris": "https://x.example/cb#frag"}, "has a fragment"),
    ({"redirect_uris": "https://*.example/cb"}, "has a wildcard"),
    ({"redirect_uris": "/relative"}, "is not an absolute URI"),
    ({"client_id": "bad id!"}, "The client id may use"),
])
def test_application_bad_input_writes_nothing(admin_client, setup, overrides, message):
    data = {"csrf_token": form_csrf(admin_client, "/admin/applications/new"), "name": "new-app",
            "client_type": "confidential", "redirect_uris": "https://new.example/cb",
            "grant_types": ["authorization_code"], "scope": "openid", "client_id": ""}
    data.update(overrides)
    before = db.session.scalar(db.select(db.func.count()).select_from(Application))
    response = admin_client.post("/admin/applications/new", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert db.session.scalar(db.select(db.func.count()).select_from(Application)) == before


def test_delete_application_ends_its_tokens(admin_client, setup):
    issued = make_token(setup["app"])
    path = f"/admin/applications/{setup['app'].id}/delete"
    assert "Its tokens (1 token) end with it" in admin_client.get(path).get_data(as_text=True)
    assert admin_client.post(path).status_code == 400
    assert admin_client.post(path, data={"csrf_token": form_csrf(admin_client, path)}).status_code == 303
    db.session.expire_all()
    assert tokens.find_by_value(issued.value) is None


@pytest.mark.both_databases  # search (LIKE) in SQL
def test_users_create_search_and_controls(admin_client, setup):
    data = {"csrf_token": form_csrf(admin_client, "/admin/users/new"), "username": "frank",
            "email": "frank@example.org", "name": "Frank", "tenant": "site1", "password": "long enough pw"}
    response = admin_client.post("/admin/users/new", data=data)
    assert response.status_code == 303
    frank = db.session.scalar(db.select(User).where(User.username == "frank"))
    assert frank.tenant.name == "site1" and frank.check_password("long enough pw")
    assert "frank" in admin_client.get("/admin/users?q=frank%40").get_data(as_text=True)
    path = f"/admin/users/{frank.id}"
    page = admin_client.get(path).get_data(as_text=True)
    assert "can log in again unless you deactivate them or give them a new password" in page
    make_token(setup["app"], user=frank)
    assert admin_client.post(path + "/end-sessions").status_code == 400
    ended = admin_client.post(path + "/end-sessions", data={"csrf_token": form_csrf(admin_client, path)})
    assert ended.status_code == 303
    assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "user.sessions_ended"))
    admin_client.post(path + "/deactivate", data={"csrf_token": form_csrf(admin_client, path)})
    db.session.expire_all()
    assert not db.session.get(User, frank.id).active
    admin_client.post(path + "/reactivate", data={"csrf_token": form_csrf(admin_client, path)})
    db.session.expire_all()
    assert db.session.get(User, frank.id).active
    bad = admin_client.post(path + "/password", data={"csrf_token": form_csrf(admin_client, path), "password": "short"})
    assert bad.status_code == 422 and "8 to 1000 characters." in bad.get_data(as_text=True)
    ok = admin_client.post(path + "/password", data={"csrf_token": form_csrf(admin_client, path),
                                                     "password": "another long one"})
    assert ok.status_code == 303
    db.session.expire_all()
    assert db.session.get(User, frank.id).check_password("another long one")


@pytest.mark.parametrize("overrides, message", [
    ({"username": ""}, "Give a username."),
    ({"username": "admin"}, "That username is taken."),
    ({"email": "not-an-email"}, "Give a valid email address."),
    ({"tenant": "nowhere"}, "Unknown tenant."),
    ({"password": "short"}, "8 to 1000 characters."),
    ({"csrf_token": ""}, None),
])
def test_user_bad_input_writes_nothing(admin_client, setup, overrides, message):
    data = {"csrf_token": form_csrf(admin_client, "/admin/users/new"), "username": "gina",
            "email": "gina@example.org", "tenant": "", "password": "long enough pw"}
    data.update(overrides)
    before = db.session.scalar(db.select(db.func.count()).select_from(User))
    response = admin_client.post("/admin/users/new", data=data)
    if message is None:
        assert response.status_code == 400
    else:
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == before


def test_tenants_create_rename_delete(admin_client, setup):
    response = admin_client.post("/admin/tenants", data={"csrf_token": form_csrf(admin_client, "/admin/tenants"),
                                                         "name": "site3", "label": "Site three"})
    assert response.status_code == 303
    site3 = db.session.scalar(db.select(Tenant).where(Tenant.name == "site3"))
    path = f"/admin/tenants/{site3.id}"
    admin_client.post(path, data={"csrf_token": form_csrf(admin_client, path), "label": "Third site"})
    db.session.expire_all()
    assert db.session.get(Tenant, site3.id).label == "Third site"
    make_user("hank", tenant=db.session.get(Tenant, site3.id))
    refused = admin_client.post(path + "/delete", data={"csrf_token": form_csrf(admin_client, path)},
                                follow_redirects=True)
    assert "still has 1 user;" in refused.get_data(as_text=True)
    assert db.session.get(Tenant, site3.id) is not None
    empty_id = make_tenant("site9").id
    admin_client.post(f"/admin/tenants/{empty_id}/delete",
                      data={"csrf_token": form_csrf(admin_client, f"/admin/tenants/{empty_id}")})
    db.session.expire_all()
    assert db.session.get(Tenant, empty_id) is None


@pytest.mark.parametrize("name, message", [
    ("", "Give the tenant a name."), ("site1", "A tenant named site1 already exists."),
    ("Bad Name", "lower-case letters, digits"), ("*", "lower-case letters, digits"), ("a" * 65, "1 to 64"),
])
def test_tenant_bad_input_writes_nothing(admin_client, setup, name, message):
    before = db.session.scalar(db.select(db.func.count()).select_from(Tenant))
    response = admin_client.post("/admin/tenants", data={"csrf_token": form_csrf(admin_client, "/admin/tenants"),
                                                         "name": name})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Tenant)) == before


@pytest.mark.both_databases  # the audit log's filters in SQL
def test_audit_log_filters_and_no_secrets(admin_client, setup):
    issued = make_token(setup["app"])
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "token.created" in html and "login" in html
    assert issued.value not in html
    only = admin_client.get("/admin/audit?action=token.created").get_data(as_text=True)
    assert "application.created" not in only.split("</select>", 1)[1]
    target = admin_client.get(f"/admin/audit?target=access_token:{issued.token.id}").get_data(as_text=True)
    assert "token.created" in target.split("</select>", 1)[1]
    assert "admin" in admin_client.get("/admin/audit?actor=admin").get_data(as_text=True)


@pytest.mark.parametrize("csrf_token, message", [(None, "The CSRF token is missing."),
                                                 ("not-the-token", "The CSRF token is invalid.")])
def test_a_write_without_the_csrf_token_is_400_and_says_why(admin_client, setup, admin_user, csrf_token, message):
    """CSRFProtect checks every POST before the view runs: the views have no check of their own."""
    issued = make_token(setup["app"])
    user = make_user("ivan")
    own_session = db.session.scalar(db.select(AccessToken.id).where(AccessToken.user_id == admin_user.id,
                                                                   AccessToken.source == "session"))
    form_csrf(admin_client, "/admin")  # the session holds the real token; the form sends none, or another
    before = audit_count()
    data = {"ids": [str(issued.token.id)], "active": "", **({"csrf_token": csrf_token} if csrf_token else {})}
    for path in [f"/admin/tokens/{issued.token.id}/delete", f"/admin/tokens/{issued.token.id}/extend",
                 f"/admin/tokens/{issued.token.id}/replace", "/admin/tokens/delete", "/admin/tokens/new",
                 f"/admin/users/{user.id}/end-sessions", f"/admin/users/{user.id}/deactivate",
                 f"/admin/users/{user.id}/reactivate", f"/admin/users/{user.id}/edit",
                 f"/admin/users/{user.id}/password", f"/admin/users/{admin_user.id}/sessions/{own_session}/end",
                 f"/admin/sessions/{own_session}/end", "/admin/sessions/end-all",
                 "/admin/tenants", f"/admin/tenants/{setup['site1'].id}/delete",
                 f"/admin/applications/{setup['app'].id}/secret", f"/admin/applications/{setup['app'].id}/edit",
                 f"/admin/applications/{setup['app'].id}/delete", "/admin/applications/new", "/admin/users/new"]:
        response = admin_client.post(path, data=data)
        assert response.status_code == 400 and message in response.get_data(as_text=True), path
    assert audit_count() == before
    assert tokens.find_by_value(issued.value) is not None
    assert db.session.get(User, user.id).active and admin_client.get("/admin").status_code == 200


def test_get_never_changes_anything(admin_client, setup):
    issued = make_token(setup["app"])
    assert admin_client.get(f"/admin/tokens/{issued.token.id}/extend").status_code == 405
    admin_client.get(f"/admin/tokens/{issued.token.id}/delete")
    assert tokens.find_by_value(issued.value) is not None
