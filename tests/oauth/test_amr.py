"""How the user signed in, in the ID token (issue 26): `amr` (RFC 8176) and `acr`; a client's
acr_values=mfa asks for the second factor; discovery lists acr_values_supported."""

from urllib.parse import urlencode

import jwt
import pytest

from portal.domain import factors
from portal.extensions import db
from tests.conftest import csrf_token_from
from tests.oauth.conftest import PASSWORD
from tests.second_factor import Clock, code_at, enrol_totp, login_password, second_step

pytestmark = pytest.mark.both_databases


@pytest.fixture
def frozen(monkeypatch):
    return Clock(monkeypatch)


def id_claims(flow, **overrides) -> dict:
    tokens = flow.tokens(**overrides)
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})


def test_discovery_lists_the_acr_values(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["acr_values_supported"] == ["pwd", "mfa"]
    assert {"acr", "amr"} <= set(metadata["claims_supported"])


def test_a_password_alone_is_pwd(logged_in):
    claims = id_claims(logged_in)
    assert claims["amr"] == ["pwd"] and claims["acr"] == "pwd"


def test_with_an_authenticator_code_the_id_token_says_otp_and_mfa(flow, oauth_user, frozen):
    secret = enrol_totp(oauth_user, frozen)
    assert login_password(flow.client, "alice", PASSWORD).headers["Location"].endswith("/login/second-factor")
    assert second_step(flow.client, code_at(secret, frozen.step())).status_code == 303
    claims = id_claims(flow)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"


def test_acr_values_mfa_asks_a_password_only_session_for_the_second_factor(logged_in, oauth_user, frozen):
    secret = enrol_totp(oauth_user, frozen)  # after this browser signed in with the password alone
    asked = logged_in.authorize(acr_values="mfa")
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/account/confirm?next=/authorize")
    back = second_step(logged_in.client, code_at(secret, frozen.step()), path=asked.headers["Location"])
    assert back.status_code == 303 and back.headers["Location"].startswith("/authorize?")
    claims = id_claims(logged_in, acr_values="mfa")
    assert claims["acr"] == "mfa" and claims["amr"] == ["pwd", "otp", "mfa"]


def test_acr_values_that_accept_pwd_are_met_by_the_password(logged_in):
    assert id_claims(logged_in, acr_values="mfa pwd")["acr"] == "pwd"
    assert id_claims(logged_in, acr_values="urn:unknown")["acr"] == "pwd"  # unknown values: ignored


def test_acr_values_mfa_for_a_user_without_a_factor_sends_them_to_set_one_up(logged_in, oauth_user, frozen):
    asked = logged_in.authorize(acr_values="mfa")
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/account/security?next=/authorize")
    client = logged_in.client
    page = client.get(asked.headers["Location"]).get_data(as_text=True)
    client.post("/account/security/totp", data={"csrf_token": csrf_token_from(page)})
    secret = factors.pending_secret(oauth_user)
    done = client.post("/account/security/totp/confirm?" + asked.headers["Location"].split("?", 1)[1],
                       data={"code": code_at(secret, frozen.step()), "csrf_token": csrf_token_from(page)})
    text = done.get_data(as_text=True)
    assert "Your recovery codes" in text and "I saved them: continue" in text
    assert id_claims(logged_in, acr_values="mfa")["acr"] == "mfa"


def test_acr_values_mfa_with_prompt_none_is_interaction_required(logged_in, oauth_user, frozen):
    enrol_totp(oauth_user, frozen)
    response = logged_in.authorize(acr_values="mfa", prompt="none")
    assert response.status_code == 302 and "error=interaction_required" in response.headers["Location"]


def test_the_consent_form_cannot_skip_the_second_factor(logged_in, oauth_user, frozen):
    page = logged_in.authorize(prompt="consent")
    assert page.status_code == 200
    enrol_totp(oauth_user, frozen)
    db.session.commit()
    token = csrf_token_from(page.get_data(as_text=True))
    forged = logged_in.client.post("/authorize?" + urlencode(logged_in.params(acr_values="mfa")),
                                   data={"decision": "allow", "csrf_token": token})
    assert forged.status_code == 302 and forged.headers["Location"].startswith("/account/confirm")
