"""End to end against a real gunicorn: docs/oauth.md's curl flow, exactly; a code flow with
PKCE driven by requests-oauthlib from discovery, the ID token checked with PyJWT."""

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from requests_oauthlib import OAuth2Session

from tests.conftest import TOKEN_FORMATS, csrf_token_from, start_live_server

CLIENT_ID = "651462"
CLIENT_SECRET = "37b1c4ff826f8d78bd45e25bad75a2c0"
CONSENT_FORM = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')


@pytest.fixture(scope="module", params=TOKEN_FORMATS)
def server(request, tmp_path_factory):
    """A gunicorn of the module's own, one per access-token format (the tests issue tokens
    and use them)."""
    live = start_live_server(tmp_path_factory.mktemp("oauth-live"), extra_env={"ACCESS_TOKEN_FORMAT": request.param})
    yield live
    live.stop()


def browser(server) -> requests.Session:
    """A user's browser, logged in through the real form."""
    session = requests.Session()
    token = csrf_token_from(session.get(server.url + "/login").text)
    response = session.post(server.url + "/login", allow_redirects=False,
                            data={"username": "admin", "password": server.admin_password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return session


def allow(session, server, page) -> str:
    """Press Allow on the consent page; return the redirect to the client."""
    import html

    action = html.unescape(CONSENT_FORM.search(page.text).group(1))
    response = session.post(server.url + action, allow_redirects=False,
                            data={"csrf_token": csrf_token_from(page.text), "decision": "allow"})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def test_readme_curl_flow(server):
    created = server.cli("create-application", "demo", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                         "--redirect-uri", "http://example.org/", "--response-type", "code",
                         "--scope", "openid email profile")
    assert CLIENT_ID in created.stdout
    session = browser(server)
    # Open the authorization URL as docs/oauth.md shows it (spaces in scope and all).
    page = session.get(server.url + "/authorize?client_id=651462&redirect_uri=http://example.org/"
                       "&response_type=code&scope=openid email profile&state=123123")
    assert page.status_code == 200 and 'name="decision" value="allow"' in page.text
    location = allow(session, server, page)
    assert location.startswith("http://example.org/?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["state"] == "123123"

    # curl -X POST http://localhost:8000/token/ -d client_id=... (no cookies: a plain HTTP client)
    response = requests.post(server.url + "/token/", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": query["code"],
        "redirect_uri": "http://example.org/", "grant_type": "authorization_code"})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    issued = response.json()
    assert set(issued) >= {"access_token", "token_type", "expires_in", "refresh_token", "id_token"}
    assert issued["expires_in"] == 3600 and issued["token_type"] == "Bearer"

    # curl http://localhost:8000/userinfo/?access_token=...
    userinfo = requests.get(server.url + f"/userinfo/?access_token={issued['access_token']}")
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["preferred_username"] == "admin" and userinfo.json()["sub"]

    refreshed = requests.post(server.url + "/token/", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": issued["refresh_token"],
        "grant_type": "refresh_token"})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != issued["refresh_token"]
    assert requests.get(server.url + f"/userinfo/?access_token={refreshed.json()['access_token']}").status_code == 200

    # E5: the URL token never reaches the access log.
    time.sleep(0.5)
    log = server.log()
    assert "/userinfo/?access_token=[REDACTED]" in log
    for secret in (issued["access_token"], refreshed.json()["access_token"], issued["refresh_token"],
                   query["code"], CLIENT_SECRET):
        assert secret not in log


def test_requests_oauthlib_code_flow_with_pkce_from_discovery(server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback, test only
    created = server.cli("create-application", "spa", "--public", "--redirect-uri", "http://127.0.0.1:9/callback",
                         "--scope", "openid email profile")
    client_id = re.search(r'"client_id": "([^"]+)"', created.stdout).group(1)
    discovery = requests.get(server.url + "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == server.url

    oauth = OAuth2Session(client_id, redirect_uri="http://127.0.0.1:9/callback", scope=["openid", "email", "profile"],
                          pkce="S256")
    url, state = oauth.authorization_url(discovery["authorization_endpoint"], nonce="n-42")
    session = browser(server)
    page = session.get(url)
    assert page.status_code == 200, page.text
    callback = allow(session, server, page)
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=callback, include_client_id=True)
    assert token["access_token"] and token["refresh_token"] and token["id_token"]

    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(token["id_token"], signing_key.key,
                        algorithms=discovery["id_token_signing_alg_values_supported"],
                        audience=client_id, issuer=discovery["issuer"])
    assert claims["nonce"] == "n-42" and claims["sub"]
    assert jwt.get_unverified_header(token["id_token"])["alg"] == "RS256"

    info = oauth.get(discovery["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]

    refreshed = oauth.refresh_token(discovery["token_endpoint"], client_id=client_id)
    assert refreshed["access_token"] != token["access_token"]


def test_requests_oauthlib_confidential_client_authenticates_with_http_basic(server, monkeypatch):
    """requests-oauthlib sends the secret with HTTP Basic by default (RFC 6749 §2.3.1)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    created = json.loads(server.cli("create-application", "basic-rp", "--redirect-uri", "http://127.0.0.1:9/cb",
                                    "--scope", "openid profile").stdout)
    discovery = requests.get(server.url + "/.well-known/openid-configuration").json()
    oauth = OAuth2Session(created["client_id"], redirect_uri="http://127.0.0.1:9/cb", scope=["openid", "profile"])
    sent = []  # the requests as they went on the wire
    oauth.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    url, _ = oauth.authorization_url(discovery["authorization_endpoint"])
    session = browser(server)
    callback = allow(session, server, session.get(url))
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=callback,
                              client_secret=created["client_secret"])
    refreshed = oauth.refresh_token(discovery["token_endpoint"],
                                    auth=(created["client_id"], created["client_secret"]))
    assert refreshed["access_token"] != token["access_token"]
    assert oauth.get(discovery["userinfo_endpoint"]).json()["preferred_username"] == "admin"
    to_token = [request for request in sent if request.url == discovery["token_endpoint"]]
    assert len(to_token) == 2
    for request in to_token:
        assert request.headers["Authorization"].startswith("Basic ") and "client_secret" not in request.body
