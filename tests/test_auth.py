"""Login, logout and session control (SECURITY.md section G)."""

import pytest

from portal import tokens
from portal.domain import users
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.conftest import Auth, csrf_token_from
from tests.factories import make_user


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
    users.set_password(admin_user, "a brand new password")
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


STRANGER, OWNER, ELSEWHERE = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def attempt(client, password="correct horse battery", address=STRANGER, username="admin"):
    """One sign-in from `address` through the real form, with whatever cookies `client` holds."""
    page = client.get("/login", environ_base={"REMOTE_ADDR": address})
    return client.post("/login", environ_base={"REMOTE_ADDR": address}, data={
        "username": username, "password": password, "csrf_token": csrf_token_from(page.get_data(as_text=True))})


class TestThrottling:
    """docs/operations.md: Throttling. The account's lockout (3 here) binds strangers; a browser holding
    the account's device cookie counts in its own bucket (2 here) instead."""

    @pytest.fixture
    def app_config(self):
        return {"LOGIN_RATE_LIMIT": "3 per minute", "LOGIN_IP_RATE_LIMIT": "100 per minute",
                "LOGIN_DEVICE_RATE_LIMIT": "2 per minute"}

    @pytest.fixture
    def owner(self, app, admin_user):
        """The owner's browser: signed in once (so it holds a device cookie), then logged out."""
        browser = app.test_client()
        assert attempt(browser, address=OWNER).status_code == 303
        Auth(browser).logout()
        return browser

    def lock_out(self, app, username="admin"):
        stranger = app.test_client()
        assert [attempt(stranger, "wrong", username=username).status_code for _ in range(3)] == [200] * 3
        assert attempt(stranger, username=username).status_code == 429

    def test_without_a_device_cookie_too_many_failures_get_429_even_with_the_right_password(self, app, admin_user):
        stranger = app.test_client()
        for _ in range(3):
            assert attempt(stranger, "wrong").status_code == 200
        response = attempt(stranger, address=ELSEWHERE)
        assert response.status_code == 429
        assert "Too many attempts" in response.get_data(as_text=True)
        assert 0 < int(response.headers["Retry-After"]) <= 60
        assert stranger.get("/admin").status_code == 302

    def test_a_refused_attempt_checks_no_password(self, app, admin_user):
        self.lock_out(app)
        failed = db.session.query(AuditEvent).filter_by(action="login.failed").count()
        assert attempt(app.test_client(), "wrong").status_code == 429
        assert db.session.query(AuditEvent).filter_by(action="login.failed").count() == failed == 3

    def test_a_correct_sign_in_consumes_nothing(self, app, admin_user):
        stranger = app.test_client()
        assert [attempt(stranger, "wrong").status_code for _ in range(2)] == [200, 200]
        assert attempt(app.test_client(), address=OWNER).status_code == 303  # takes its attempt back
        assert attempt(stranger, "wrong").status_code == 200
        assert attempt(stranger, "wrong").status_code == 429

    def test_the_limit_is_per_account(self, app, admin_user):
        make_user("dave")
        self.lock_out(app)
        assert attempt(app.test_client(), username="dave").status_code == 303

    def test_the_owner_with_a_device_cookie_gets_in_while_strangers_have_locked_the_account(self, app, owner):
        """Issue 22 point 6: five wrong passwords from anywhere used to lock an administrator out."""
        self.lock_out(app)
        assert attempt(owner, address=ELSEWHERE).status_code == 303
        assert owner.get("/admin").status_code == 200

    def test_the_device_cookie_names_the_account_case_insensitively(self, app, owner):
        self.lock_out(app, username="ADMIN")
        assert attempt(owner, username="Admin").status_code == 303

    def test_a_forged_or_another_accounts_device_cookie_does_not_help(self, app, admin_user):
        from itsdangerous import URLSafeTimedSerializer

        from portal.auth.devices import SALT

        dave = app.test_client()
        make_user("dave")
        assert attempt(dave, username="dave").status_code == 303
        Auth(dave).logout()
        self.lock_out(app)
        assert attempt(dave).status_code == 429  # dave's cookie names dave
        forged = URLSafeTimedSerializer("another key", salt=SALT).dumps(["admin", "device"])
        for value in (forged, "garbage", dave.get_cookie("tessera_device", path="/login").value + "x"):
            browser = app.test_client()
            browser.set_cookie("tessera_device", value, path="/login")
            assert attempt(browser).status_code == 429

    def test_the_device_bucket_limits_a_stolen_cookie(self, app, owner):
        thief = app.test_client()
        thief.set_cookie("tessera_device", owner.get_cookie("tessera_device", path="/login").value, path="/login")
        assert [attempt(thief, "wrong").status_code for _ in range(2)] == [200, 200]
        assert attempt(thief).status_code == 429  # the stolen device's bucket is spent, the password unchecked
        assert attempt(app.test_client()).status_code == 303  # the account's own counter was not touched

    def test_the_device_cookie(self, app, admin_user):
        cookie = next(value for value in attempt(app.test_client()).headers.getlist("Set-Cookie")
                      if value.startswith("tessera_device="))
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
        assert flags["path"] == "Path=/login" and flags["samesite"] == "SameSite=Lax" and "httponly" in flags
        assert flags["max-age"] == "Max-Age=2592000" and "secure" not in flags


def test_the_device_cookie_is_secure_with_secure_session_cookies(tmp_path, database_url):
    from portal import create_app
    from tests.conftest import base_config

    app = create_app(base_config(tmp_path, database_url, SESSION_COOKIE_SECURE=True))
    with app.test_request_context("/login", base_url="https://localhost"):
        from flask import make_response

        from portal.auth.devices import device_for, remember_device

        response = make_response("")
        remember_device(response, "Admin")
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-tessera_device=") and "; Secure" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    with app.test_request_context("/login", headers={"Cookie": f"__Secure-tessera_device={value}"}):
        assert device_for("ADMIN") and device_for("other") is None


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
