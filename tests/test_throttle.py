"""Client secrets (/token, /o/token, /introspect, /revoke) and bearer tokens (API,
/userinfo, GeoNode, Crafter) cannot be guessed online: they are checked first, a right one
passes whatever others failed and without a statement on the counters, and a failure counts
against the address (and a confidential client's id at that address), answered 429 with
Retry-After once over the limit (docs/operations.md: Throttling)."""

import base64
import hashlib

import pytest
from sqlalchemy import event

from portal.web import throttle
from portal.extensions import db
from portal.domain.hashing import django_password_matches
from portal.models import Application
from tests.api.conftest import bearer
from tests.conftest import Auth
from tests.factories import make_application, make_token, make_user
from tests.oauth.conftest import REDIRECT_URI, Flow, pkce_pair

STRANGER, OWNER = "10.0.0.1", "10.0.0.2"
RIGHT_SECRET_ENDPOINTS = ("/token", "/o/token", "/introspect", "/revoke")


@pytest.fixture
def app_config():
    return {"CLIENT_AUTH_RATE_LIMIT": "3 per minute", "CLIENT_AUTH_IP_RATE_LIMIT": "5 per minute",
            "BEARER_IP_RATE_LIMIT": "3 per minute"}


@pytest.fixture
def service(app):
    return make_application(name="svc", grant_types=["client_credentials"], scope="api")


def token_request(client, application, secret, address=STRANGER, path="/token"):
    data = {"grant_type": "client_credentials"} if path.endswith("token") else {"token": "tsr_whatever_00000000"}
    return client.post(path, data=data, auth=(application.client_id, secret), environ_base={"REMOTE_ADDR": address})


# --- client authentication ------------------------------------------------------------------

def test_a_right_secret_is_answered_whatever_others_failed_for_the_client(client, service):
    """Issue 22 point 1: failures for a public client id used to lock out all its users."""
    statuses = [token_request(client, service, "wrong-secret-wrong").status_code for _ in range(10)]
    assert statuses == [401] * 3 + [429] * 7
    for address in (OWNER, STRANGER):  # from every address, the stranger's own too
        for path in RIGHT_SECRET_ENDPOINTS:
            assert token_request(client, service, service.test_secret, address, path).status_code == 200, path


def test_a_failure_over_the_limit_is_429_with_the_seconds_left_in_the_window(client, service):
    for _ in range(3):
        assert token_request(client, service, "wrong-secret-wrong").status_code == 401
    refused = token_request(client, service, "wrong-secret-wrong")
    assert refused.status_code == 429 and refused.get_json()["error"] == "invalid_client"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "Too many failed client authentications" in refused.get_json()["error_description"]
    # The client's counter is kept per address: the same client elsewhere still gets 401.
    assert token_request(client, service, "wrong-secret-wrong", address=OWNER).status_code == 401


def test_an_address_is_throttled_across_clients_but_a_right_secret_still_passes(client, service):
    other = make_application(name="other", grant_types=["client_credentials"], scope="api")
    third = make_application(name="third", grant_types=["client_credentials"], scope="api")
    for application in (service, service, other, other, other):
        assert token_request(client, application, "wrong-secret-wrong").status_code == 401
    assert token_request(client, third, "wrong-secret-wrong").status_code == 429
    assert token_request(client, third, "wrong-secret-wrong", address=OWNER).status_code == 401
    assert token_request(client, third, third.test_secret).status_code == 200


def test_introspect_and_revoke_count_toward_the_same_counters(client, service):
    for path in ("/introspect", "/revoke", "/introspect"):
        assert token_request(client, service, "wrong-secret-wrong", path=path).status_code == 401
    assert token_request(client, service, "wrong-secret-wrong").status_code == 429


def test_successful_authentications_do_not_count(client, service):
    for _ in range(6):
        assert token_request(client, service, service.test_secret).status_code == 200


def test_a_public_clients_code_exchange_works_while_strangers_flood_its_client_id(client, app):
    make_user(username="alice")
    spa = make_application(name="spa", client_type="public", redirect_uris=[REDIRECT_URI], scope="openid")
    for number in range(20):  # wrong "secrets" for the public client, from twenty addresses
        flooded = client.post("/token", data={"grant_type": "authorization_code", "code": "x", "client_id":
                                              spa.client_id, "client_secret": "guess"},
                              environ_base={"REMOTE_ADDR": f"10.1.0.{number}"})
        assert flooded.status_code == 401
    flow = Flow(client, Auth(client), spa, None, None)
    assert flow.auth.login("alice").status_code == 303
    verifier, challenge = pkce_pair()
    code = flow.code(scope="openid", code_challenge=challenge, code_challenge_method="S256")
    response = flow.token(code, secret=None, code_verifier=verifier)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_public_clients_failures_count_against_the_address_only(client, app):
    spa = make_application(name="spa", client_type="public", redirect_uris=[REDIRECT_URI], scope="openid")
    data = {"grant_type": "authorization_code", "code": "x", "client_id": spa.client_id, "client_secret": "guess"}
    statuses = [client.post("/token", data=data, environ_base={"REMOTE_ADDR": STRANGER}).status_code
                for _ in range(6)]
    assert statuses == [401] * 5 + [429]  # the address's limit (5), not the client's (3)


def django_pbkdf2(secret: str, iterations: int = 100_000) -> str:
    salt = "saltsaltsalt"
    derived = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(derived).decode()}"


def test_an_imported_slow_secret_is_not_checked_from_an_address_over_its_limit(client, service, monkeypatch):
    legacy = make_application(name="legacy", grant_types=["client_credentials"], scope="api")
    db.session.get(Application, legacy.id).client_secret_hash = django_pbkdf2("old django secret")
    db.session.commit()
    checks = []
    monkeypatch.setattr("portal.models.application.django_password_matches",
                        lambda *args: checks.append(1) or django_password_matches(*args))
    for _ in range(6):  # another client's failures put the address over its limit (5)
        token_request(client, service, "wrong-secret-wrong")
    refused = token_request(client, legacy, "old django secret")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60 and checks == []
    assert token_request(client, legacy, "old django secret", address=OWNER).status_code == 200 and checks == [1]


# --- bearer tokens --------------------------------------------------------------------------

@pytest.fixture
def alice_token(app):
    user = make_user(username="alice")
    return make_token(user=user, scope="openid", master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}],
                      application=make_application(name="geoserver")).value


def test_a_live_token_passes_from_an_address_that_sent_junk(client, alice_token):
    """Issue 22 point 1: a relay (GeoServer calling tokeninfo for its callers) shares one
    address; its junk must not refuse the valid tokens behind it."""
    junk = [client.post("/api/o/v4/tokeninfo", data={"token": f"tsr_junk_{n}_000000000000"}).status_code
            for n in range(5)]
    assert junk == [403] * 3 + [429] * 2
    assert client.post("/api/o/v4/tokeninfo", data={"token": alice_token}).status_code == 200
    assert client.get("/api/v1/tenants", headers=bearer(alice_token)).status_code == 200
    assert client.get("/userinfo", headers=bearer(alice_token)).status_code == 200
    assert client.get("/api/o/v4/userinfo", headers=bearer(alice_token)).status_code == 200
    assert client.get(f"/crafter-profile/api/1/access_token/all?accessTokenId={alice_token}").status_code == 200


@pytest.mark.parametrize("path, error", [("/api/v1/tenants", "too_many_requests"),
                                         ("/userinfo", "too_many_requests")])
def test_bad_tokens_over_the_limit_get_429_with_the_seconds_left(client, path, error):
    for guess in ("tsr_guess1", "tsr_guess2", "tsr_guess3"):
        refused = client.get(path, headers=bearer(guess))
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    refused = client.get(path, headers=bearer("tsr_guess4"))
    assert refused.status_code == 429 and refused.get_json()["error"] == error
    assert 0 < int(refused.headers["Retry-After"]) <= 60 and "WWW-Authenticate" not in refused.headers
    elsewhere = client.get(path, headers=bearer("tsr_guess5"), environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert elsewhere.status_code == 401


def test_a_missing_token_does_not_count(client):
    for _ in range(5):
        assert client.get("/api/v1/tenants").status_code == 401
    assert client.get("/api/v1/tenants", headers=bearer("tsr_guess")).status_code == 401


# --- the default store ----------------------------------------------------------------------

@pytest.mark.both_databases  # the counters in the database's own store
class TestInTheDatabase:
    """database://: counts shared by every worker; nothing read or written when the secret is right."""

    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_STORAGE_URI": "database://", "BEARER_IP_RATE_LIMIT": "2 per minute",
                "CLIENT_AUTH_RATE_LIMIT": "2 per minute", "CLIENT_AUTH_IP_RATE_LIMIT": "9 per minute"}

    @pytest.fixture
    def counter_statements(self, app):
        seen = []

        def note(conn, cursor, statement, parameters, context, executemany):
            if "rate_limit_counters" in statement:
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", note)
        yield seen
        event.remove(db.engine, "before_cursor_execute", note)

    def test_failures_count_in_the_database_and_right_secrets_still_pass(self, client, service):
        good = make_token(tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
        assert [client.get("/api/v1/tenants", headers=bearer(f"tsr_guess{n}")).status_code
                for n in range(3)] == [401, 401, 429]
        assert client.get("/api/v1/tenants", headers=bearer(good)).status_code == 200
        assert [token_request(client, service, "wrong-secret-wrong").status_code for _ in range(3)] == [401, 401, 429]
        assert token_request(client, service, service.test_secret).status_code == 200

    def test_a_right_secret_and_a_live_token_touch_no_counter(self, client, service, counter_statements):
        """The hot paths run no statement on rate_limit_counters; a failure does."""
        good = make_token(tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
        assert client.get("/api/v1/tenants", headers=bearer(good)).status_code == 200
        assert token_request(client, service, service.test_secret).status_code == 200
        assert counter_statements == []
        assert token_request(client, service, "wrong-secret-wrong").status_code == 401
        assert counter_statements


def test_a_bad_limit_or_store_stops_start_up_naming_the_setting(tmp_path):
    from portal import create_app
    from portal.config import ConfigError
    from tests.conftest import base_config

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT"):
        create_app(base_config(tmp_path, url, LOGIN_RATE_LIMIT="lots"))
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        create_app(base_config(tmp_path, url, RATELIMIT_STORAGE_URI="carrier-pigeon://"))


def test_each_kind_names_settings_that_exist(app):
    for kind in (throttle.PASSWORD, throttle.CLIENT_SECRET, throttle.BEARER_TOKEN):
        for setting in (kind.per_address, kind.per_subject, kind.per_device):
            assert setting is None or setting in app.config


def test_no_flask_limiter_is_loaded(tmp_path):
    """One throttle (portal.web.throttle): the served app never imports Flask-Limiter."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "RATELIMIT_STORAGE_URI")}
    env.update(TESSERA_INSTANCE_PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    probe = "import sys, wsgi; print('flask_limiter' in sys.modules, wsgi.app.extensions['throttle'])"
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False <portal.web.ratelimit.DatabaseStorage")
