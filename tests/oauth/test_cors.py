"""CORS for browser public clients: the origins of public clients' redirect URIs, and only
those, may call /token, /userinfo, /revoke, /jwks and discovery; preflights are answered;
the portal, /authorize and the JSON API send no CORS headers at all."""

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.oauth.cors import web_origin
from tests.factories import make_application, make_token

SPA = "https://spa.example"
CORS_PATHS = ["/token", "/userinfo", "/revoke", "/jwks", "/.well-known/openid-configuration",
              "/.well-known/oauth-authorization-server", "/token/", "/jwks/"]


@pytest.fixture
def spa(app):
    make_application(name="confidential", redirect_uris=["https://backend.example/cb"])
    make_application(name="native", client_type="public", redirect_uris=["com.example.app:/cb"])
    return make_application(name="spa", client_type="public",
                            redirect_uris=[SPA + "/callback", "http://localhost:5173/cb"])


def preflight(client, path, origin, method="POST", headers="authorization, content-type"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def cors_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", CORS_PATHS)
def test_a_preflight_from_a_registered_spa_origin_succeeds(client, spa, path):
    response = preflight(client, path, SPA, method="GET" if "jwks" in path or "well-known" in path else "POST")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert "Access-Control-Allow-Credentials" not in response.headers
    allowed_headers = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    expected = {"POST"} if path.startswith(("/token", "/revoke")) else {"GET", "POST"} if "userinfo" in path \
        else {"GET"}
    assert methods == expected
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://backend.example", "https://spa.example:8443",
                                    "http://spa.example", "null", "com.example.app:"])
@pytest.mark.parametrize("path", ["/token", "/jwks", "/.well-known/openid-configuration"])
def test_other_origins_get_no_cors_headers(client, spa, origin, path):
    response = preflight(client, path, origin)
    assert cors_headers(response) == {}
    assert "Origin" in response.headers["Vary"]


def test_a_port_is_part_of_the_origin(client, spa):
    assert preflight(client, "/token", "http://localhost:5173").headers["Access-Control-Allow-Origin"] == \
        "http://localhost:5173"
    assert cors_headers(preflight(client, "/token", "http://localhost:5174")) == {}


def test_real_requests_from_the_spa_can_read_the_answer(client, spa, oauth_user):
    jwks = client.get("/jwks", headers={"Origin": SPA})
    assert jwks.status_code == 200 and jwks.headers["Access-Control-Allow-Origin"] == SPA
    assert "Origin" in jwks.headers["Vary"]
    discovery = client.get("/.well-known/openid-configuration", headers={"Origin": SPA})
    assert discovery.headers["Access-Control-Allow-Origin"] == SPA
    value = make_token(application=spa, user=oauth_user, scope="openid profile").value
    userinfo = client.get("/userinfo", headers={"Origin": SPA, "Authorization": f"Bearer {value}"})
    assert userinfo.status_code == 200 and userinfo.headers["Access-Control-Allow-Origin"] == SPA
    refused = client.get("/userinfo", headers={"Origin": SPA, "Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == SPA
    assert "WWW-Authenticate" in refused.headers["Access-Control-Expose-Headers"]
    revoked = client.post("/revoke", data={"token": value, "client_id": spa.client_id}, headers={"Origin": SPA})
    assert revoked.status_code == 200 and revoked.headers["Access-Control-Allow-Origin"] == SPA
    token = client.post("/token", data={"grant_type": "authorization_code", "code": "nope",
                                        "client_id": spa.client_id, "redirect_uri": SPA + "/callback"},
                        headers={"Origin": SPA})
    assert token.status_code == 400 and token.headers["Access-Control-Allow-Origin"] == SPA


@pytest.mark.parametrize("path", ["/authorize", "/login", "/admin", "/api/v1/tenants", "/introspect", "/end_session",
                                  "/healthz", "/"])
def test_nothing_else_answers_cors(client, spa, path):
    for response in (preflight(client, path, SPA), client.get(path, headers={"Origin": SPA})):
        assert cors_headers(response) == {}, (path, response.headers)


def test_a_new_public_client_is_allowed_at_once_and_a_removed_one_no_more(client, spa):
    origin = "https://new-spa.example"
    assert cors_headers(preflight(client, "/token", origin)) == {}
    late = make_application(name="late", client_type="public", redirect_uris=[origin + "/cb"])
    assert preflight(client, "/token", origin).headers["Access-Control-Allow-Origin"] == origin
    db.session.delete(db.session.merge(late))
    db.session.commit()
    assert cors_headers(preflight(client, "/token", origin)) == {}


def statements_for(client, app, **headers) -> int:
    seen = []

    def count(*args):
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/.well-known/openid-configuration", headers=headers).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


def test_a_request_without_origin_costs_no_query(client, app, spa):
    assert statements_for(client, app) == 0
    assert statements_for(client, app, Origin=SPA) == 1


@pytest.mark.parametrize(("uri", "origin"), [
    ("https://spa.example/callback?x=1", "https://spa.example"),
    ("https://SPA.example:443/cb", "https://spa.example"),
    ("http://localhost:80/cb", "http://localhost"),
    ("http://[::1]:8080/cb", "http://[::1]:8080"),
    ("com.example.app:/cb", None),
    ("https://spa.example:99999/cb", None),
])
def test_web_origin(uri, origin):
    assert web_origin(uri) == origin
