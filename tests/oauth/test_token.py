"""The token endpoint: PKCE at /token (B5–B7), codes (C), refresh tokens (D)."""

import pytest
from sqlalchemy import func, select

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuthorizationCode
from tests.factories import make_application
from tests.oauth.conftest import CLIENT_ID, REDIRECT_URI, Flow, pkce_pair


def token_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken).where(AccessToken.source != "session"))


def assert_error(response, error, status=400):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    assert "access_token" not in response.get_json()


@pytest.mark.token_format
def test_readme_exchange_gives_every_field(logged_in):
    response = logged_in.token(logged_in.code())
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    # C9
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    # Stored by hash only, as one row of the token table, with its source.
    row = tokens.find_by_value(body["access_token"])
    assert row.source == "authorization_code" and row.user.username == "alice"
    assert row.token_hash != body["access_token"] and row.refresh_token_hash == tokens.hash_value(body["refresh_token"])
    assert row.grant_id
    code_row = db.session.scalar(select(AuthorizationCode))
    assert code_row.used_at is not None and code_row.grant_id == row.grant_id


@pytest.mark.token_format
def test_expires_in_follows_the_setting(app, logged_in):
    app.config["OIDC_TOKEN_EXPIRE"] = 120
    assert logged_in.tokens()["expires_in"] == 120


def test_error_responses_are_not_stored_either(logged_in):
    response = logged_in.token("nope")
    assert_error(response, "invalid_grant")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"


# B5, B6
def public_code(public_flow, challenge):
    public_flow.login()
    return public_flow.code(code_challenge=challenge, code_challenge_method="S256")


@pytest.mark.token_format
def test_public_client_with_pkce_gets_tokens(public_flow):
    verifier, challenge = pkce_pair()
    code = public_code(public_flow, challenge)
    response = public_flow.token(code, secret=None, code_verifier=verifier)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["refresh_token"]


def test_wrong_code_verifier_is_invalid_grant(public_flow):
    _, challenge = pkce_pair()
    code = public_code(public_flow, challenge)
    other_verifier, _ = pkce_pair()
    assert_error(public_flow.token(code, secret=None, code_verifier=other_verifier), "invalid_grant")
    assert token_rows() == 0


def test_missing_code_verifier_is_refused(public_flow, logged_in):
    _, challenge = pkce_pair()
    code = public_code(public_flow, challenge)
    assert_error(public_flow.token(code, secret=None), "invalid_request")
    # confidential client that sent a challenge: the verifier is required too
    code = logged_in.code(code_challenge=challenge, code_challenge_method="S256")
    assert_error(logged_in.token(code), "invalid_request")
    assert token_rows() == 0


@pytest.mark.token_format
def test_confidential_client_with_pkce_gets_tokens(logged_in):
    verifier, challenge = pkce_pair()
    code = logged_in.code(code_challenge=challenge, code_challenge_method="S256")
    assert logged_in.token(code, code_verifier=verifier).status_code == 200


# B7
def test_verifier_without_challenge_is_a_downgrade(logged_in):
    verifier, _ = pkce_pair()
    assert_error(logged_in.token(logged_in.code(), code_verifier=verifier), "invalid_request")
    assert token_rows() == 0


# C1
@pytest.mark.both_databases  # a code is claimed by a conditional write
@pytest.mark.token_format
def test_code_replay_is_refused_and_ends_the_first_tokens(logged_in):
    code = logged_in.code()
    first = logged_in.token(code).get_json()
    assert logged_in.userinfo(first["access_token"]).status_code == 200
    assert_error(logged_in.token(code), "invalid_grant")
    assert logged_in.userinfo(first["access_token"]).status_code == 401
    assert logged_in.introspect(first["access_token"]).get_json() == {"active": False}
    assert_error(logged_in.refresh(first["refresh_token"]), "invalid_grant")


# C2
def test_expired_code_is_invalid_grant(logged_in, move_clock):
    code = logged_in.code()
    move_clock(61)
    assert_error(logged_in.token(code), "invalid_grant")


# C3
@pytest.mark.token_format
def test_code_of_another_client_is_invalid_grant(logged_in, client, auth, oauth_user):
    other = make_application(name="other", redirect_uris=[REDIRECT_URI])
    code = logged_in.code()
    response = logged_in.token(code, client_id=other.client_id, secret=other.test_secret)
    assert_error(response, "invalid_grant")
    assert token_rows() == 0
    assert logged_in.token(code).status_code == 200  # the code was not burnt by the attempt


# C4
@pytest.mark.parametrize("uri", ["http://example.org/cb", "http://example.org", None])
def test_redirect_uri_must_match_the_authorize_request(logged_in, uri):
    code = logged_in.code()
    response = logged_in.client.post("/token", data={k: v for k, v in {
        "grant_type": "authorization_code", "code": code, "redirect_uri": uri, "client_id": CLIENT_ID,
        "client_secret": logged_in.secret}.items() if v is not None})
    assert_error(response, "invalid_grant")


# C5, C6
def test_wrong_secret_is_invalid_client(logged_in):
    response = logged_in.token(logged_in.code(), secret="wrong-secret-wrong-secret")
    assert_error(response, "invalid_client", 401)


@pytest.mark.token_format
def test_basic_client_using_post_is_invalid_client(client, auth, oauth_user):
    application = make_application(name="basic", redirect_uris=[REDIRECT_URI],
                                   token_endpoint_auth_method="client_secret_basic")
    flow = Flow(client, auth, application, application.test_secret, oauth_user)
    flow.login()
    code = flow.code()
    assert_error(flow.token(code), "invalid_client", 401)
    bad = client.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                      auth=(application.client_id, "wrong-secret-wrong"))
    assert_error(bad, "invalid_client", 401)
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    good = client.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                       auth=(application.client_id, application.test_secret))
    assert good.status_code == 200


@pytest.mark.token_format
def test_a_default_confidential_client_accepts_basic_and_the_form_body(logged_in):
    assert logged_in.application.token_auth_methods == ("client_secret_basic", "client_secret_post")
    assert logged_in.token(logged_in.code()).status_code == 200  # the secret in the form body
    response = logged_in.client.post("/token", auth=(logged_in.client_id, logged_in.secret), data={
        "grant_type": "authorization_code", "code": logged_in.code(), "redirect_uri": REDIRECT_URI})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_client_registered_for_one_method_is_told_what_it_sent_and_what_it_accepts(client, auth, oauth_user):
    application = make_application(name="post-only", redirect_uris=[REDIRECT_URI],
                                   token_endpoint_auth_method="client_secret_post")
    flow = Flow(client, auth, application, application.test_secret, oauth_user)
    flow.login()
    response = client.post("/token", auth=(application.client_id, application.test_secret), data={
        "grant_type": "authorization_code", "code": flow.code(), "redirect_uri": REDIRECT_URI})
    assert_error(response, "invalid_client", 401)
    assert response.get_json()["error_description"] == (
        f"The request authenticated with client_secret_basic; client {application.client_id!r} "
        "accepts client_secret_post.")
    wrong = flow.token(flow.code(), secret="wrong-secret-wrong-secret")
    assert wrong.get_json()["error_description"] == "The client secret sent with client_secret_post is wrong."


def test_confidential_client_cannot_drop_its_secret(logged_in):
    assert_error(logged_in.token(logged_in.code(), secret=""), "invalid_client", 401)


def test_public_client_sending_a_secret_gets_no_500(public_flow):
    verifier, challenge = pkce_pair()
    code = public_code(public_flow, challenge)
    response = public_flow.token(code, secret="made-up-secret-value", code_verifier=verifier)
    assert response.status_code in (400, 401)


# C7
def test_password_grant_is_unsupported(logged_in):
    response = logged_in.client.post("/token", data={"grant_type": "password", "username": "alice",
                                                     "password": "correct horse battery", "client_id": CLIENT_ID,
                                                     "client_secret": logged_in.secret})
    assert_error(response, "unsupported_grant_type")


def test_grant_the_client_is_not_registered_for(client, auth, oauth_user):
    application = make_application(name="coded", redirect_uris=[REDIRECT_URI], grant_types=["authorization_code"])
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": application.client_id,
                                           "client_secret": application.test_secret})
    assert_error(response, "unauthorized_client")


# C8
@pytest.mark.token_format
def test_token_by_get_is_405(logged_in):
    code = logged_in.code()
    response = logged_in.client.get(f"/token?grant_type=authorization_code&code={code}&client_id={CLIENT_ID}")
    assert response.status_code == 405
    assert logged_in.token(code).status_code == 200


@pytest.mark.token_format
def test_trailing_slash_token_path(logged_in):
    code = logged_in.code()
    response = logged_in.client.post("/token/", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID,
                                                      "client_secret": logged_in.secret})
    assert response.status_code == 200


# client credentials
@pytest.mark.token_format
def test_client_credentials_token_is_a_row_without_user_or_refresh(client):
    application = make_application(name="machine", scope="api")
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": application.client_id,
                                           "client_secret": application.test_secret, "scope": "api"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert "refresh_token" not in body and "id_token" not in body and body["expires_in"] == 3600
    row = tokens.find_by_value(body["access_token"])
    assert row.source == "client_credentials" and row.user is None and row.scope == "api"


# D1
@pytest.mark.both_databases  # a refresh token is claimed by a conditional write
@pytest.mark.token_format
def test_refresh_rotates_and_reuse_ends_the_family(logged_in):
    first = logged_in.tokens()
    response = logged_in.refresh(first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 3600
    assert "id_token" not in second
    row = tokens.find_by_value(second["access_token"])
    assert row.source == "refresh_token" and row.grant_id == tokens.find_by_value(first["access_token"]).grant_id
    # the rotated-out access token ended with it
    assert logged_in.userinfo(first["access_token"]).status_code == 401
    assert logged_in.userinfo(second["access_token"]).status_code == 200
    # reuse of R1: refused, and R2 with its access token ended too
    assert_error(logged_in.refresh(first["refresh_token"]), "invalid_grant")
    assert logged_in.userinfo(second["access_token"]).status_code == 401
    assert_error(logged_in.refresh(second["refresh_token"]), "invalid_grant")


# D2
@pytest.mark.token_format
def test_refresh_token_of_another_client_is_invalid_grant(logged_in):
    other = make_application(name="other", redirect_uris=[REDIRECT_URI])
    first = logged_in.tokens()
    response = logged_in.refresh(first["refresh_token"], client_id=other.client_id, secret=other.test_secret)
    assert_error(response, "invalid_grant")
    assert logged_in.refresh(first["refresh_token"]).status_code == 200


# D3
@pytest.mark.token_format
def test_refresh_cannot_widen_scope(logged_in):
    first = logged_in.tokens(scope="openid email")
    assert_error(logged_in.refresh(first["refresh_token"], scope="openid email profile"), "invalid_scope")
    narrowed = logged_in.refresh(first["refresh_token"], scope="openid")
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "openid"


# D4
@pytest.mark.token_format
def test_refresh_token_expires(app, logged_in, move_clock):
    first = logged_in.tokens()
    move_clock(app.config["REFRESH_TOKEN_EXPIRE_SECONDS"] + 1)
    assert_error(logged_in.refresh(first["refresh_token"]), "invalid_grant")


@pytest.mark.token_format
def test_refresh_lifetime_is_absolute(app, logged_in, move_clock):
    first = logged_in.tokens()
    row = tokens.find_by_value(first["access_token"])
    second = logged_in.refresh(first["refresh_token"]).get_json()
    assert tokens.find_by_value(second["access_token"]).refresh_expires_at <= row.refresh_expires_at


# D5
@pytest.mark.token_format
def test_refresh_after_user_disabled_or_token_deleted(logged_in):
    first = logged_in.tokens()
    tokens.delete(tokens.find_by_value(first["access_token"]), actor="admin")
    assert_error(logged_in.refresh(first["refresh_token"]), "invalid_grant")
    second = logged_in.tokens()
    logged_in.user.active = False
    db.session.commit()
    assert_error(logged_in.refresh(second["refresh_token"]), "invalid_grant")


@pytest.mark.token_format
def test_portal_delete_ends_an_oauth_token(logged_in):
    first = logged_in.tokens()
    tokens.delete(tokens.find_by_value(first["access_token"]), actor="admin")
    assert logged_in.userinfo(first["access_token"]).status_code == 401
    assert logged_in.introspect(first["access_token"]).get_json() == {"active": False}


def test_jwt_access_tokens_when_configured(app, logged_in):
    import jwt

    app.config["ACCESS_TOKEN_FORMAT"] = "jwt"
    issued = logged_in.tokens()
    assert issued["access_token"].count(".") == 2 and issued["refresh_token"].startswith("tsr_")
    assert jwt.get_unverified_header(issued["access_token"])["typ"] == "at+jwt"
    row = tokens.find_by_value(issued["access_token"])
    assert row.source == "authorization_code" and row.token_hash != issued["access_token"]
    assert logged_in.userinfo(issued["access_token"]).status_code == 200
    refreshed = logged_in.refresh(issued["refresh_token"]).get_json()
    assert logged_in.userinfo(refreshed["access_token"]).status_code == 200
