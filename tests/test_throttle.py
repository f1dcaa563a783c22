"""Failed client authentication (/token, /introspect, /revoke) and failed bearer tokens
(API, /userinfo) are throttled like logins: per client id and per address, in the
limiter's shared store; past the limit even the right secret or token is refused."""

import pytest

from tests.api.conftest import bearer
from tests.factories import make_application, make_token, make_user


@pytest.fixture
def app_config():
    return {"CLIENT_AUTH_RATE_LIMIT": "3 per minute", "CLIENT_AUTH_IP_RATE_LIMIT": "5 per minute",
            "BEARER_IP_RATE_LIMIT": "3 per minute"}


@pytest.fixture
def service(app):
    return make_application(name="svc", grant_types=["client_credentials"], scope="api")


def token_request(client, application, secret, address="10.0.0.1"):
    return client.post("/token", data={"grant_type": "client_credentials"}, auth=(application.client_id, secret),
                       environ_base={"REMOTE_ADDR": address})


def test_a_client_id_is_throttled_after_its_failures_even_with_the_right_secret(client, service):
    assert [token_request(client, service, "wrong-secret-wrong").status_code for _ in range(3)] == [401] * 3
    refused = token_request(client, service, service.test_secret, address="10.0.0.2")  # another address too
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert refused.get_json()["error"] == "invalid_client"
    assert "Too many failed client authentications" in refused.get_json()["error_description"]


def test_an_address_is_throttled_across_clients(client, service):
    other = make_application(name="other", grant_types=["client_credentials"], scope="api")
    for application in (service, service, other, other, other):
        assert token_request(client, application, "wrong-secret-wrong").status_code == 401
    third = make_application(name="third", grant_types=["client_credentials"], scope="api")
    assert token_request(client, third, third.test_secret).status_code == 429
    assert token_request(client, third, third.test_secret, address="10.0.0.9").status_code == 200


def test_introspect_and_revoke_count_toward_the_same_client_limit(client, service):
    for path in ("/introspect", "/revoke", "/introspect"):
        response = client.post(path, data={"token": "x"}, auth=(service.client_id, "wrong-secret-wrong"))
        assert response.status_code == 401
    assert token_request(client, service, service.test_secret).status_code == 429


def test_successful_authentications_do_not_count(client, service):
    for _ in range(6):
        assert token_request(client, service, service.test_secret).status_code == 200


def test_bearer_guessing_is_throttled_per_address_on_the_api_and_userinfo(client, app):
    user = make_user(username="bob")
    good = make_token(user=user, scope="openid", tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    for guess in ("tsr_guess1", "tsr_guess2", "tsr_guess3"):
        assert client.get("/api/v1/tenants", headers=bearer(guess)).status_code == 401
    api = client.get("/api/v1/tenants", headers=bearer(good))
    assert api.status_code == 429 and api.headers["Retry-After"] == "60"
    assert api.get_json()["error"] == "too_many_requests"
    userinfo = client.get("/userinfo", headers=bearer(good))
    assert userinfo.status_code == 429 and userinfo.get_json()["error"] == "too_many_requests"
    elsewhere = client.get("/api/v1/tenants", headers=bearer(good), environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert elsewhere.status_code == 200


def test_a_missing_token_does_not_count(client):
    for _ in range(5):
        assert client.get("/api/v1/tenants").status_code == 401
    assert client.get("/api/v1/tenants", headers=bearer("tsr_guess")).status_code == 401


class TestInTheDatabase:
    """The default store: counts shared by every worker, read on the request's connection."""

    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_STORAGE_URI": "database://", "BEARER_IP_RATE_LIMIT": "2 per minute",
                "CLIENT_AUTH_RATE_LIMIT": "2 per minute", "CLIENT_AUTH_IP_RATE_LIMIT": "9 per minute"}

    def test_bearer_and_client_failures_count_in_the_database(self, client, service):
        good = make_token(tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
        assert client.get("/api/v1/tenants", headers=bearer(good)).status_code == 200
        for guess in ("tsr_guess1", "tsr_guess2"):
            assert client.get("/api/v1/tenants", headers=bearer(guess)).status_code == 401
        assert client.get("/api/v1/tenants", headers=bearer(good)).status_code == 429
        for _ in range(2):
            assert token_request(client, service, "wrong-secret-wrong").status_code == 401
        assert token_request(client, service, service.test_secret).status_code == 429
