"""What the permission editor offers, what the token page shows and what the API enforces
are one rule (portal.tokens.permissions.grantable): checked per action and tenant kind."""

import re

import pytest

from portal.tokens import ACTIONS
from tests.admin.test_tokens_http import create_data
from tests.factories import make_application, make_token

# The API call each action allows, on tenant site1 (CREATE_TENANT: a new tenant).
CALLS = {
    "CREATE_TENANT": ("post", "/api/v1/tenants", {"name": "site9"}),
    "READ_TENANT": ("get", "/api/v1/tenants/site1", None),
    "UPDATE_TENANT": ("patch", "/api/v1/tenants/site1", {"label": "Renamed"}),
    "DELETE_TENANT": ("delete", "/api/v1/tenants/site1", None),
    "MANAGE_PROFILES": ("get", "/api/v1/tenants/site1/profiles", None),
    "MANAGE_TICKETS": ("get", "/api/v1/tenants/site1/sessions", None),
}


def api_allows(client, value: str, action: str) -> bool:
    method, url, body = CALLS[action]
    response = getattr(client, method)(url, json=body, headers={"Authorization": f"Bearer {value}"})
    assert response.status_code < 500
    return response.status_code != 403


def editor_offers(admin_client, csrf, setup, tenant: str, action: str) -> bool:
    """The editor's checkbox for `action` on a row of `tenant` can be ticked (not disabled)."""
    data = create_data(setup, csrf(), save=None, add_row="1", **{"perm-0-tenant": tenant, "perm-0-actions": []})
    html = admin_client.post("/admin/tokens/new", data=data).get_data(as_text=True)
    box = re.search(rf'<input type="checkbox" id="perm-0-{action}"[^>]*>', html).group(0)
    return "disabled" not in box


@pytest.mark.parametrize("tenant", ["*", "site1"], ids=["any-tenant", "named-tenant"])
@pytest.mark.parametrize("action", ACTIONS)
def test_editor_offered_equals_api_enforced(admin_client, client, csrf, setup, action, tenant):
    offered = editor_offers(admin_client, csrf, setup, tenant, action)
    saved = admin_client.post("/admin/tokens/new", data=create_data(
        setup, csrf(), **{"perm-0-tenant": tenant, "perm-0-actions": [action]}))
    assert saved.status_code == (303 if offered else 422)
    if not offered:
        assert "is a global action: grant it on the * tenant" in saved.get_data(as_text=True)
    # A token holding exactly this entry (made past the doors, as an import or an older
    # release could): the API honours it exactly when the editor offers it, and its page says so.
    legacy = make_token(make_application("legacy"), tenant_permissions=[{"tenant": tenant, "actions": [action]}])
    assert api_allows(client, legacy.value, action) == offered
    page = admin_client.get(f"/admin/tokens/{legacy.id}").get_data(as_text=True)
    cell = re.search(rf'<td data-action="{action}" class="([a-z-]+)"', page).group(1)
    assert cell == ("allowed" if offered else "not-offered")


@pytest.mark.parametrize("tenant", ["*", "site1"], ids=["any-tenant", "named-tenant"])
def test_the_api_refuses_what_the_editor_refuses(client, setup, tenant):
    master = make_token(setup["app"], master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}])
    response = client.post("/api/v1/access-tokens", headers={"Authorization": f"Bearer {master.value}"},
                           json={"application": "crm", "tenant_permissions": [
                               {"tenant": tenant, "actions": ["CREATE_TENANT"]}]})
    assert response.status_code == (201 if tenant == "*" else 422), response.get_json()
