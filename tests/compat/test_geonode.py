"""GeoNode's endpoints, sent what GeoServer's GeoNode OAuth2 module and its GeoNode REST
role service send (docs/geonode-crafter.md: GeoNode and GeoServer), on SQLite and PostgreSQL."""

import base64
import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from portal.domain import clock
from portal import tokens
from portal.config import ConfigError
from portal.extensions import db
from tests.conftest import base_config, csrf_token_from
from tests.factories import make_application, make_tenant, make_token, make_user
from tests.oauth.conftest import REDIRECT_URI as FLOW_REDIRECT_URI
from tests.oauth.conftest import Flow, query_of

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

CLIENT_ID = "geoserver-client"
CLIENT_SECRET = "geoserver-secret-0123456789"
REDIRECT_URI = "http://geoserver.example.org/geoserver/index.html"
PASSWORD = "correct horse battery"
FULL_SCOPE = "openid email profile groups"
CONSENT_ACTION = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict:
    """GeoServer sends its client credentials with every tokeninfo call."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def site1(app):
    return make_tenant("site1", "Site One")


@pytest.fixture
def geoserver(app):
    return make_application(name="geoserver", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_uris=[REDIRECT_URI], response_types=["code"], scope=FULL_SCOPE)


@pytest.fixture
def alice(site1):
    return make_user("alice", PASSWORD, name="Alice Liddell", email="alice@example.org", tenant=site1)


@pytest.fixture
def alice_token(geoserver, alice) -> str:
    return make_token(application=geoserver, user=alice, expires_in=3600, scope=FULL_SCOPE).value


def tokeninfo(client, token=None, **kwargs):
    data = {} if token is None else {"token": token}
    return client.post("/api/o/v4/tokeninfo/", data=data, headers=basic(), **kwargs)


# --- GeoServer's login: /o/authorize/ and /o/token/, then tokeninfo ------------------------

def test_geoserver_login_through_the_django_oauth_toolkit_paths(client, auth, geoserver, alice):
    response = auth.login("alice", PASSWORD)
    assert response.status_code == 303
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
             "scope": "openid email profile", "state": "geoserver"}
    page = client.get("/o/authorize/?" + urlencode(query))
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    action = html.unescape(CONSENT_ACTION.search(text).group(1))
    assert action.startswith("/o/authorize")  # the consent form posts back to the same path
    assert client.post(action, data={"decision": "allow"}).status_code == 400  # its CSRF token is checked
    response = client.post(action, data={"decision": "allow", "csrf_token": csrf_token_from(text)})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    code = parse_qs(urlsplit(location).query)["code"][0]

    response = client.post("/o/token/", headers=basic(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert response.status_code == 200, response.get_data(as_text=True)
    access_token = response.get_json()["access_token"]

    response = tokeninfo(client, access_token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["client_id"] == CLIENT_ID and body["issued_to"] == body["username"] == "alice"
    assert body["user_id"] == alice.sub and body["access_token"] == access_token
    assert 0 < body["expires_in"] <= 3600 * 1000
    assert response.headers["Authorization"] == f"Bearer {access_token}"


def test_o_token_errors_are_json(client, geoserver):
    response = client.get("/o/token/")
    assert response.status_code == 405 and response.is_json
    response = client.post("/o/token/", headers=basic(secret="wrong-secret-000000"),
                           data={"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT_URI})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


# --- tokeninfo ---------------------------------------------------------------------------

def test_tokeninfo_answers_geonodes_fields(client, alice_token, alice):
    response = tokeninfo(client, alice_token)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"client_id", "user_id", "username", "issued_to", "access_token", "email",
                         "access_type", "expires_in", "aud"}
    assert body["email"] == "alice@example.org" and body["aud"] == [CLIENT_ID]  # a list: GeoServer reads a collection
    assert body["access_type"] == "online"
    assert 3590 * 1000 < body["expires_in"] <= 3600 * 1000  # milliseconds, as GeoNode counts
    assert response.headers["Authorization"] == f"Bearer {alice_token}"
    assert response.headers["Cache-Control"] == "no-store"


def test_tokeninfo_without_a_token_field_is_invalid_request(client, alice_token):
    for response in (client.post("/api/o/v4/tokeninfo/", data={}, headers=basic()),
                     client.post("/api/o/v4/tokeninfo/", data={"access_token": alice_token}),
                     client.post("/api/o/v4/tokeninfo/", json={"token": alice_token}),
                     client.get(f"/api/o/v4/tokeninfo/?token={alice_token}"),
                     client.post("/api/o/v4/tokeninfo/", data={"token": [alice_token, alice_token]}),
                     client.post("/api/o/v4/tokeninfo/", data={"token": ""})):
        assert response.status_code == 403
        assert response.get_json() == {"error": "invalid_request"}
        assert "Authorization" not in response.headers


def test_tokeninfo_refuses_tokens_that_do_not_work(client, geoserver, alice, alice_token, monkeypatch):
    assert tokeninfo(client, "tsr_no_such_token_0000000000").get_json() == {"error": "unknown token"}
    revoked = make_token(application=geoserver, user=alice).value
    tokens.revoke(tokens.find_by_value(revoked), actor="test")
    assert tokeninfo(client, revoked).get_json() == {"error": "token revoked"}
    no_user = make_token(application=geoserver).value
    response = tokeninfo(client, no_user)
    assert response.status_code == 403 and response.get_json() == {"error": "token has no user"}
    expired = make_token(application=geoserver, user=alice, expires_in=60).value
    now, later = clock.now, clock.now() + timedelta(seconds=120)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = tokeninfo(client, expired)
    assert response.status_code == 403 and response.get_json() == {"error": "token expired"}
    monkeypatch.setattr(clock, "now", now)
    alice.active = False
    db.session.commit()
    response = tokeninfo(client, alice_token)
    assert response.status_code == 403 and response.get_json() == {"error": "user deactivated"}


@pytest.mark.parametrize("app_config", [{"BEARER_IP_RATE_LIMIT": "3 per minute"}])
def test_tokeninfo_guesses_are_throttled_like_bearer_tokens(client, alice_token):
    for attempt in range(3):
        assert tokeninfo(client, f"tsr_guess_{attempt}_000000000000").status_code == 403
    response = tokeninfo(client, "tsr_guess_3_000000000000")
    assert response.status_code == 429 and response.get_json() == {"error": "too_many_requests"}
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert tokeninfo(client, alice_token).status_code == 200  # a live token, whatever the address sent before


# --- userinfo ------------------------------------------------------------------------------

def test_userinfo_with_a_bearer_header(client, alice_token, alice):
    response = client.get("/api/o/v4/userinfo", headers={"Authorization": f"Bearer {alice_token}"})
    assert response.status_code == 200
    assert response.get_json() == {
        "sub": alice.sub, "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
        "email": "alice@example.org", "preferred_username": "alice", "groups": ["site1"]}
    assert response.headers["Cache-Control"] == "no-store"


def test_userinfo_of_an_administrator_has_the_admin_group(client, geoserver):
    admin = make_user("root", PASSWORD, name="Root", is_admin=True)
    value = make_token(application=geoserver, user=admin, scope=FULL_SCOPE).value
    body = client.get("/api/o/v4/userinfo/", headers={"Authorization": f"Bearer {value}"}).get_json()
    assert body["groups"] == ["admin"] and body["given_name"] == "Root" and body["family_name"] == ""


def test_userinfo_without_a_user_is_401(client, geoserver):
    response = client.get("/api/o/v4/userinfo")
    assert response.status_code == 401 and response.get_json()["status"] == "error"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'
    response = client.get("/api/o/v4/userinfo", headers={"Authorization": "Bearer tsr_unknown_0000000000000"})
    assert response.status_code == 401 and "invalid_token" in response.headers["WWW-Authenticate"]
    no_user = make_token(application=geoserver).value
    response = client.get("/api/o/v4/userinfo", headers={"Authorization": f"Bearer {no_user}"})
    assert response.status_code == 401 and response.get_json()["errors"]["user"]


# --- the role service ----------------------------------------------------------------------

def test_role_service_from_an_allowed_address(client, alice):
    make_tenant("site2")
    admin_tenant = make_tenant("admin")  # a tenant named admin is never a group (it would make GeoServer admins)
    make_user("mallory", PASSWORD, tenant=admin_tenant)
    make_user("root", PASSWORD, is_admin=True, email="root@example.org")
    make_user("gone", PASSWORD, tenant=alice.tenant, active=False)
    assert client.get("/api/roles").get_json() == {"groups": ["site1", "site2", "admin"]}
    assert client.get("/api/roles/").status_code == 200
    assert client.get("/api/adminRole").get_json() == {"adminRole": "admin"}
    assert client.get("/api/users").get_json() == {"users": [
        {"username": "alice", "groups": ["site1"]},
        {"username": "mallory", "groups": []},
        {"username": "root", "groups": ["admin"]},
    ]}
    # GeoServer asks for one user by name: /api/users/<username>; GeoNode also takes an email.
    assert client.get("/api/users/alice").get_json() == {"users": [{"username": "alice", "groups": ["site1"]}]}
    assert client.get("/api/users/root@example.org").get_json() == {"users": [{"username": "root",
                                                                                "groups": ["admin"]}]}
    assert client.get("/api/users/gone").get_json() == {"users": []}
    assert client.get("/api/users/nobody").get_json() == {"users": []}


@pytest.mark.parametrize("path", ["/api/roles", "/api/adminRole", "/api/users", "/api/users/alice"])
def test_role_service_refuses_other_addresses(client, alice, path):
    response = client.get(path, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403 and response.get_json() == {"error": "unauthorized_request"}
    assert client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"AUTH_IP_WHITELIST": "10.0.0.0/8, 192.0.2.7"}])
def test_the_allow_list_takes_addresses_and_networks(client, alice):
    assert client.get("/api/roles", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/api/roles", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/api/roles", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 403
    assert client.get("/api/roles", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403


def test_a_bad_allow_list_stops_the_start(tmp_path, database_url):
    from portal import create_app

    with pytest.raises(ConfigError, match="AUTH_IP_WHITELIST"):
        create_app(base_config(tmp_path, database_url, AUTH_IP_WHITELIST="10.0.0.0/8, geoserver.local"))


@pytest.fixture
def behind_proxy(monkeypatch):
    """TRUSTED_PROXIES=1, read when the app is made (request this before `client`)."""
    monkeypatch.setenv("TRUSTED_PROXIES", "1")


@pytest.mark.parametrize("app_config", [{"AUTH_IP_WHITELIST": "192.0.2.7"}])
def test_the_allow_list_reads_the_address_behind_trusted_proxies(behind_proxy, client):
    """Behind nginx (TRUSTED_PROXIES=1) the client is the address nginx saw, not nginx."""
    local = {"REMOTE_ADDR": "127.0.0.1"}
    allowed = client.get("/api/roles", environ_base=local, headers={"X-Forwarded-For": "192.0.2.7"})
    refused = client.get("/api/roles", environ_base=local, headers={"X-Forwarded-For": "198.51.100.1"})
    assert allowed.status_code == 200 and refused.status_code == 403


@pytest.mark.parametrize("app_config", [{"GEONODE_COMPAT": False}])
def test_geonode_compat_off_removes_every_geonode_path(client, alice_token):
    for method, path in (("get", "/o/authorize/"), ("post", "/o/token/"), ("post", "/api/o/v4/tokeninfo/"),
                         ("get", "/api/o/v4/userinfo"), ("get", "/api/roles"), ("get", "/api/adminRole"),
                         ("get", "/api/users"), ("get", "/api/users/alice")):
        response = getattr(client, method)(path, data={"token": alice_token} if method == "post" else None)
        assert response.status_code == 404, path
        assert response.is_json or path == "/o/authorize/"  # a browser's page
    assert client.post("/token", data={"grant_type": "client_credentials"}).status_code == 401  # Tessera's own


@pytest.mark.both_databases  # names PostgreSQL cannot store or compare
@pytest.mark.parametrize("name", ["a%00b", "%FF%FE", "x" * 5000, "a/b", "%2e%2e"])
def test_odd_user_names_are_no_one_never_a_500(client, alice, name):
    response = client.get(f"/api/users/{name}")
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)
    assert response.is_json
    if response.status_code == 200:
        assert response.get_json() == {"users": []}


# --- no more than the token's scopes release (the claim rules of /userinfo) ----------------

def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def scoped_token(geoserver, alice, scope: str) -> str:
    return make_token(application=geoserver, user=alice, scope=scope).value


def test_an_openid_only_token_tells_every_endpoint_only_whom_it_is_for(client, geoserver, alice):
    value = scoped_token(geoserver, alice, "openid")
    assert client.get("/userinfo", headers=bearer(value)).get_json() == {"sub": alice.sub}
    assert client.get("/api/o/v4/userinfo", headers=bearer(value)).get_json() == {"sub": alice.sub}
    body = tokeninfo(client, value).get_json()
    assert body == {"client_id": CLIENT_ID, "user_id": alice.sub, "access_token": value, "access_type": "online",
                    "expires_in": body["expires_in"], "aud": [CLIENT_ID]}
    assert "alice" not in str(body) and "example.org" not in str(body)


# scope → the GeoNode userinfo fields and tokeninfo's user fields it lets out
RELEASED = [
    ("", set(), set()),
    ("openid", {"sub"}, {"user_id"}),
    ("openid profile", {"sub", "name", "given_name", "family_name", "preferred_username"},
     {"user_id", "username", "issued_to"}),
    ("openid email", {"sub", "email"}, {"user_id", "email"}),
    ("profile", {"name", "given_name", "family_name", "preferred_username"}, {"username", "issued_to"}),
    ("groups", {"groups"}, set()),
    # GeoNode's API scopes act as the user, so they name the user: what GeoServer needs to log in
    ("read", {"sub", "preferred_username"}, {"user_id", "username", "issued_to"}),
    ("write groups", {"sub", "preferred_username", "groups"}, {"user_id", "username", "issued_to"}),
    ("openid email profile groups", {"sub", "name", "given_name", "family_name", "email", "preferred_username",
                                     "groups"}, {"user_id", "username", "issued_to", "email"}),
]
TOKENINFO_ALWAYS = {"client_id", "access_token", "access_type", "expires_in", "aud"}


@pytest.mark.parametrize(("scope", "userinfo_fields", "tokeninfo_fields"), RELEASED)
def test_geonode_answers_hold_only_what_the_scopes_release(client, geoserver, alice, scope, userinfo_fields,
                                                           tokeninfo_fields):
    value = scoped_token(geoserver, alice, scope)
    body = client.get("/api/o/v4/userinfo", headers=bearer(value)).get_json()
    assert set(body) == userinfo_fields
    everything = {"sub": alice.sub, "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
                  "email": "alice@example.org", "preferred_username": "alice", "groups": ["site1"]}
    assert body == {field: everything[field] for field in userinfo_fields}
    info = tokeninfo(client, value).get_json()
    assert set(info) == TOKENINFO_ALWAYS | tokeninfo_fields
    assert "verified_email" not in info  # Tessera verifies no address


@pytest.mark.parametrize("scope", ["openid", "openid profile", "openid email", "openid email profile", "openid read"])
def test_geonode_userinfo_and_userinfo_release_the_same_claims(client, geoserver, alice, scope):
    """One rule: GeoNode's userinfo says a claim exactly when /userinfo does (given_name and
    family_name are GeoNode's split of the name)."""
    value = scoped_token(geoserver, alice, scope)
    oidc = client.get("/userinfo", headers=bearer(value)).get_json()
    geonode = client.get("/api/o/v4/userinfo", headers=bearer(value)).get_json()
    assert set(geonode) - {"given_name", "family_name"} == set(oidc) - {"updated_at", "email_verified"}


def test_a_user_without_an_email_gets_geonodes_empty_email_when_it_is_granted(client, geoserver, site1):
    bob = make_user("bob", PASSWORD, tenant=site1)
    bob.email = None  # imported users may have none
    db.session.commit()
    value = make_token(application=geoserver, user=bob, scope="openid email").value
    assert client.get("/api/o/v4/userinfo", headers=bearer(value)).get_json() == {"sub": bob.sub, "email": ""}
    assert tokeninfo(client, value).get_json()["email"] == ""


def test_geoserver_with_its_default_scopes_still_logs_users_in(client, auth, site1, alice):
    """GeoServer's GeoNode module asks for `read,write,groups` by default and takes the user
    from tokeninfo's `issued_to`; its roles from the role service."""
    make_application(name="geoserver-default", client_id="geoserver-default", client_secret=CLIENT_SECRET,
                     redirect_uris=[REDIRECT_URI], response_types=["code"], scope="read write groups")
    auth.login("alice", PASSWORD)
    query = {"response_type": "code", "client_id": "geoserver-default", "redirect_uri": REDIRECT_URI,
             "scope": "read write groups", "state": "s"}
    page = client.get("/o/authorize/?" + urlencode(query))
    text = page.get_data(as_text=True)
    assert "learns your username" in text and "The groups you belong to" in text  # what the consent gives
    response = client.post(html.unescape(CONSENT_ACTION.search(text).group(1)),
                           data={"decision": "allow", "csrf_token": csrf_token_from(text)})
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    issued = client.post("/o/token/", headers=basic("geoserver-default"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}).get_json()
    assert issued["scope"] == "read write groups"
    body = tokeninfo(client, issued["access_token"]).get_json()
    assert body["issued_to"] == body["username"] == "alice" and body["client_id"] == "geoserver-default"
    assert "email" not in body
    assert client.get("/api/users/alice").get_json() == {"users": [{"username": "alice", "groups": ["site1"]}]}


# --- audiences: tokeninfo says the token's; GEONODE_AUDIENCES names those accepted -----------

GEOSERVER_RESOURCE = "https://geoserver.example.org/geoserver/"
API_RESOURCE = "https://api.example.org/"


@pytest.fixture
def resource_flow(client, auth, alice):
    """A client registered for two resource servers (RFC 8707), its user logged in."""
    application = make_application(name="mapclient", client_id="mapclient", client_secret=CLIENT_SECRET,
                                   redirect_uris=[FLOW_REDIRECT_URI], response_types=["code"], scope=FULL_SCOPE,
                                   resources=[GEOSERVER_RESOURCE, API_RESOURCE])
    flow = Flow(client, auth, application, CLIENT_SECRET, alice)
    flow.login()
    return flow


def token_for(flow, *resources: str) -> str:
    """An access token of alice's through /authorize and /token, for these resources (none: for the client)."""
    page = flow.client.get("/authorize?" + urlencode(flow.params(scope=FULL_SCOPE, resource=list(resources)),
                                                     doseq=True))
    response = flow.consent(page) if page.status_code == 200 else page
    issued = flow.token(query_of(response.headers["Location"])["code"])
    assert issued.status_code == 200, issued.get_data(as_text=True)
    return issued.get_json()["access_token"]


def test_tokeninfo_says_the_tokens_audience_as_a_list(client, alice_token, resource_flow):
    assert tokeninfo(client, alice_token).get_json()["aud"] == [CLIENT_ID]  # no resource: the client it was issued to
    for_geoserver = token_for(resource_flow, GEOSERVER_RESOURCE)
    assert tokeninfo(client, for_geoserver).get_json()["aud"] == [GEOSERVER_RESOURCE]
    for_both = token_for(resource_flow, GEOSERVER_RESOURCE, API_RESOURCE)
    assert tokeninfo(client, for_both).get_json()["aud"] == [GEOSERVER_RESOURCE, API_RESOURCE]


def test_by_default_every_audience_is_accepted(client, alice, resource_flow):
    other = make_application(name="other", client_id="other-client")
    assert tokeninfo(client, make_token(application=other, user=alice, scope="openid").value).status_code == 200
    for_api = token_for(resource_flow, API_RESOURCE)
    assert tokeninfo(client, for_api).status_code == 200


@pytest.mark.parametrize("app_config", [{"GEONODE_AUDIENCES": f"{CLIENT_ID}, {GEOSERVER_RESOURCE}",
                                         "BEARER_IP_RATE_LIMIT": "2 per minute"}])
def test_geonode_audiences_refuses_tokens_made_for_others(client, alice, alice_token, resource_flow):
    other = make_application(name="other", client_id="other-client")
    for_other_client = make_token(application=other, user=alice, scope=FULL_SCOPE).value
    for_api = token_for(resource_flow, API_RESOURCE)
    for_mapclient = token_for(resource_flow)  # aud: mapclient, not listed
    for value in (for_other_client, for_api, for_mapclient, for_other_client, for_api):
        response = tokeninfo(client, value)
        assert response.status_code == 403 and response.get_json() == {"error": "token for another audience"}
        assert "Authorization" not in response.headers
        response = client.get("/api/o/v4/userinfo", headers=bearer(value))
        assert response.status_code == 401 and response.get_json()["status"] == "error"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # refused like an invalid token, but not counted as a guess: the limit (2) is not reached
    assert tokeninfo(client, alice_token).status_code == 200  # aud: the listed client id
    for_geoserver = token_for(resource_flow, GEOSERVER_RESOURCE)
    assert tokeninfo(client, for_geoserver).get_json()["aud"] == [GEOSERVER_RESOURCE]  # the listed resource
    for_both = token_for(resource_flow, API_RESOURCE, GEOSERVER_RESOURCE)
    assert client.get("/api/o/v4/userinfo", headers=bearer(for_both)).status_code == 200  # one of its audiences
    # Tessera's own endpoints are not GeoNode's: the setting does not touch them
    assert client.get("/userinfo", headers=bearer(for_other_client)).status_code == 200


@pytest.mark.parametrize("value", ["https://geoserver.example.org/#top", "*", "geo@server", "/relative/path",
                                   "geoserver-client, mailto:x", "x" * 101])
def test_a_bad_geonode_audiences_stops_the_start(tmp_path, database_url, monkeypatch, value):
    from portal import create_app

    monkeypatch.setenv("GEONODE_AUDIENCES", value)
    with pytest.raises(ConfigError, match="GEONODE_AUDIENCES"):
        create_app(base_config(tmp_path, database_url))


def test_geonode_audiences_from_the_environment(tmp_path, database_url, monkeypatch):
    from portal import create_app

    monkeypatch.setenv("GEONODE_AUDIENCES", f" {CLIENT_ID} ,{GEOSERVER_RESOURCE}  other ")
    app = create_app(base_config(tmp_path, database_url))
    assert app.extensions["geonode_audiences"] == frozenset({CLIENT_ID, GEOSERVER_RESOURCE, "other"})
    monkeypatch.setenv("GEONODE_AUDIENCES", " ")
    assert create_app(base_config(tmp_path, database_url)).extensions["geonode_audiences"] is None  # any
