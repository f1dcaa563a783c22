"""Gap-free key rotation (`portal rotate-keys`): the next key is in /jwks one JWKS cache
lifetime before it signs, so a verifier that cached /jwks just before the rotation
refuses no token; the old key stays published until its last token has expired;
`--now` signs at once and says what that costs. The verifier is PyJWT's PyJWKClient,
keeping /jwks for the max-age /jwks gave and never refetching early on an unknown kid
(the strictest cache a resource server may keep)."""

import re
import time
from datetime import datetime, timedelta

import jwt
import pytest
import requests
from sqlalchemy import select

from portal.domain import clock
from portal.extensions import db
from portal.models import SigningKey
from portal.domain.signing import ensure_signing_key
from tests.conftest import start_live_server
from tests.factories import make_application, make_token
from tests.oauth.test_live import allow, browser

# On SQLite and PostgreSQL (tests/conftest.py): key states from the key rows' times, compared in SQL.
pytestmark = pytest.mark.both_databases

CACHE_SECONDS = 4  # JWKS_CACHE_SECONDS of the live server: short, so the test waits it out
REDIRECT_URI = "http://127.0.0.1:9/callback"
SIGNS_AT = re.compile(r"starts signing at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


class Refused(Exception):
    """The verifier has no key with the token's kid: a resource server would answer 401."""


class CachingVerifier:
    def __init__(self, jwks_url: str):
        cache_control = requests.get(jwks_url).headers["Cache-Control"]
        self.max_age = int(re.fullmatch(r"public, max-age=(\d+)", cache_control).group(1))
        self.fetches = 0
        verifier = self

        class CountingClient(jwt.PyJWKClient):
            def fetch_data(self):
                verifier.fetches += 1
                return super().fetch_data()

        self.client = CountingClient(jwks_url, lifespan=self.max_age)

    def verify(self, token: str, audience: str) -> dict:
        kid = jwt.get_unverified_header(token)["kid"]
        keys = {key.key_id: key for key in self.client.get_jwk_set().keys}  # the cache, until max-age passes
        if kid not in keys:
            raise Refused(kid)
        return jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=audience)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


# --- against a real gunicorn (two workers), with real time ------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_live_server(tmp_path_factory.mktemp("rotation-live"),
                             extra_env={"JWKS_CACHE_SECONDS": str(CACHE_SECONDS), "ACCESS_TOKEN_FORMAT": "jwt"})
    yield live
    live.stop()


def test_a_verifier_with_a_warm_cache_refuses_no_token_across_a_staged_rotation(server):
    created = server.cli("create-application", "rp", "--client-id", "rp", "--client-secret", "rp-secret-0123456789",
                         "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
                         "--grant-type", "client_credentials", "--scope", "openid profile")
    assert created.returncode == 0, created.stderr
    session = browser(server)
    authorize = (f"{server.url}/authorize?client_id=rp&response_type=code&scope=openid%20profile"
                 f"&redirect_uri={REDIRECT_URI}&state=s")
    allow(session, server, session.get(authorize))  # consent once; later codes come silently

    def issue() -> list[tuple[str, str]]:
        """An ID token and two JWT access tokens (code flow, client credentials), with their audiences."""
        location = session.get(authorize, allow_redirects=False).headers["Location"]
        code = re.search(r"[?&]code=([^&]+)", location).group(1)
        coded = requests.post(server.url + "/token", auth=("rp", "rp-secret-0123456789"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}).json()
        machine = requests.post(server.url + "/token", auth=("rp", "rp-secret-0123456789"),
                                data={"grant_type": "client_credentials"}).json()
        return [(coded["id_token"], "rp"), (coded["access_token"], "rp"), (machine["access_token"], "rp")]

    before = issue()
    verifier = CachingVerifier(server.url + "/jwks")
    assert verifier.max_age == CACHE_SECONDS
    for token, audience in before:
        verifier.verify(token, audience)  # the cache is warm: fetched once, before the rotation
    old_kid = kid_of(before[0][0])

    rotation = server.cli("rotate-keys")
    assert rotation.returncode == 0, rotation.stderr
    signs_at = datetime.strptime(SIGNS_AT.search(rotation.stdout).group(1), "%Y-%m-%d %H:%M:%S")
    assert f"JWKS cache lifetime ({CACHE_SECONDS} s)" in rotation.stdout
    assert f"Key {old_kid} signs until then and stays in /jwks until at least" in rotation.stdout

    refused, kids = [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        issued_at = clock.now()
        for token, audience in issue():
            kids.append((issued_at, kid_of(token)))
            try:
                verifier.verify(token, audience)
            except Refused as error:
                refused.append(str(error))
        if issued_at > signs_at + timedelta(seconds=1):
            break
    assert refused == []
    new_kids = {kid for _, kid in kids} - {old_kid}
    assert len(new_kids) == 1, kids  # after the staging delay the new key signs ...
    assert all(kid == old_kid for at, kid in kids if at < signs_at - timedelta(seconds=1))  # ... not before
    assert kids[-1][1] in new_kids
    assert verifier.fetches >= 2  # its cache expired and it fetched /jwks again, new key and all
    for token, audience in before:  # the old key is still published: its tokens still verify
        verifier.verify(token, audience)
    published = {key["kid"] for key in requests.get(server.url + "/jwks").json()["keys"]}
    assert published == {old_kid} | new_kids


# --- in process, the clock moved ---------------------------------------------------------

@pytest.fixture
def jwt_client(app, client):
    """A client that issues JWT access tokens (client credentials): `jwt_client.issue()`."""
    app.config["ACCESS_TOKEN_FORMAT"] = "jwt"
    ensure_signing_key()
    make_application(name="machine", client_id="machine", client_secret="machine-secret-0123456789",
                     grant_types=["client_credentials"], scope="api")

    def issue() -> str:
        response = client.post("/token", data={"grant_type": "client_credentials"},
                               auth=("machine", "machine-secret-0123456789"))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    client.issue = issue
    return client


@pytest.fixture
def set_clock(monkeypatch):
    """set_clock(moment): every later clock.now() is that moment."""
    return lambda moment: monkeypatch.setattr(clock, "now", lambda: moment)


def published(client) -> set[str]:
    return {key["kid"] for key in client.get("/jwks").get_json()["keys"]}


def test_key_states_follow_the_clock_and_jwks_max_age_is_the_staging_delay(app, runner, jwt_client, set_clock):
    old_kid = kid_of(jwt_client.issue())
    result = runner.invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    new = db.session.scalar(select(SigningKey).order_by(SigningKey.id.desc()))
    cache_seconds = app.config["JWKS_CACHE_SECONDS"]
    assert jwt_client.get("/jwks").headers["Cache-Control"] == f"public, max-age={cache_seconds}"
    assert new.signs_from - new.created_at == timedelta(seconds=cache_seconds + 1)
    assert f"Key {new.kid} is published in /jwks now and starts signing at {new.signs_from:%Y-%m-%d %H:%M:%S} UTC" \
        in result.output

    assert published(jwt_client) == {old_kid, new.kid}  # next: published ...
    assert kid_of(jwt_client.issue()) == old_kid  # ... not signing
    again = runner.invoke(args=["rotate-keys"])
    assert again.exit_code != 0 and f"key {new.kid} is already published and starts signing at" in again.output

    set_clock(new.signs_from - timedelta(seconds=1))
    assert kid_of(jwt_client.issue()) == old_kid
    set_clock(new.signs_from)
    assert kid_of(jwt_client.issue()) == new.kid  # current
    assert published(jwt_client) == {old_kid, new.kid}  # the old key retiring, still published
    lifetime = timedelta(seconds=app.config["OIDC_TOKEN_EXPIRE"])
    set_clock(new.signs_from + lifetime - timedelta(seconds=1))
    assert published(jwt_client) == {old_kid, new.kid}  # its last grant token has not expired yet
    set_clock(new.signs_from + lifetime)
    assert published(jwt_client) == {new.kid}


def test_a_long_lived_jwt_keeps_the_key_that_signed_it_published(app, runner, jwt_client, set_clock):
    issued = make_token(expires_in=10 * 86400)
    old_kid = kid_of(issued.value)
    assert runner.invoke(args=["rotate-keys"]).exit_code == 0
    new = db.session.scalar(select(SigningKey).order_by(SigningKey.id.desc()))
    set_clock(new.signs_from + timedelta(seconds=app.config["OIDC_TOKEN_EXPIRE"] + 60))
    assert old_kid in published(jwt_client)  # past the grants' lifetime: kept for the admin-made token
    set_clock(issued.token.expires_at - timedelta(seconds=1))
    assert old_kid in published(jwt_client)
    set_clock(issued.token.expires_at + timedelta(seconds=1))
    assert old_kid not in published(jwt_client)


def test_rotate_now_signs_at_once_and_says_what_it_costs(app, runner, jwt_client):
    old_kid = kid_of(jwt_client.issue())
    cached = jwt.PyJWKSet.from_dict(jwt_client.get("/jwks").get_json())  # a verifier's warm cache
    waiting = runner.invoke(args=["rotate-keys"])
    assert waiting.exit_code == 0
    waiting_kid = db.session.scalar(select(SigningKey.kid).order_by(SigningKey.id.desc()))

    result = runner.invoke(args=["rotate-keys", "--now"])
    assert result.exit_code == 0, result.output
    seconds = app.config["JWKS_CACHE_SECONDS"]
    new_kid = db.session.scalar(select(SigningKey.kid).order_by(SigningKey.id.desc()))
    assert f"Key {new_kid} is published in /jwks and signs from now" in result.output
    assert f"Key {old_kid} no longer signs and stays in /jwks until at least" in result.output
    assert (f"Cost: a verifier that fetched /jwks in the last {seconds} s does not know {new_kid} and refuses "
            f"every token it signs until its cached copy expires (up to {seconds} s") in result.output
    assert f"Withdrew key {waiting_kid}, which was waiting to sign and never signed." in result.output

    token = jwt_client.issue()
    assert kid_of(token) == new_kid
    assert new_kid not in {key.key_id for key in cached.keys}  # the cost, as the output said
    assert new_kid in published(jwt_client) and waiting_kid not in published(jwt_client)
