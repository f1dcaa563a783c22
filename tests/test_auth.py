"""Login, logout and session control (SECURITY.md section G)."""

import pytest

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.conftest import csrf_token_from
from tests.factories import make_token, make_user


def test_login_page_has_labelled_fields(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'name="csrf_token"' in html


def test_admin_logs_in_and_reaches_the_portal(client, auth, admin_user):
    response = auth.login()
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"
    assert client.get("/admin").status_code == 200


@pytest.mark.real_password_hashes
@pytest.mark.parametrize("username, password", [("admin", "wrong password"), ("nobody", "correct horse battery")])
def test_unknown_user_and_wrong_password_get_the_same_message(client, auth, admin_user, username, password):
    response = auth.login(username, password)
    assert response.status_code == 200
    assert "Invalid username or password." in response.get_data(as_text=True)
    assert client.get("/admin").status_code == 302
    failed = db.session.query(AuditEvent).filter_by(action="login.failed").one()
    assert failed.actor == ("admin" if username == "admin" else "unknown user")  # never a name as typed
    assert password not in str(failed.details)


@pytest.mark.real_password_hashes
def test_passwords_are_scrypt_hashes_and_an_unknown_username_costs_as_much(client, auth):
    """The rest of the suite hashes with one PBKDF2 round; here the real thing: a stored
    password is a scrypt hash that logs in, and the hash an unknown username is checked
    against has the same parameters, so a failed login takes as long whether or not the
    account exists."""
    from portal.auth.views import DUMMY_HASH

    user = make_user(username="hashed", password="correct horse battery", is_admin=True)
    method = user.password_hash.split("$", 1)[0]
    assert method.startswith("scrypt:")
    assert DUMMY_HASH.split("$", 1)[0] == method
    assert auth.login("hashed", "correct horse battery").status_code == 303


@pytest.mark.parametrize("form, message", [
    ({"username": "", "password": "x"}, "Enter your username."),
    ({"username": "admin", "password": ""}, "Enter your password."),
    ({"username": "a" * 500, "password": "x"}, "Field cannot be longer than 150 characters."),
])
def test_bad_login_input_gets_a_clear_message(client, auth, admin_user, form, message):
    response = client.post("/login", data={**form, "csrf_token": auth.csrf()})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_login_without_csrf_is_refused(client, admin_user):
    response = client.post("/login", data={"username": "admin", "password": "correct horse battery"})
    assert response.status_code == 400
    assert client.get("/admin").status_code == 302


def test_deactivated_user_cannot_log_in(client, auth):
    make_user("ghost", active=False)
    assert "Invalid username or password." in auth.login("ghost").get_data(as_text=True)


def test_non_admin_is_refused_the_portal(client, auth):
    make_user("carol")
    response = auth.login("carol")
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/admin").status_code == 403


def test_anonymous_is_sent_to_login_with_next(client):
    response = client.get("/admin?tab=recent")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin?tab%3Drecent"


@pytest.mark.parametrize("next_url, expected", [
    ("/admin/audit", "/admin/audit"),
    ("https://evil.example/", "/admin"),
    ("//evil.example/", "/admin"),
    ("/\\evil.example", "/admin"),
    ("javascript:alert(1)", "/admin"),
])
def test_next_never_leaves_the_site(client, auth, admin_user, next_url, expected):
    response = auth.login(next_url=next_url)
    assert response.headers["Location"] == expected


def test_login_issues_a_new_session_and_the_old_cookie_is_not_authenticated(app, client, auth, admin_user):
    client.get("/login")
    pre_login = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    auth.login()
    post_login = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert pre_login != post_login
    other = app.test_client()
    other.set_cookie(app.config["SESSION_COOKIE_NAME"], pre_login)
    assert other.get("/admin").status_code == 302


def test_logout_ends_the_session_server_side(app, client, auth, admin_user):
    auth.login()
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert auth.logout().status_code == 303
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    assert replay.get("/admin").status_code == 302


def test_each_login_makes_a_session_token(client, auth, admin_user):
    auth.login()
    session_tokens = db.session.query(AccessToken).filter_by(source="session", user_id=admin_user.id).all()
    assert len(session_tokens) == 1
    assert session_tokens[0].application.name == "portal"


def test_deleting_a_users_tokens_logs_the_user_out(app, client, auth, admin_user):
    auth.login()
    assert client.get("/admin").status_code == 200
    tokens.delete_for_user(admin_user, actor="other-admin")
    assert client.get("/admin").status_code == 302
    # They may log in again: deleting tokens does not lock the account.
    assert auth.login().status_code == 303


def test_password_change_and_deactivation_end_sessions(app, client, auth, admin_user):
    auth.login()
    admin_user.set_password("a brand new password")
    db.session.commit()
    assert client.get("/admin").status_code == 302
    auth.login(password="a brand new password")
    admin_user.active = False
    db.session.commit()
    assert client.get("/admin").status_code == 302


class TestWithoutSessionTokens:
    @pytest.fixture
    def app_config(self):
        return {"SESSION_EXPIRED_CONTROL_ENABLED": False}

    def test_no_session_token_and_logout_still_ends_the_session(self, app, client, auth, admin_user):
        auth.login()
        assert db.session.query(AccessToken).filter_by(source="session").count() == 0
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
        auth.logout()
        replay = app.test_client()
        replay.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        assert replay.get("/admin").status_code == 302


class TestThrottling:
    @pytest.fixture
    def app_config(self):
        return {"LOGIN_RATE_LIMIT": "3 per minute", "LOGIN_IP_RATE_LIMIT": "100 per minute"}

    def test_too_many_failures_get_429_even_with_the_right_password(self, client, auth, admin_user):
        for _ in range(3):
            assert auth.login(password="wrong").status_code == 200
        response = auth.login()
        assert response.status_code == 429
        assert "Too many attempts" in response.get_data(as_text=True)
        assert int(response.headers["Retry-After"]) > 0
        assert client.get("/admin").status_code == 302

    def test_successful_logins_do_not_count(self, client, auth, admin_user):
        for _ in range(5):
            assert auth.login().status_code == 303
            auth.logout()

    def test_rate_limit_headers_are_on_the_login_view_only(self, client, auth, admin_user):
        assert int(auth.login(password="wrong").headers["X-RateLimit-Remaining"]) >= 2
        api = client.get("/api/v1/access-tokens", headers={"Authorization": f"Bearer {make_token(master=True).value}"})
        assert api.status_code == 200 and "X-RateLimit-Remaining" not in api.headers

    def test_the_limit_is_per_account(self, client, auth, admin_user):
        make_user("dave")
        for _ in range(3):
            auth.login(password="wrong")
        assert auth.login().status_code == 429
        assert auth.login("dave").status_code == 303


def test_logout_needs_csrf(client, auth, admin_user):
    auth.login()
    assert client.post("/logout").status_code == 400
    assert client.get("/admin").status_code == 200


def test_security_headers_on_html_pages(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_session_cookie_flags(app, client, auth, admin_user):
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_csrf_helper_reads_the_login_page(client):
    assert csrf_token_from(client.get("/login").get_data(as_text=True))


def test_security_headers_on_json_and_a_views_own_header_kept(app, client):
    @app.get("/_header_probe")
    def header_probe():
        return {"ok": True}, 200, {"X-Frame-Options": "SAMEORIGIN"}

    response = client.get("/_header_probe")
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/.well-known/openid-configuration").headers["Referrer-Policy"] == "same-origin"


def test_no_cookie_means_an_empty_session_and_no_cookie_back(client):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_a_signed_in_session_still_reads_its_cookie(app, admin_client):
    assert admin_client.get("/admin").status_code == 200
    admin_client.delete_cookie(app.config["SESSION_COOKIE_NAME"])
    assert admin_client.get("/admin").status_code == 302
