"""A NUL character reaches no SQL, whatever carried it (issue 22, point 14): PostgreSQL
cannot store one in text and answered some of them with a 500. Every carrier (Basic
credentials decoded, raw or percent-encoded; a bearer token in a header; a query or form
value; a JSON `\\u0000`; a cookie; X-Forwarded-For and other headers; Crafter's path token)
at every endpoint family is a 400 in that family's shape, on SQLite and PostgreSQL."""

import base64

import pytest

from tests.factories import make_application

# On SQLite and PostgreSQL (tests/conftest.py): NUL bytes, which PostgreSQL refuses to store.
pytestmark = pytest.mark.both_databases

JSON, CRAFTER, PAGE = "json", "crafter", "page"
ENDPOINTS = [
    ("POST", "/token", JSON),
    ("POST", "/o/token/", JSON),
    ("POST", "/introspect", JSON),
    ("POST", "/revoke", JSON),
    ("GET", "/userinfo", JSON),
    ("GET", "/api/v1/access-tokens", JSON),
    ("POST", "/api/v1/tenants", JSON),
    ("GET", "/api/o/v4/tokeninfo/", JSON),
    ("GET", "/api/users", JSON),
    ("GET", "/crafter-profile/api/1/access_token/all", CRAFTER),
    ("POST", "/crafter-profile/api/1/access_token/create", CRAFTER),
    ("GET", "/authorize", PAGE),
    ("GET", "/end_session", PAGE),
    ("POST", "/login", PAGE),
    ("GET", "/admin/tokens", PAGE),
]


def basic(raw: bytes) -> dict:
    return {"headers": {"Authorization": "Basic " + base64.b64encode(raw).decode()}}


CARRIERS = {
    "basic-raw": lambda method: basic(b"a\x00b:secret"),
    "basic-secret": lambda method: basic(b"client:s\x00"),
    "basic-percent-encoded": lambda method: basic(b"a%00b:secret"),
    "bearer-header": lambda method: {"headers": {"Authorization": "Bearer tsr_a\x00b"}},
    "query": lambda method: {"query_string": "access_token=tsr_a%00b"},
    "query-key": lambda method: {"query_string": "client%00id=x"},
    "form": lambda method: {"data": {"client_id": "a\x00b", "token": "t"}} if method == "POST" else None,
    "json": lambda method: {"json": {"name": "a\x00b"}} if method == "POST" else None,
    "cookie-escaped": lambda method: {"headers": {"Cookie": 'tessera_pref="a\\000b"'}},
    "cookie-raw": lambda method: {"headers": {"Cookie": "tessera_pref=a\x00b"}},
    "x-forwarded-for": lambda method: {"headers": {"X-Forwarded-For": "203.0.113.7\x00"}},
    "user-agent": lambda method: {"headers": {"User-Agent": "curl/8\x00"}},
}


@pytest.fixture
def clients(app):
    make_application(name="demo", client_id="client", client_secret="client-secret-0123456789",
                     grant_types=["client_credentials"], redirect_uris=["http://example.org/"])


def assert_refused(response, family, carrier=""):
    body = response.get_data(as_text=True)
    assert response.status_code == 400, (carrier, body)
    assert "NUL character" in body, carrier
    if family == JSON:
        assert response.get_json()["error"] == "invalid_request", carrier
    elif family == CRAFTER:
        assert response.get_json()["errorCode"] == "OTHER", carrier
    else:
        assert response.mimetype == "text/html" and "Location" not in response.headers, carrier


@pytest.mark.parametrize("method, path, family", ENDPOINTS)
def test_a_nul_byte_is_a_400_whatever_carries_it(app, clients, method, path, family):
    client = app.test_client(use_cookies=False)  # sends the Cookie header as given
    for carrier, make in CARRIERS.items():
        if (request := make(method)) is not None:  # None: a GET has no body
            assert_refused(client.open(path, method=method, **request), family, carrier)


def test_a_nul_byte_in_crafters_path_token_is_a_400(client, clients):
    for response in (client.get("/crafter-profile/api/1/access_token/tsr_a%00b"),
                     client.post("/crafter-profile/api/1/access_token/tsr_a%00b/delete")):
        assert_refused(response, CRAFTER)


def test_an_escaped_backslash_before_u0000_in_json_is_no_nul(client, clients):
    """`\\\\u0000` in JSON is a backslash and the text u0000: not refused as a NUL."""
    response = client.post("/api/v1/tenants", data='{"name": "a\\\\u0000b"}', content_type="application/json")
    assert response.status_code == 401  # no token: the body was not refused
    response = client.post("/api/v1/tenants", data='{"name": "a\\\\\\u0000b"}', content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/o/token/"])
def test_basic_credentials_that_are_not_utf8_are_a_400(client, clients, path):
    response = client.post(path, data={"grant_type": "client_credentials", "token": "t"},
                           **basic(b"\xff\xfe:secret"))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert "not UTF-8" in response.get_json()["error_description"]
