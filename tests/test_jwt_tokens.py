"""ACCESS_TOKEN_FORMAT=jwt: signed RFC 9068 values that are still rows of the token table."""

import json

import jwt as pyjwt
import pytest

from portal import tokens
from portal.domain.signing import published_keys
from tests.factories import make_application, make_tenant, make_token, make_user


@pytest.fixture
def app_config():
    return {"ACCESS_TOKEN_FORMAT": "jwt", "ISSUER": "https://id.example.test"}


def verify(value: str) -> tuple[dict, dict]:
    header = pyjwt.get_unverified_header(value)
    keys = {key["kid"]: key for key in published_keys().as_dict(private=False)["keys"]}
    assert header["kid"] in keys
    public = pyjwt.PyJWK.from_dict(keys[header["kid"]])
    claims = pyjwt.decode(value, public.key, algorithms=["RS256"], audience=header.get("aud") or None,
                          options={"verify_aud": False})
    return header, claims


def test_admin_made_token_is_a_signed_jwt_with_permissions(app):
    make_tenant("site1")
    user = make_user("alice")
    application = make_application("crafterengine")
    issued = make_token(application, user=user, master=True, scope="api",
                        tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    header, claims = verify(issued.value)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert claims["iss"] == "https://id.example.test"
    assert claims["client_id"] == application.client_id and claims["scope"] == "api"
    assert claims["sub"] == user.sub and claims["master"] is True
    assert claims["tenant_permissions"] == [{"tenant": "site1", "actions": ["READ_TENANT"]}]
    assert claims["exp"] - claims["iat"] == app.config["ACCESS_TOKEN_EXPIRE_SECONDS"]
    assert issued.token.hint == "jwt_" + issued.value[-4:]
    assert json.dumps(claims).find(issued.value) == -1


def test_jwt_value_is_checked_against_its_row(app):
    issued = make_token()
    assert tokens.authenticate(issued.value).id == issued.token.id
    tokens.delete(issued.token, actor="test")
    verify(issued.value)  # the signature still verifies elsewhere ...
    with pytest.raises(tokens.InvalidTokenError):  # ... but Tessera refuses it at once
        tokens.authenticate(issued.value)


def test_rotated_keys_stay_published(app, runner):
    before = make_token()
    assert runner.invoke(args=["rotate-keys", "--now"]).exit_code == 0
    after = make_token()
    assert pyjwt.get_unverified_header(before.value)["kid"] != pyjwt.get_unverified_header(after.value)["kid"]
    verify(before.value)
    verify(after.value)
