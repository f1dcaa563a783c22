"""Helpers for the authorization-server tests: a registered client, a user, and the
authorize → consent → code → token steps through the real endpoints."""

import base64
import hashlib
import html
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from portal.domain import clock
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_user

CLIENT_ID = "651462"
CLIENT_SECRET = "37b1c4ff826f8d78bd45e25bad75a2c0"
REDIRECT_URI = "http://example.org/"
PASSWORD = "correct horse battery"
ACTION_PATTERN = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Flow:
    """One browser (a test client) and one registered application."""

    def __init__(self, client, auth, application, secret, user):
        self.client, self.auth, self.application, self.secret, self.user = client, auth, application, secret, user

    @property
    def client_id(self):
        return self.application.client_id

    def login(self, user=None):
        response = self.auth.login(username=(user or self.user).username, password=PASSWORD)
        assert response.status_code == 303, response.get_data(as_text=True)

    def params(self, **overrides) -> dict:
        params = {"client_id": self.client_id, "redirect_uri": REDIRECT_URI, "response_type": "code",
                  "scope": "openid email profile", "state": "123123"}
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.client.get("/authorize?" + urlencode(self.params(**overrides), doseq=True))

    def consent(self, page, decision="allow", csrf=True):
        text = page.get_data(as_text=True)
        action = html.unescape(ACTION_PATTERN.search(text).group(1))
        data = {"decision": decision}
        if csrf:
            data["csrf_token"] = csrf_token_from(text)
        return self.client.post(action, data=data)

    def code(self, **overrides) -> str:
        response = self.authorize(**overrides)
        if response.status_code == 200:
            response = self.consent(response)
        assert response.status_code == 302, response.get_data(as_text=True)
        query = query_of(response.headers["Location"])
        assert "code" in query, query
        return query["code"]

    def token(self, code, *, secret=..., client_id=None, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "client_id": client_id or self.client_id, "client_secret": self.secret if secret is ... else secret}
        data.update(extra)
        return self.client.post("/token", data={k: v for k, v in data.items() if v is not None})

    def tokens(self, **overrides) -> dict:
        response = self.token(self.code(**overrides))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def refresh(self, refresh_token, *, secret=..., client_id=None, **extra):
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": client_id or self.client_id, "client_secret": self.secret if secret is ... else secret}
        data.update(extra)
        return self.client.post("/token", data={k: v for k, v in data.items() if v is not None})

    def userinfo(self, access_token):
        return self.client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})

    def introspect(self, token, **extra):
        return self.client.post("/introspect", data={"token": token, **extra},
                                auth=(self.client_id, self.secret), headers={})


@pytest.fixture
def oauth_user(app):
    return make_user(username="alice", name="Alice Liddell", email="alice@example.org")


@pytest.fixture
def demo_app(app):
    """docs/oauth.md's application: confidential, client_secret_post."""
    return make_application(name="demo", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_uris=[REDIRECT_URI], response_types=["code"], scope="openid email profile")


@pytest.fixture
def flow(client, auth, demo_app, oauth_user):
    return Flow(client, auth, demo_app, CLIENT_SECRET, oauth_user)


@pytest.fixture
def logged_in(flow):
    flow.login()
    return flow


@pytest.fixture
def public_flow(client, auth, oauth_user):
    application = make_application(name="spa", client_type="public", redirect_uris=[REDIRECT_URI],
                                   scope="openid email profile")
    return Flow(client, auth, application, None, oauth_user)


@pytest.fixture
def move_clock(monkeypatch):
    """move_clock(seconds): every later clock.now() is that much later."""

    def move(seconds):
        moved = clock.now() + timedelta(seconds=seconds)
        monkeypatch.setattr(clock, "now", lambda: moved)

    return move
