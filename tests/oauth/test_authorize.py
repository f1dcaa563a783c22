"""The authorization endpoint: SECURITY.md section A (and the PKCE checks made there, B1–B4)."""

import html

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuthorizationCode, Consent
from tests.factories import make_application
from tests.conftest import Auth, csrf_token_from
from tests.oauth.conftest import ACTION_PATTERN, REDIRECT_URI, Flow, pkce_pair, query_of


def code_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuthorizationCode))


def assert_error_page(response):
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert "cannot be completed" in response.get_data(as_text=True)
    assert code_rows() == 0


def assert_redirect_error(response, error, state="123123"):
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    query = query_of(location)
    assert query["error"] == error, query
    assert query.get("state") == state
    assert "code" not in query and "access_token" not in location
    assert code_rows() == 0


def test_login_then_consent_then_code_with_state(flow):
    first = flow.authorize()
    assert first.status_code == 302 and "/login?next=" in first.headers["Location"]
    next_url = query_of(first.headers["Location"])["next"]
    login = flow.auth.login(username="alice", password="correct horse battery", next_url=next_url)
    assert login.status_code == 303 and login.headers["Location"].startswith("/authorize?")
    page = flow.client.get(login.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "demo" in text and "Your email address" in text and 'name="decision" value="allow"' in text
    assert page.headers["Cache-Control"] == "no-store"
    done = flow.consent(page)
    assert done.status_code == 302, (done.headers, done.get_data(as_text=True)[:300])
    query = query_of(done.headers["Location"])
    assert query["state"] == "123123" and query["code"]
    assert query["iss"] == "http://localhost"


def test_consent_is_remembered_per_user_application_and_scopes(logged_in):
    logged_in.code(scope="openid email")
    again = logged_in.authorize(scope="email openid")  # reordered: same scopes
    assert again.status_code == 302 and "code" in query_of(again.headers["Location"])
    wider = logged_in.authorize(scope="openid email profile")
    assert wider.status_code == 200  # a new scope asks again
    asked = logged_in.authorize(scope="openid", prompt="consent")
    assert asked.status_code == 200


# A1, A3
def test_unregistered_redirect_uri_gets_error_page(logged_in):
    assert_error_page(logged_in.authorize(redirect_uri="http://evil.example/"))


def test_unknown_or_missing_client_gets_error_page(logged_in):
    assert_error_page(logged_in.authorize(client_id="nobody"))
    assert_error_page(logged_in.authorize(client_id=None))


# A2
@pytest.mark.parametrize("uri", [
    "http://example.org", "http://example.org//", "HTTP://EXAMPLE.ORG/", "http://Example.org/",
    "http://example.org/?x=1", "http://example.org/cb", "http://example.org/#frag",
    "http://example.org@evil.example/", "https://example.org/", "http://example.org:80/",
])
def test_near_miss_redirect_uri_gets_error_page(logged_in, uri):
    assert_error_page(logged_in.authorize(redirect_uri=uri))


def test_near_miss_is_refused_before_login_too(flow):
    assert_error_page(flow.authorize(redirect_uri="http://example.org/?next=evil"))


# A4
def test_two_registered_uris_and_none_sent_gets_error_page(client, auth, oauth_user):
    application = make_application(name="two", redirect_uris=[REDIRECT_URI, "http://example.org/cb"])
    flow = Flow(client, auth, application, application.test_secret, oauth_user)
    flow.login()
    assert_error_page(flow.authorize(redirect_uri=None))


def test_one_registered_uri_may_be_omitted_outside_openid(logged_in):
    # With openid in the scope it is required (tests/oauth/test_conformance.py).
    response = logged_in.authorize(redirect_uri=None, scope="email profile")
    assert response.status_code == 200


# A5
def test_missing_response_type_is_a_redirect_error(logged_in):
    response = logged_in.authorize(response_type=None)
    assert_redirect_error(response, "unsupported_response_type")


# A6
@pytest.mark.parametrize("response_type", ["token", "code token", "id_token token", "id_token"])
def test_implicit_and_hybrid_are_refused(logged_in, response_type):
    assert_redirect_error(logged_in.authorize(response_type=response_type), "unsupported_response_type")


# A7 (ext): a scope the client may not have is refused, not silently dropped
def test_unregistered_scope_is_invalid_scope(logged_in):
    response = logged_in.authorize(scope="openid admin")
    assert_redirect_error(response, "invalid_scope")
    assert query_of(response.headers["Location"])["error_description"] == "This client may not ask for: admin"


def test_an_unquotable_unregistered_scope_is_still_a_clean_invalid_scope(logged_in):
    assert_redirect_error(logged_in.authorize(scope='openid "x\\'), "invalid_scope")


# A8 (ext)
def test_state_sent_twice_is_refused(logged_in):
    response = logged_in.client.get(
        "/authorize?client_id=651462&redirect_uri=http://example.org/&response_type=code&state=a&state=b")
    assert response.status_code == 400 and code_rows() == 0


# A9
def test_prompt_none_without_session_is_login_required(flow):
    response = flow.authorize(prompt="none")
    assert_redirect_error(response, "login_required")


# A10 (ext)
def test_prompt_none_without_consent_is_consent_required(logged_in):
    assert_redirect_error(logged_in.authorize(prompt="none"), "consent_required")


def test_prompt_none_with_consent_gives_a_code(logged_in):
    logged_in.code()
    response = logged_in.authorize(prompt="none")
    assert response.status_code == 302 and "code" in query_of(response.headers["Location"])


# A11
def test_consent_post_without_csrf_is_refused(logged_in):
    page = logged_in.authorize()
    response = logged_in.consent(page, csrf=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert code_rows() == 0
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_consent_post_with_another_sessions_csrf_is_refused(app, logged_in):
    other = Flow(app.test_client(), Auth(app.test_client()), logged_in.application, None, logged_in.user)
    other.auth.client = other.client
    other.login()
    foreign = csrf_token_from(other.authorize().get_data(as_text=True))
    page = logged_in.authorize()
    action = html.unescape(ACTION_PATTERN.search(page.get_data(as_text=True)).group(1))
    response = logged_in.client.post(action, data={"decision": "allow", "csrf_token": foreign})
    assert response.status_code == 400 and "Location" not in response.headers
    assert code_rows() == 0


# A12 (ext)
def test_deny_is_access_denied(logged_in):
    page = logged_in.authorize()
    response = logged_in.consent(page, decision="deny")
    assert_redirect_error(response, "access_denied")
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


# A14 (ext)
def test_unknown_parameters_are_ignored(logged_in):
    assert logged_in.code(extra="foobar", scope="profile openid email")


# A15 (ext)
def test_login_during_the_flow_answers_303(flow):
    response = flow.auth.login(username="alice", password="correct horse battery",
                               next_url="/authorize?client_id=651462")
    assert response.status_code == 303


# prompt=login and max_age
def test_prompt_login_asks_for_login_again_without_looping(logged_in):
    response = logged_in.authorize(prompt="login")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "prompt" not in response.headers["Location"]


def test_max_age_passed_asks_for_login(logged_in, move_clock):
    logged_in.code()
    move_clock(120)
    response = logged_in.authorize(max_age="60")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# B1
def test_public_client_without_challenge_is_refused_at_authorize(public_flow):
    public_flow.login()
    response = public_flow.authorize()
    assert_redirect_error(response, "invalid_request")


# B2, B3, B4
@pytest.mark.parametrize("method", ["plain", None, "s256"])
def test_challenge_methods_other_than_s256_are_refused(public_flow, method):
    public_flow.login()
    _, challenge = pkce_pair()
    response = public_flow.authorize(code_challenge=challenge, code_challenge_method=method)
    assert_redirect_error(response, "invalid_request")


@pytest.mark.parametrize("challenge", ["a" * 42, "a" * 42 + "+/", "a" * 129])
def test_malformed_challenges_are_refused(public_flow, challenge):
    public_flow.login()
    response = public_flow.authorize(code_challenge=challenge, code_challenge_method="S256")
    assert_redirect_error(response, "invalid_request")


def test_confidential_client_plain_is_refused_too(logged_in):
    _, challenge = pkce_pair()
    assert_redirect_error(logged_in.authorize(code_challenge=challenge, code_challenge_method="plain"),
                          "invalid_request")


# A13 (ext)
@pytest.mark.parametrize(("parameter", "error"), [("request", "request_not_supported"),
                                                  ("request_uri", "request_uri_not_supported")])
def test_request_objects_are_not_supported(logged_in, parameter, error):
    response = logged_in.authorize(**{parameter: "eyJhbGciOiJub25lIn0.e30."})
    assert_redirect_error(response, error)
