"""CSRF over HTTPS: the token, plus a same-origin check that reads what browsers really
send (Sec-Fetch-Site, Origin, Referer). Flask-WTF's strict check wanted a Referer, which
our own referrer policy had the browser leave out, so nobody could log in over HTTPS."""

import pytest

from portal import create_app
from portal.extensions import db
from tests.conftest import FreshContextClient, base_config, csrf_token_from
from tests.factories import make_user

HTTPS = "https://tessera.example"


@pytest.fixture
def https_client(app, admin_user):
    return app.test_client()


def login(client, headers, base_url=HTTPS, csrf=True):
    page = client.get("/login", base_url=base_url)
    data = {"username": "admin", "password": "correct horse battery"}
    if csrf:
        data["csrf_token"] = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data=data, headers=headers, base_url=base_url)


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # what Chromium sends under a no-referrer policy
    {"Sec-Fetch-Site": "none"},
    {"Origin": HTTPS},
    {"Origin": "null", "Referer": HTTPS + "/login"},
    {"Referer": HTTPS + "/login?next=/admin"},
])
def test_a_same_origin_form_logs_in_over_https(https_client, headers):
    response = login(https_client, headers)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert https_client.get("/admin", base_url=HTTPS).status_code == 200


@pytest.mark.parametrize("headers, reason", [
    ({"Sec-Fetch-Site": "cross-site", "Origin": HTTPS}, "another site (cross-site)"),
    ({"Sec-Fetch-Site": "same-site"}, "another site (same-site)"),
    ({"Origin": "https://evil.example"}, "sent from another site"),
    ({"Referer": "https://evil.example/login"}, "sent from another site"),
    ({"Origin": "null"}, "neither Origin nor Referer"),
    ({}, "neither Origin nor Referer"),
])
def test_a_cross_site_or_unverifiable_form_is_refused_over_https(https_client, headers, reason):
    response = login(https_client, headers)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert https_client.get("/admin", base_url=HTTPS).status_code == 302  # not logged in


def test_the_token_is_still_required_from_our_own_pages(https_client):
    response = login(https_client, {"Sec-Fetch-Site": "same-origin"}, csrf=False)
    assert response.status_code == 400 and "CSRF token is missing" in response.get_data(as_text=True)


def test_plain_http_checks_the_headers_it_gets_and_the_token_alone_otherwise(https_client):
    base = "http://localhost"
    assert login(https_client, {"Origin": "https://evil.example"}, base_url=base).status_code == 400
    assert login(https_client, {}, base_url=base).status_code == 303


def test_exempt_endpoints_are_not_checked(client):
    response = client.post("/token", data={"grant_type": "client_credentials"}, base_url=HTTPS,
                           headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


@pytest.fixture
def proxied_app(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    app = create_app(base_config(tmp_path, f"sqlite:///{tmp_path / 'proxy.db'}", SESSION_COOKIE_SECURE=True))
    app.test_client_class = FreshContextClient
    with app.app_context():
        db.create_all()
        make_user(username="admin", password="correct horse battery", is_admin=True)
        yield app
        db.session.remove()
        db.engine.dispose()


def test_behind_a_tls_proxy_the_forwarded_scheme_counts(proxied_app):
    """docs/deployment.md's proxy setup: TRUSTED_PROXIES=1 and X-Forwarded-Proto: https from nginx."""
    client = proxied_app.test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tessera.example"}
    response = login(client, {**forwarded, "Origin": HTTPS}, base_url="http://127.0.0.1:8000")
    assert response.status_code == 303, response.get_data(as_text=True)


def test_a_proxy_that_is_not_trusted_gets_a_message_that_says_so(app, admin_user):
    client = app.test_client()
    response = login(client, {"Origin": "https://localhost"}, base_url="http://localhost")
    assert response.status_code == 400
    assert "set TRUSTED_PROXIES" in response.get_data(as_text=True)
