"""An independent relying party against a real gunicorn: panva's openid-client (node,
tests/js/oidc_client.mjs) builds the requests and checks the answers; `requests` plays the
browser (login, consent, following redirects). Code flow with PKCE, a silent login
(prompt=none) answered with login_required that the library accepts (it checks `iss`
first, RFC 9207), and RP-Initiated Logout.

Needs node and `npm ci` in tests/js; skipped without them, failed under REQUIRE_BROWSER=1."""

import html
import json
import re
import shutil
import subprocess
import uuid
from urllib.parse import urljoin

import pytest
import requests

from tests.conftest import REQUIRE_BROWSER, ROOT, csrf_token_from
from tests.oauth.conftest import ACTION_PATTERN, query_of

SCRIPT = ROOT / "tests" / "js" / "oidc_client.mjs"
PACKAGE = ROOT / "tests" / "js" / "node_modules" / "openid-client" / "package.json"
PASSWORD = "a relying party's user"
REDIRECT_URI = "https://rp.example/callback"
LOGGED_OUT_URI = "https://rp.example/logged-out"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    reason = ("node is not installed: the openid-client tests are skipped" if path is None else
              None if PACKAGE.exists() else f"{PACKAGE} is missing: run `npm ci` in tests/js (make test does)")
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def rp(live_server, node):
    """A public client (PKCE, no secret) with a post-logout URI, and a user."""
    suffix = uuid.uuid4().hex[:6]
    username, client_id = f"rpuser{suffix}", f"rp{suffix}"
    live_server.cli_many(
        (("create-user", username, "--email", f"{username}@example.org", "--name", "R. P. User", "--password-stdin"),
         PASSWORD + "\n"),
        ("create-application", f"RP {suffix}", "--client-id", client_id, "--public", "--redirect-uri", REDIRECT_URI,
         "--post-logout-redirect-uri", LOGGED_OUT_URI))
    return {"issuer": live_server.url, "client_id": client_id, "username": username, "node": node}


def relying_party(rp, step: str, **values) -> dict:
    """One step of tests/js/oidc_client.mjs; its JSON answer."""
    values = {"issuer": rp["issuer"], "client_id": rp["client_id"], "redirect_uri": REDIRECT_URI, **values}
    result = subprocess.run([rp["node"], str(SCRIPT), step, json.dumps(values)], capture_output=True, text=True,
                            timeout=60, cwd=SCRIPT.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def follow(browser: requests.Session, url: str, *, rp, login: bool = True) -> str:
    """Play the browser from `url` until it is sent to the client: log in and allow on the
    way when asked. Returns the URL the client receives."""
    response = browser.get(url, allow_redirects=False)
    for _ in range(8):
        location = response.headers.get("Location")
        if location and location.startswith(("https://rp.example/")):
            return location
        if location:
            response = browser.get(urljoin(response.url, location), allow_redirects=False)
        elif 'action="/login"' in response.text and login:
            response = browser.post(urljoin(response.url, "/login"), allow_redirects=False, data={
                "username": rp["username"], "password": PASSWORD, "csrf_token": csrf_token_from(response.text),
                "next": html.unescape(re.search(r'name="next"[^>]*value="([^"]*)"', response.text).group(1))})
        elif "consent-form" in response.text:
            action = html.unescape(ACTION_PATTERN.search(response.text).group(1))
            response = browser.post(urljoin(response.url, action), allow_redirects=False,
                                    data={"decision": "allow", "csrf_token": csrf_token_from(response.text)})
        else:
            raise AssertionError(f"stuck at {response.url}: {response.status_code} {response.text[:300]}")
    raise AssertionError("too many steps")


def signed_in(browser: requests.Session, live_server) -> bool:
    return browser.get(live_server.url + "/", allow_redirects=False).status_code == 200


def test_code_flow_with_pkce_then_logout(live_server, rp):
    browser = requests.Session()
    start = relying_party(rp, "authorize")
    callback = follow(browser, start["url"], rp=rp)
    assert "iss=" in callback
    done = relying_party(rp, "callback", callback_url=callback, **{k: start[k] for k in ("code_verifier", "state",
                                                                                        "nonce")})
    assert "error" not in done, done
    assert done["claims"]["iss"] == live_server.url
    assert done["claims"]["nonce"] == start["nonce"]
    assert done["userinfo"]["preferred_username"] == rp["username"]
    assert done["userinfo"]["sub"] == done["claims"]["sub"]
    assert signed_in(browser, live_server)

    logout = relying_party(rp, "logout", id_token=done["id_token"], post_logout_redirect_uri=LOGGED_OUT_URI,
                           state="bye-1")
    back = browser.get(logout["url"], allow_redirects=False)
    assert back.status_code == 303, back.text
    assert back.headers["Location"].startswith(LOGGED_OUT_URI)
    assert query_of(back.headers["Location"]) == {"state": "bye-1"}
    assert not signed_in(browser, live_server)


def test_silent_login_without_a_session_is_login_required(live_server, rp):
    start = relying_party(rp, "authorize", extra={"prompt": "none"})
    callback = follow(requests.Session(), start["url"], rp=rp, login=False)
    done = relying_party(rp, "callback", callback_url=callback, **{k: start[k] for k in ("code_verifier", "state",
                                                                                        "nonce")})
    # Without `iss` on the error, openid-client reports a missing issuer instead.
    assert done["error"] == "login_required", done
    assert done["code"] == "OAUTH_AUTHORIZATION_RESPONSE_ERROR", done


def test_an_authorization_request_sent_by_post(live_server, rp):
    """openid-client only builds GET URLs: the same parameters, form-encoded, by POST."""
    start = relying_party(rp, "authorize")
    url, _, query = start["url"].partition("?")
    browser = requests.Session()
    response = browser.post(url, data=query, headers={"Content-Type": "application/x-www-form-urlencoded"},
                            allow_redirects=False)
    assert response.status_code == 303, response.text  # on as a GET (not "CSRF token missing")
    callback = follow(browser, urljoin(url, response.headers["Location"]), rp=rp)
    done = relying_party(rp, "callback", callback_url=callback, **{k: start[k] for k in ("code_verifier", "state",
                                                                                        "nonce")})
    assert "error" not in done, done
