"""amr and acr seen by an independent relying party (panva's openid-client, tests/js) against
a real gunicorn (issue 26): a password alone is `pwd`; acr_values=mfa makes a session that
signed in with its password alone show the second factor, and the ID token then says so."""

import re
import time
import uuid
from urllib.parse import urljoin

import pyotp
import pytest
import requests

from tests.conftest import csrf_token_from
from tests.oauth.test_openid_client import REDIRECT_URI, follow, node, relying_party  # noqa: F401 (node: a fixture)

PASSWORD = "a relying party's user"


@pytest.fixture(scope="module")
def rp(live_server, node):  # noqa: F811
    suffix = uuid.uuid4().hex[:6]
    username, client_id = f"mfauser{suffix}", f"mfarp{suffix}"
    live_server.cli_many(
        (("create-user", username, "--email", f"{username}@example.org", "--password-stdin"), PASSWORD + "\n"),
        ("create-application", f"MFA RP {suffix}", "--client-id", client_id, "--public",
         "--redirect-uri", REDIRECT_URI))
    return {"issuer": live_server.url, "client_id": client_id, "username": username, "node": node}


def finish(rp, start, callback, **checks) -> dict:
    return relying_party(rp, "callback", callback_url=callback,
                         **{k: start[k] for k in ("code_verifier", "state", "nonce")}, **checks)


def enrol_authenticator(live_server, rp) -> tuple[str, int]:
    """Another browser signs in and sets up an authenticator app; the secret and the step used."""
    browser = requests.Session()
    page = browser.get(live_server.url + "/login").text
    browser.post(live_server.url + "/login", data={"username": rp["username"], "password": PASSWORD,
                                                   "csrf_token": csrf_token_from(page)})
    page = browser.get(live_server.url + "/account/security").text
    browser.post(live_server.url + "/account/security/totp", data={"csrf_token": csrf_token_from(page)})
    page = browser.get(live_server.url + "/account/security").text
    secret = re.search(r'id="totp-secret" value="([A-Z2-7]+)"', page).group(1)
    step = int(time.time()) // 30
    done = browser.post(live_server.url + "/account/security/totp/confirm",
                        data={"code": pyotp.TOTP(secret).generate_otp(step), "csrf_token": csrf_token_from(page)})
    assert "Your recovery codes" in done.text, done.text[:500]
    return secret, step


def test_the_relying_party_sees_pwd_then_mfa_when_it_asks_for_it(live_server, rp):
    browser = requests.Session()
    start = relying_party(rp, "authorize")
    done = finish(rp, start, follow(browser, start["url"], rp=rp))
    assert "error" not in done, done
    assert done["acr"] == "pwd" and done["amr"] == ["pwd"]

    secret, step = enrol_authenticator(live_server, rp)
    start = relying_party(rp, "authorize", extra={"acr_values": "mfa"})
    asked = browser.get(start["url"], allow_redirects=False)
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/account/confirm?next=")
    page = browser.get(urljoin(live_server.url, asked.headers["Location"]))
    # The next step's code: the enrolment used this one (a code works once), and one step of drift is allowed.
    confirmed = browser.post(page.url, allow_redirects=False, data={
        "method": "totp", "code": pyotp.TOTP(secret).generate_otp(step + 1), "csrf_token": csrf_token_from(page.text)})
    assert confirmed.status_code == 303, confirmed.text[:500]
    callback = follow(browser, urljoin(live_server.url, confirmed.headers["Location"]), rp=rp)
    done = finish(rp, start, callback, required_acr="mfa")
    assert "error" not in done, done
    assert done["acr"] == "mfa" and done["amr"] == ["pwd", "otp", "mfa"]


def test_a_relying_party_requiring_mfa_refuses_a_password_alone(live_server, rp):
    other = f"pwdonly{uuid.uuid4().hex[:6]}"
    live_server.cli("create-user", other, "--email", f"{other}@example.org", "--password-stdin",
                    input=PASSWORD + "\n")
    start = relying_party(rp, "authorize")
    done = finish(rp, start, follow(requests.Session(), start["url"], rp={**rp, "username": other}),
                  required_acr="mfa")
    assert done["error"] == "acr_not_met", done
