"""UserInfo as a resource (E), revocation (RFC 7009) and introspection (RFC 7662)."""

import pytest

from portal import tokens
from portal.extensions import db
from tests.factories import make_application, make_tenant, make_token
from tests.oauth.conftest import pkce_pair


# E1
def test_userinfo_without_token_is_401_bearer_without_error(client):
    response = client.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


# E2
@pytest.mark.token_format
def test_expired_token_is_invalid_token(logged_in, move_clock):
    access = logged_in.tokens()["access_token"]
    move_clock(3601)
    response = logged_in.userinfo(access)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


# E3
@pytest.mark.token_format
def test_revoked_token_fails_on_the_next_request(logged_in):
    access = logged_in.tokens()["access_token"]
    assert logged_in.userinfo(access).status_code == 200
    response = logged_in.client.post("/revoke", data={"token": access, "client_id": logged_in.client_id,
                                                      "client_secret": logged_in.secret})
    assert response.status_code == 200 and response.get_json() == {}
    assert response.headers["Cache-Control"] == "no-store"
    result = logged_in.userinfo(access)
    assert result.status_code == 401 and 'error="invalid_token"' in result.headers["WWW-Authenticate"]


@pytest.mark.token_format
def test_revoking_the_refresh_token_ends_the_grant(logged_in):
    issued = logged_in.tokens()
    response = logged_in.client.post("/revoke", data={"token": issued["refresh_token"], "token_type_hint":
                                                      "refresh_token"}, auth=(logged_in.client_id, logged_in.secret))
    assert response.status_code == 200
    assert logged_in.userinfo(issued["access_token"]).status_code == 401
    assert logged_in.refresh(issued["refresh_token"]).get_json()["error"] == "invalid_grant"


@pytest.mark.token_format
def test_revoke_unknown_token_is_200_and_other_clients_token_is_refused(logged_in):
    other = make_application(name="other", redirect_uris=["http://example.org/"])
    assert logged_in.client.post("/revoke", data={"token": "nope"},
                                 auth=(logged_in.client_id, logged_in.secret)).status_code == 200
    access = logged_in.tokens()["access_token"]
    response = logged_in.client.post("/revoke", data={"token": access}, auth=(other.client_id, other.test_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert logged_in.userinfo(access).status_code == 200


@pytest.mark.token_format
def test_public_client_revokes_its_own_token(public_flow):
    public_flow.login()
    verifier, challenge = pkce_pair()
    code = public_flow.code(code_challenge=challenge, code_challenge_method="S256")
    access = public_flow.token(code, secret=None, code_verifier=verifier).get_json()["access_token"]
    response = public_flow.client.post("/revoke", data={"token": access, "client_id": public_flow.client_id})
    assert response.status_code == 200
    assert public_flow.userinfo(access).status_code == 401


# E4
@pytest.mark.token_format
def test_token_without_openid_scope_is_insufficient_scope_at_userinfo(logged_in):
    access = logged_in.tokens(scope="email")["access_token"]
    response = logged_in.userinfo(access)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


# E5 (the log half runs against gunicorn in test_live.py)
@pytest.mark.token_format
def test_query_token_accepted_and_turned_off_by_setting(app, logged_in):
    access = logged_in.tokens()["access_token"]
    response = logged_in.client.get(f"/userinfo?access_token={access}")
    assert response.status_code == 200 and response.get_json()["preferred_username"] == "alice"
    assert logged_in.client.get(f"/userinfo/?access_token={access}").status_code == 200
    app.config["ALLOW_QUERY_ACCESS_TOKEN"] = False
    response = logged_in.client.get(f"/userinfo?access_token={access}")
    assert response.status_code == 401 and "error=" not in response.headers["WWW-Authenticate"]


# E6, E7 (ext)
@pytest.mark.token_format
def test_two_tokens_is_invalid_request_and_body_token_on_get_is_ignored(logged_in):
    access = logged_in.tokens()["access_token"]
    two = logged_in.client.post("/userinfo", data={"access_token": access},
                                headers={"Authorization": f"Bearer {access}"})
    assert two.status_code == 400 and 'error="invalid_request"' in two.headers["WWW-Authenticate"]
    body = logged_in.client.post("/userinfo", data={"access_token": access})
    assert body.status_code == 200
    multipart = logged_in.client.post("/userinfo", data={"access_token": access}, content_type="multipart/form-data")
    assert multipart.status_code == 401


# E8 (ext)
@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "garbage", "Bearer a b c"])
def test_odd_authorization_headers_are_401_not_500(client, header):
    assert client.get("/userinfo", headers={"Authorization": header}).status_code == 401


# E10 (ext)
@pytest.mark.token_format
def test_refresh_or_id_token_as_bearer_is_invalid_token(logged_in):
    issued = logged_in.tokens()
    for value in (issued["refresh_token"], issued["id_token"]):
        response = logged_in.userinfo(value)
        assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# F5 (ext)
def test_userinfo_get_and_post_with_invalid_token(client):
    for response in (client.get("/userinfo", headers={"Authorization": "Bearer tsr_nope"}),
                     client.post("/userinfo", headers={"Authorization": "Bearer tsr_nope"})):
        assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.token_format
def test_userinfo_claims_follow_the_granted_scopes(logged_in):
    only_openid = logged_in.userinfo(logged_in.tokens(scope="openid")["access_token"]).get_json()
    assert only_openid == {"sub": logged_in.user.sub}
    everything = logged_in.userinfo(logged_in.tokens()["access_token"]).get_json()
    assert everything["sub"] == logged_in.user.sub != str(logged_in.user.id)
    assert everything["name"] == "Alice Liddell" and everything["preferred_username"] == "alice"
    assert isinstance(everything["updated_at"], int)
    assert everything["email"] == "alice@example.org" and everything["email_verified"] is False


# introspection
@pytest.mark.token_format
def test_introspection_of_an_oauth_token(logged_in):
    issued = logged_in.tokens()
    response = logged_in.introspect(issued["access_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["active"] is True and body["client_id"] == logged_in.client_id
    assert body["sub"] == logged_in.user.sub and body["username"] == "alice"
    assert body["application"] == "demo" and body["master"] is False and body["tenant_permissions"] == []
    assert body["source"] == "authorization_code" and body["scope"] == "openid email profile"
    assert body["token_type"] == "Bearer" and body["exp"] > body["iat"] and body["iss"] == "http://localhost"
    refresh = logged_in.introspect(issued["refresh_token"], token_type_hint="refresh_token").get_json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"


@pytest.mark.token_format
def test_admin_made_tokens_introspect_like_oauth_ones(logged_in):
    make_tenant("site1")
    issued = make_token(application=logged_in.application, master=True, user=logged_in.user,
                        tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    body = logged_in.introspect(issued.value).get_json()
    assert body["active"] is True and body["master"] is True and body["source"] == "admin"
    assert body["tenant_permissions"] == [{"tenant": "site1", "actions": ["READ_TENANT"]}]
    assert body["application"] == "demo" and body["username"] == "alice"
    api = make_token(application=logged_in.application, source="api")
    body = logged_in.introspect(api.value).get_json()
    assert body["active"] is True and body["source"] == "api" and "username" not in body


@pytest.mark.token_format
def test_introspection_unknown_expired_revoked_are_inactive(logged_in, move_clock):
    assert logged_in.introspect("tsr_unknown").get_json() == {"active": False}
    issued = make_token(application=logged_in.application)
    tokens.revoke(issued.token, actor="test")
    assert logged_in.introspect(issued.value).get_json() == {"active": False}
    live = logged_in.tokens()["access_token"]
    move_clock(3601)
    assert logged_in.introspect(live).get_json() == {"active": False}


@pytest.mark.token_format
def test_introspection_of_refresh_tokens_and_deactivated_users(logged_in, move_clock):
    make_tenant("site1")
    make_tenant("site2")
    issued = logged_in.tokens()
    move_clock(3601)  # the access token has expired, its refresh token has not
    assert logged_in.introspect(issued["access_token"]).get_json() == {"active": False}
    refresh = logged_in.introspect(issued["refresh_token"], token_type_hint="refresh_token").get_json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token" and refresh["exp"] > refresh["iat"]
    ordered = make_token(application=logged_in.application, user=logged_in.user, tenant_permissions=[
        {"tenant": "site2", "actions": ["MANAGE_PROFILES"]}, {"tenant": "site1", "actions": ["READ_TENANT"]}])
    listed = logged_in.introspect(ordered.value).get_json()["tenant_permissions"]
    assert [p["tenant"] for p in listed] == ["site2", "site1"]
    tokens.revoke(tokens.describe(issued["refresh_token"], tokens.REFRESH), actor="test")
    assert logged_in.introspect(issued["refresh_token"]).get_json() == {"active": False}
    logged_in.user.active = False
    db.session.commit()
    assert logged_in.introspect(ordered.value).get_json() == {"active": False}


@pytest.mark.token_format
def test_introspection_is_for_confidential_clients_only(client, auth, oauth_user, logged_in):
    public = make_application(name="spa", client_type="public", redirect_uris=["http://example.org/"])
    access = logged_in.tokens()["access_token"]
    response = client.post("/introspect", data={"token": access, "client_id": public.client_id})
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"
    anonymous = client.post("/introspect", data={"token": access})
    assert anonymous.status_code in (400, 401)
    post = client.post("/introspect", data={"token": access, "client_id": logged_in.client_id,
                                            "client_secret": logged_in.secret})
    assert post.get_json()["active"] is True
    # a resource server (another confidential client) may introspect any token
    geoserver = make_application(name="geoserver")
    other = client.post("/introspect", data={"token": access}, auth=(geoserver.client_id, geoserver.test_secret))
    assert other.get_json()["active"] is True


@pytest.mark.token_format
def test_a_wrong_hint_still_finds_the_token(logged_in):
    issued = logged_in.tokens()
    body = logged_in.introspect(issued["refresh_token"], token_type_hint="access_token").get_json()
    assert body["active"] is True and body["token_type"] == "refresh_token"
    response = logged_in.client.post("/revoke", data={"token": issued["refresh_token"], "token_type_hint":
                                                      "access_token"}, auth=(logged_in.client_id, logged_in.secret))
    assert response.status_code == 200
    assert logged_in.userinfo(issued["access_token"]).status_code == 401
