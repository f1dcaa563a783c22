"""Issue 15's conformance points, through the real endpoints: `iss` on every authorization
response (RFC 9207), authorization requests sent by POST (OIDC Core 3.1.2.1) beside a
consent form that keeps its CSRF check, `redirect_uri` required in OpenID requests, and
`updated_at` that moves only when the profile does. tests/oauth/test_openid_client.py runs
the same points with panva's openid-client against gunicorn."""

import html
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AuthorizationCode, User
from tests.conftest import csrf_token_from
from tests.oauth.conftest import ACTION_PATTERN, REDIRECT_URI, pkce_pair, query_of


def code_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuthorizationCode))


def issuer_of(client) -> str:
    return client.get("/.well-known/openid-configuration").get_json()["issuer"]


def assert_redirect_with_iss(response, client, error=None):
    """A redirect to the client carrying exactly one `iss`, the discovery issuer."""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    assert location.count("iss=") == 1, location
    query = query_of(location)
    assert query["iss"] == issuer_of(client)
    if error:
        assert query["error"] == error, query
        assert query["state"] == "123123"
        assert "code" not in query
    return query


# --- RFC 9207: iss on error responses too ----------------------------------------------

def test_login_required_carries_iss(flow):
    assert_redirect_with_iss(flow.authorize(prompt="none"), flow.client, "login_required")


def test_consent_required_carries_iss(logged_in):
    assert_redirect_with_iss(logged_in.authorize(prompt="none"), logged_in.client, "consent_required")


@pytest.mark.parametrize(("overrides", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "unsupported_response_type"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"scope": "openid admin"}, "invalid_scope"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
])
def test_every_error_redirect_carries_iss(logged_in, overrides, error):
    assert_redirect_with_iss(logged_in.authorize(**overrides), logged_in.client, error)
    assert code_rows() == 0


def test_denied_and_granted_responses_carry_iss_once(logged_in):
    assert_redirect_with_iss(logged_in.consent(logged_in.authorize(), "deny"), logged_in.client, "access_denied")
    query = assert_redirect_with_iss(logged_in.consent(logged_in.authorize()), logged_in.client)
    assert query["code"]


def test_a_public_client_without_pkce_gets_iss_on_its_error(public_flow):
    public_flow.login()
    assert_redirect_with_iss(public_flow.authorize(), public_flow.client, "invalid_request")


# --- POST /authorize --------------------------------------------------------------------

def test_an_authorization_request_by_post_gets_the_consent_page_then_a_code(logged_in):
    verifier, challenge = pkce_pair()
    params = logged_in.params(code_challenge=challenge, code_challenge_method="S256")
    page = logged_in.client.post("/authorize", data=params)  # form-encoded, no CSRF token: a client's page
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    action = html.unescape(ACTION_PATTERN.search(text).group(1))
    assert action.startswith("/authorize?") and "code_challenge=" + challenge in action
    query = assert_redirect_with_iss(logged_in.consent(page), logged_in.client)
    response = logged_in.token(query["code"], code_verifier=verifier)
    assert response.status_code == 200 and "id_token" in response.get_json()


def test_post_with_consent_already_given_redirects_with_a_code(logged_in):
    logged_in.code()  # consent stored
    response = logged_in.client.post("/authorize/", data=logged_in.params())
    assert "code" in assert_redirect_with_iss(response, logged_in.client)


def posted_then_got(client, data):
    """A POST that sees no session is sent on as the same request by GET (the browser
    sends its SameSite=Lax cookie there); the answer to that GET."""
    response = client.post("/authorize", data=data)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/authorize?") and query_of(location) == data
    return client.get(location)


def test_post_without_a_session_goes_to_login_and_back_by_get(flow):
    response = posted_then_got(flow.client, flow.params(nonce="n-1"))
    assert response.status_code == 302
    login = response.headers["Location"]
    assert "/login?next=" in login and "nonce%3Dn-1" in login
    flow.login()
    again = flow.client.get(query_of(login)["next"])
    assert again.status_code == 200 and "consent-form" in again.get_data(as_text=True)


def test_post_with_prompt_none_and_no_session_is_login_required(flow):
    response = posted_then_got(flow.client, flow.params(prompt="none"))
    assert_redirect_with_iss(response, flow.client, "login_required")


@pytest.mark.parametrize("path", ["/authorize", "/o/authorize"])  # GeoNode's path: a CSRF-exempt blueprint
@pytest.mark.parametrize("token", [None, "forged"])
def test_the_consent_post_still_needs_its_csrf_token(logged_in, token, path):
    page = logged_in.client.get(path + "?" + urlencode(logged_in.params()))
    action = html.unescape(ACTION_PATTERN.search(page.get_data(as_text=True)).group(1))
    assert action.startswith(path + "?")
    data = {"decision": "allow", **({"csrf_token": token} if token else {})}
    response = logged_in.client.post(action, data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert code_rows() == 0


def test_a_cross_site_consent_post_is_refused_even_with_a_token(logged_in):
    page = logged_in.authorize()
    text = page.get_data(as_text=True)
    action = html.unescape(ACTION_PATTERN.search(text).group(1))
    response = logged_in.client.post(action, data={"decision": "allow", "csrf_token": csrf_token_from(text)},
                                     headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400 and code_rows() == 0


def test_a_decision_sent_with_the_request_in_the_body_needs_csrf_too(logged_in):
    response = logged_in.client.post("/authorize", data={**logged_in.params(), "decision": "allow"})
    assert response.status_code == 400 and code_rows() == 0


# --- redirect_uri required with openid ---------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_openid_request_without_redirect_uri_gets_the_error_page(logged_in, method):
    params = logged_in.params(redirect_uri=None)
    if method == "GET":
        response = logged_in.client.get("/authorize?" + urlencode(params))
    else:
        response = logged_in.client.post("/authorize", data=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "redirect_uri is required" in response.get_data(as_text=True)
    assert code_rows() == 0


def test_prompt_none_without_redirect_uri_is_not_redirected_either(flow):
    response = flow.authorize(redirect_uri=None, prompt="none")
    assert response.status_code == 400 and "Location" not in response.headers


# --- updated_at --------------------------------------------------------------------------

def userinfo_updated_at(flow) -> int:
    return flow.userinfo(flow.tokens()["access_token"]).get_json()["updated_at"]


def test_updated_at_stays_across_logins_and_moves_with_a_profile_change(flow, auth, admin_user, move_clock):
    flow.login()
    first = userinfo_updated_at(flow)
    move_clock(120)
    flow.client.post("/logout", data={"csrf_token": auth.csrf("/")})
    flow.login()  # sets last_login_at and ends the old session: neither is a profile change
    tokens.end_login_sessions(select(User.id).where(User.id == flow.user.id))  # bumps session_version
    db.session.commit()
    flow.login()
    assert userinfo_updated_at(flow) == first

    move_clock(240)
    user = db.session.get(User, flow.user.id)
    user.name = "Alice Pleasance Liddell"
    db.session.commit()
    assert userinfo_updated_at(flow) == clock.timestamp(clock.now()) > first


def test_updated_at_moves_only_when_a_claim_changes(app, oauth_user, move_clock):
    before = oauth_user.updated_at
    move_clock(60)
    user = db.session.get(User, oauth_user.id)
    user.name = user.name  # the same value: no change
    user.is_admin = False
    user.session_version += 1
    db.session.commit()
    assert db.session.get(User, oauth_user.id).updated_at == before
    user.email = "alice@wonderland.example"
    db.session.commit()
    assert db.session.get(User, oauth_user.id).updated_at > before
