"""docs/api.md's curl walk-through, against a real gunicorn after
`portal init`, with the adminconsole token it printed."""

import pytest
import requests

from portal.config import access_token_format
from tests.conftest import TOKEN_FORMATS, start_live_server


@pytest.fixture(scope="module", params=TOKEN_FORMATS)
def server(request, tmp_path_factory):
    """The walk-through issues tokens and uses them: once per access-token format, on the
    session's gunicorn where it issues that format, else on one of its own."""
    if request.param == access_token_format():
        yield request.getfixturevalue("live_server")
        return
    server = start_live_server(tmp_path_factory.mktemp("api-live"), extra_env={"ACCESS_TOKEN_FORMAT": request.param})
    yield server
    server.stop()


def test_readme_walkthrough(server):
    api = server.url + "/api/v1"
    master = {"Authorization": f"Bearer {server.default_tokens['adminconsole']}"}
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
    assert token not in server.log()  # the query-string token is redacted from the access log
