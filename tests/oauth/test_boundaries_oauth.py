"""Issue 13's OAuth-side boundaries: duplicated parameters, redirect URI schemes,
re-authentication that does not log anyone out, client scopes, login timing and what a
failed login leaves in the audit log."""

import pytest
from sqlalchemy import func, select

from portal.domain.applications import ApplicationError
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_user
from tests.oauth.conftest import PASSWORD, query_of


@pytest.fixture
def service(app):
    return make_application(name="svc", grant_types=["client_credentials"], scope="api")


def test_token_refuses_a_parameter_sent_twice(client, service):
    """A good then a bad client_secret used to authenticate (the first one won)."""
    body = (f"grant_type=client_credentials&client_id={service.client_id}"
            f"&client_secret={service.test_secret}&client_secret=wrong-secret-wrong")
    response = client.post("/token", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert "client_secret parameter was sent more than once" in response.get_json()["error_description"]
    assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 0


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_introspect_and_revoke_refuse_a_parameter_sent_twice(client, service, path):
    response = client.post(path, data="token=a&token=b", content_type="application/x-www-form-urlencoded",
                           auth=(service.client_id, service.test_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


@pytest.mark.token_format
def test_client_credentials_asking_for_an_unregistered_scope_is_invalid_scope(client, service):
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": "api admin"},
                           auth=(service.client_id, service.test_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"
    granted = client.post("/token", data={"grant_type": "client_credentials", "scope": "api"},
                          auth=(service.client_id, service.test_secret))
    assert granted.status_code == 200 and granted.get_json()["scope"] == "api"


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "data:text/html,hi", "vbscript:msgbox(1)",
                                 "JavaScript://example.org/%0aalert(1)", "file:///etc/passwd"])
def test_script_and_other_one_word_schemes_are_refused(app, uri):
    with pytest.raises(ApplicationError, match="reverse-domain form"):
        make_application(name="bad", redirect_uris=[uri])


def test_a_native_apps_private_use_scheme_is_accepted(app):
    application = make_application(name="native", client_type="public", redirect_uris=["com.example.app:/callback"])
    assert application.redirect_uris == ["com.example.app:/callback"]


def test_prompt_login_asks_for_the_password_without_ending_the_session(logged_in):
    """A cross-site link with prompt=login used to log the user out before any login."""
    before = db.session.scalar(select(func.count()).select_from(AccessToken).where(AccessToken.source == "session"))
    response = logged_in.authorize(prompt="login")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "again=1" in response.headers["Location"]
    assert logged_in.client.get("/").status_code == 200  # still logged in
    page = logged_in.client.get(response.headers["Location"])
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)

    form = {"username": logged_in.user.username, "password": PASSWORD,
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "next": query_of(response.headers["Location"])["next"]}
    back = logged_in.client.post("/login", data=form)
    assert back.status_code == 303 and back.headers["Location"].startswith("/authorize")
    assert "prompt" not in back.headers["Location"]
    # The old session's token was replaced by the new one, not added to it.
    after = db.session.scalar(select(func.count()).select_from(AccessToken).where(AccessToken.source == "session"))
    assert after == before


def test_a_wrong_password_at_re_authentication_leaves_the_session_alone(logged_in):
    response = logged_in.authorize(prompt="login")
    page = logged_in.client.get(response.headers["Location"])
    failed = logged_in.client.post("/login", data={"username": logged_in.user.username, "password": "wrong",
                                                   "csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert failed.status_code == 200
    assert logged_in.client.get("/").status_code == 200


@pytest.mark.real_password_hashes
def test_an_account_without_password_takes_as_long_as_any_other(client, monkeypatch):
    """API-made profiles may have no password: they used to fail in ~4 ms, others in ~100 ms."""
    import portal.auth.views as views

    make_user(username="nopass", password=None)
    compared = []
    real = views.check_password_hash
    monkeypatch.setattr(views, "check_password_hash", lambda stored, given: compared.append(stored) or real(
        stored, given))
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "nopass", "password": "anything", "csrf_token": token})
    assert response.status_code == 200 and compared == [views.DUMMY_HASH]


def test_an_unknown_username_is_not_stored_as_typed(client):
    typed = "my-secret-password-in-the-wrong-box"
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": typed, "password": "x", "csrf_token": token})
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login.failed"))
    assert event.actor == "unknown user"
    assert typed not in f"{event.actor} {event.target_label} {event.details}"


def test_a_known_username_failure_names_the_account(client):
    user = make_user(username="carol")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "Carol", "password": "wrong", "csrf_token": token})
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login.failed"))
    assert event.actor == "carol" and event.target_id == str(user.id)
