"""Authorization boundaries in the admin portal (issue 13): administrators belong to no
tenant, one username rule, ending sessions logs users out in both session modes, one
expiry cap, and out-of-range input is a 400 or 404 page, never a 500."""

from datetime import timedelta

import pytest

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, User
from portal.tokens.core import MAX_EXPIRES_IN
from tests.conftest import Auth, csrf_token_from
from tests.factories import make_token, make_user


def form_csrf(client, path):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def user_count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(User))


def new_user(admin_client, **fields):
    data = {"csrf_token": form_csrf(admin_client, "/admin/users/new"), "username": "gina",
            "email": "gina@example.org", "tenant": "", "password": "long enough pw"}
    data.update(fields)
    return admin_client.post("/admin/users/new", data=data)


# --- 1. an administrator belongs to no tenant ---------------------------------------------

def test_new_user_form_refuses_an_administrator_in_a_tenant(admin_client, setup):
    before = user_count()
    response = new_user(admin_client, tenant="site1", is_admin="y")
    assert response.status_code == 422
    assert "An administrator belongs to no tenant" in response.get_data(as_text=True)
    assert user_count() == before
    assert new_user(admin_client, is_admin="y").status_code == 303
    gina = db.session.scalar(db.select(User).where(User.username == "gina"))
    assert gina.is_admin and gina.tenant is None


# --- 3. "End all sessions" logs the user out, with or without session tokens --------------

class TestEndAllSessions:
    @pytest.fixture(params=[True, False], ids=["session-tokens", "session-version-only"])
    def app_config(self, request):
        return {"SESSION_EXPIRED_CONTROL_ENABLED": request.param}

    def test_the_users_browser_is_logged_out_and_the_message_says_so(self, app, admin_client, setup):
        carol = make_user("carol", tenant=setup["site1"])
        make_token(setup["app"], user=carol)
        browser = app.test_client()
        assert Auth(browser).login("carol").status_code == 303
        assert browser.get("/").status_code == 200
        path = f"/admin/users/{carol.id}"
        response = admin_client.post(path + "/end-sessions", data={"csrf_token": form_csrf(admin_client, path)},
                                     follow_redirects=True)
        ended_count = "1 login session" if app.config["SESSION_EXPIRED_CONTROL_ENABLED"] else "0 login sessions"
        assert f"Signed carol out of every browser: {ended_count} ended." in response.get_data(as_text=True)
        ended = browser.get("/")
        assert ended.status_code in (302, 303) and "/login" in ended.headers["Location"]
        # Only the sessions end: carol's API token is her own action ("Revoke all API and OAuth tokens").
        assert db.session.scalar(db.select(db.func.count()).select_from(AccessToken)
                                 .where(AccessToken.user_id == carol.id)) == 1
        assert admin_client.get("/admin").status_code == 200  # the admin who did it stays in


# --- 5. one username rule ----------------------------------------------------------------

@pytest.mark.parametrize("username, message", [
    ("\u0430lice", "ASCII letters, digits and . _ @ + - only"),
    ("al\u200bice", "ASCII letters, digits and . _ @ + - only"),
    ("x" * 151, "1 to 150"),
    ("ＡＤＭＩＮ", "That username is taken."),  # full-width: NFKC makes it ADMIN
])
def test_new_user_form_applies_the_username_rule(admin_client, setup, username, message):
    before = user_count()
    response = new_user(admin_client, username=username)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert user_count() == before


def test_new_user_form_stores_the_normalised_username(admin_client, setup):
    assert new_user(admin_client, username="ｇｉｎａ").status_code == 303
    assert db.session.scalar(db.select(User).where(User.username == "gina")) is not None


# --- 7. one cap on expiry ---------------------------------------------------------------

def test_extend_refuses_an_expiry_past_the_cap(admin_client, setup):
    issued = make_token(setup["app"])
    url = f"/admin/tokens/{issued.token.id}"
    far = clock.now() + timedelta(seconds=MAX_EXPIRES_IN, days=2)
    response = admin_client.post(url + "/extend", data={"csrf_token": form_csrf(admin_client, url),
                                                        "expires_at": far.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 422 and "at most ten years from now" in response.get_data(as_text=True)
    db.session.expire_all()
    assert tokens.find_by_value(issued.value).expires_at == issued.token.expires_at


# --- 8. out-of-range numbers and unsearchable text: 400 or 404, never 500 -------------------

HUGE = "99999999999999999999"


@pytest.mark.both_databases  # what PostgreSQL refuses that SQLite takes
@pytest.mark.parametrize("path, status", [
    (f"/admin/tokens?application={HUGE}", 400),
    ("/admin/tokens?application=abc", 400),
    (f"/admin/tokens/{HUGE}", 404),
    (f"/admin/tokens/{HUGE}/replace", 404),
    (f"/admin/tokens/{HUGE}/delete", 404),
    ("/admin/tokens/2147483648", 404),
    (f"/admin/users/{HUGE}", 404),
    (f"/admin/applications/{HUGE}", 404),
    (f"/admin/tenants/{HUGE}", 404),
    (f"/admin/audit?before={HUGE}", 400),
    ("/admin/tokens?q=%F4%8F%BF%BF", 400),         # U+10FFFF, the last code point
    ("/admin/tokens?q=abc%ED%9F%BF", 400),         # U+D7FF, followed by the first surrogate
    ("/admin/tokens?user=%EF%BF%BE", 400),         # U+FFFE, a noncharacter
    ("/admin/users?q=%E2%80%AE", 400),             # right-to-left override
    ("/admin/users/search?q=%F4%8F%BF%BF", 400),
    ("/admin/audit?actor=%F4%8F%BF%BF", 400),
])
def test_out_of_range_input_is_a_400_or_404_page(admin_client, setup, path, status):
    response = admin_client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:300]


@pytest.mark.both_databases  # PostgreSQL refuses integers past its columns' range
@pytest.mark.parametrize("path", [f"/admin/tokens/{HUGE}/extend", f"/admin/users/{HUGE}/end-sessions",
                                  f"/admin/users/{HUGE}/password"])
def test_posts_to_out_of_range_ids_are_404(admin_client, setup, path):
    assert admin_client.post(path, data={"csrf_token": form_csrf(admin_client, "/admin/tokens")}).status_code == 404


@pytest.mark.both_databases  # PostgreSQL refuses integers past its columns' range
def test_out_of_range_cursor_and_bulk_ids_are_ignored(admin_client, setup):
    issued = make_token(setup["app"])
    page = admin_client.get(f"/admin/tokens?after=2024-01-01T00:00:00~{HUGE}")
    assert page.status_code == 200 and issued.token.hint in page.get_data(as_text=True)
    response = admin_client.post("/admin/tokens/delete", data={
        "csrf_token": form_csrf(admin_client, "/admin/tokens"), "ids": [HUGE, "²"], "confirm": "yes"},
        follow_redirects=True)
    assert response.status_code == 200 and "Select at least one token to revoke." in response.get_data(as_text=True)
    assert tokens.find_by_value(issued.value) is not None

