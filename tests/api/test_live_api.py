"""docs/api.md's curl walk-through, against a real gunicorn after
`portal init`, with the adminconsole token it printed."""

import pytest
import requests

# Issues access tokens and uses them: run again with ACCESS_TOKEN_FORMAT=jwt (make test).
pytestmark = pytest.mark.token_format


def test_readme_walkthrough(live_server):
    api = live_server.url + "/api/v1"
    master = {"Authorization": f"Bearer {live_server.default_tokens['adminconsole']}"}
    for body in ({"name": "readme1", "label": "Site One"}, {"name": "readme2"}):
        assert requests.post(f"{api}/tenants", json=body, headers=master, timeout=10).status_code == 201
    created = requests.post(f"{api}/access-tokens", headers=master, timeout=10, json={
        "application": "crafterengine", "expires_in": 86400,
        "tenant_permissions": [{"tenant": "readme1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]}]})
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    token = created.json()["value"]
    mine = {"Authorization": f"Bearer {token}"}
    response = requests.post(f"{api}/tenants/readme1/profiles", headers=mine, timeout=10,
                             json={"username": "readme-alice", "email": "alice@example.org",
                                   "password": "a long password"})
    assert response.status_code == 201, response.text
    found = requests.get(f"{api}/tenants/readme1/profiles?q=alice", headers=mine, timeout=10).json()
    assert [p["username"] for p in found["items"]] == ["readme-alice"]
    assert requests.get(f"{api}/tenants/readme1/profiles?access_token={token}", timeout=10).status_code == 200
    denied = requests.get(f"{api}/tenants/readme2/profiles", headers=mine, timeout=10)
    assert denied.status_code == 403
    assert denied.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="insufficient_scope"'
    assert denied.json()["missing"] == "MANAGE_PROFILES on readme2"
    assert requests.get(f"{api}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
    assert token not in live_server.log()  # the query-string token is redacted from the access log
