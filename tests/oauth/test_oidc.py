"""OpenID Connect: ID tokens (F1–F4, F6), discovery and JWKS (F7), key rotation."""

import time

import jwt
import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from portal.domain import signing
from tests.oauth.conftest import CLIENT_ID


def header_and_claims(client, id_token):
    keyset = KeySet.import_key_set(client.get("/jwks").get_json())
    decoded = jose_jwt.decode(id_token, keyset, algorithms=["RS256"])
    return decoded.header, decoded.claims


# F1
@pytest.mark.token_format
def test_nonce_is_carried_exactly_and_optional(logged_in):
    _, claims = header_and_claims(logged_in.client, logged_in.tokens(nonce="n-0S6_WzA2Mj")["id_token"])
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    _, claims = header_and_claims(logged_in.client, logged_in.tokens()["id_token"])
    assert "nonce" not in claims


@pytest.mark.token_format
def test_a_nonce_is_not_accepted_twice(logged_in):
    logged_in.tokens(nonce="once")
    response = logged_in.authorize(nonce="once")
    assert response.status_code == 302 and "error=invalid_request" in response.headers["Location"]


# F2
@pytest.mark.token_format
def test_id_token_claims(logged_in):
    discovery = logged_in.client.get("/.well-known/openid-configuration").get_json()
    issued = logged_in.tokens()
    _, claims = header_and_claims(logged_in.client, issued["id_token"])
    assert claims["iss"] == discovery["issuer"] == "http://localhost"
    assert CLIENT_ID in claims["aud"]
    assert claims["exp"] > claims["iat"] and abs(claims["iat"] - time.time()) < 300
    assert claims["sub"] == logged_in.user.sub and len(claims["sub"]) <= 255 and claims["sub"].isascii()
    assert claims["auth_time"] <= claims["iat"] and claims["at_hash"]
    assert claims["email"] == "alice@example.org" and claims["preferred_username"] == "alice"
    # stable per user
    _, again = header_and_claims(logged_in.client, logged_in.tokens()["id_token"])
    assert again["sub"] == claims["sub"]
    # userinfo agrees (F5)
    assert logged_in.userinfo(issued["access_token"]).get_json()["sub"] == claims["sub"]


# F3
@pytest.mark.token_format
def test_id_token_is_rs256_with_a_published_kid_and_never_none(logged_in, monkeypatch):
    from portal.models import Application

    # Even a client that asks for unsigned ID tokens gets RS256.
    monkeypatch.setattr(Application, "id_token_signed_response_alg", "none", raising=False)
    id_token = logged_in.tokens()["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256" and header["kid"]
    published = {key["kid"] for key in logged_in.client.get("/jwks").get_json()["keys"]}
    assert header["kid"] in published
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(id_token.rsplit(".", 1)[0] + ".AAAA", options={"verify_signature": True},
                   key=jwt.PyJWK(logged_in.client.get("/jwks").get_json()["keys"][0]).key,
                   algorithms=["RS256"], audience=CLIENT_ID)


# F4 (ext)
@pytest.mark.token_format
def test_max_age_login_gives_a_later_auth_time(logged_in, move_clock):
    _, before = header_and_claims(logged_in.client, logged_in.tokens()["id_token"])
    move_clock(5)
    again = logged_in.authorize(max_age="1")
    assert again.status_code == 302 and "/login" in again.headers["Location"]
    logged_in.login()
    _, after = header_and_claims(logged_in.client, logged_in.tokens(max_age="1")["id_token"])
    assert after["auth_time"] > before["auth_time"]


# F6 (ext)
@pytest.mark.token_format
def test_no_openid_scope_no_id_token(logged_in):
    issued = logged_in.tokens(scope="email profile")
    assert "id_token" not in issued and issued["access_token"]


# F7 (ext)
@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/.well-known/openid-configuration/"])
def test_discovery(client, path):
    response = client.get(path)
    assert response.status_code == 200
    document = response.get_json()
    OpenIDProviderMetadata(document).validate()
    assert document["issuer"] == "http://localhost"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert not {"password", "implicit"} & set(document["grant_types_supported"])
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["token_endpoint"] == "http://localhost/token"


def test_without_the_setting_the_issuer_follows_the_host_asked_for(client):
    def issuer(base_url):
        return client.get("/.well-known/openid-configuration", base_url=base_url).get_json()["issuer"]

    assert issuer("https://id.example.org") == "https://id.example.org"
    assert issuer("http://other.example.net:8080") == "http://other.example.net:8080"
    assert issuer("https://id.example.org") == "https://id.example.org"
    assert issuer("http://xn--bcher-kva.example") == "http://bücher.example"  # as request.host_url says


@pytest.mark.token_format
def test_issuer_setting_is_used_everywhere(app, logged_in):
    app.config["ISSUER"] = "https://id.example.org"
    assert logged_in.client.get("/.well-known/openid-configuration").get_json()["issuer"] == "https://id.example.org"
    _, claims = header_and_claims(logged_in.client, logged_in.tokens()["id_token"])
    assert claims["iss"] == "https://id.example.org"


@pytest.mark.token_format
def test_jwks_has_current_and_previous_keys_and_no_private_parts(logged_in):
    old_kid = jwt.get_unverified_header(logged_in.tokens()["id_token"])["kid"]
    signing.rotate(at_once=True)
    new_token = logged_in.tokens()["id_token"]
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    published = logged_in.client.get("/jwks").get_json()["keys"]
    assert {old_kid, new_kid} <= {key["kid"] for key in published}
    for key in published:
        assert key["kty"] == "RSA" and not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    header_and_claims(logged_in.client, new_token)
