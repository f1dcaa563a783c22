"""Unauthenticated input that used to cause 500s: characters Authlib cannot quote in an
error description, and NUL bytes, which PostgreSQL cannot store (DataError). Each is a
clear 400 on SQLite and PostgreSQL alike."""

from urllib.parse import quote

import pytest

from tests.api.conftest import bearer
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant, make_token

# On SQLite and PostgreSQL (tests/conftest.py): NUL bytes, which PostgreSQL refuses to store.
pytestmark = pytest.mark.both_databases

REDIRECT_URI = "http://example.org/"
UNQUOTABLE = ['"', "\\", "é", "\t", "\x7f"]


@pytest.fixture
def demo(app):
    return make_application(name="demo", client_id="c1", redirect_uris=[REDIRECT_URI])


def assert_error_page(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "Location" not in response.headers and "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("character", UNQUOTABLE)
def test_an_unquotable_redirect_uri_or_response_type_gets_the_error_page(client, demo, character):
    bad_uri = client.get("/authorize?client_id=c1&response_type=code&redirect_uri="
                         + quote("http://evil.example/" + character))
    assert_error_page(bad_uri)
    assert "redirect_uri parameter holds characters" in bad_uri.get_data(as_text=True)
    bad_type = client.get(f"/authorize?client_id=c1&redirect_uri={quote(REDIRECT_URI)}&response_type="
                          + quote("co" + character + "de"))
    assert_error_page(bad_type)


NUL = "%00"


@pytest.mark.parametrize("method, path, data", [
    ("GET", f"/authorize?client_id=c{NUL}&response_type=code", None),
    ("POST", "/token", {"grant_type": "client_credentials", "client_id": "c\x00", "client_secret": "x"}),
    ("POST", "/introspect", {"token": "t", "client_id": "c\x00", "client_secret": "x"}),
    ("POST", "/revoke", {"token": "t", "client_id": "c\x00", "client_secret": "x"}),
    ("GET", f"/userinfo?access_token=a{NUL}b", None),
])
def test_a_nul_byte_in_an_oauth_request_is_a_400(client, demo, method, path, data):
    response = client.open(path, method=method, data=data)
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)


def test_a_nul_byte_in_the_login_form_is_a_400(client):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "ad\x00min", "password": "x", "csrf_token": token})
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)


def test_nul_bytes_in_api_names_labels_paths_and_searches_are_400(client, app):
    make_tenant("site1")
    master = make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    headers = bearer(master)
    for response in (
        client.post("/api/v1/tenants", json={"name": "a\x00b"}, headers=headers),
        client.patch("/api/v1/tenants/site1", json={"label": "a\x00b"}, headers=headers),
        client.get(f"/api/v1/tenants/site{NUL}1", headers=headers),
        client.get(f"/api/v1/tenants/site1/profiles?q=a{NUL}", headers=headers),
    ):
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["error"] == "invalid_request"


def test_a_nul_byte_in_an_admin_search_is_a_400_page(admin_client):
    response = admin_client.get(f"/admin/tokens?q=a{NUL}", headers={"Accept": "text/html"})
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
