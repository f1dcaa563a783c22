"""Every portal page at 1,280 × 800 and at 390 × 844 (a phone), one load resized to each: the
page is no wider than the window, every table's cells sit under their headers, and axe-core
finds no serious or critical accessibility violation.

axe-core comes from the npm registry through tests/js/package-lock.json (`npm ci` in
tests/js, which `make test` runs); Playwright injects it into each page.
"""

import base64
import hashlib
import os
import re
import uuid

import pytest

from tests.admin.browsing import SIZES, assert_fits_and_is_accessible, db_rows, signed_in_state, token_id

PASSWORD = "lee's long password"
SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")


@pytest.fixture(scope="module")
def site(live_server, browser, admin_state):
    """Data for every page to show (unique per run), and logged-in browser states."""
    suffix = uuid.uuid4().hex[:6]
    site = {"tenant": f"lab{suffix}", "user": f"lee{suffix}", "client_id": f"shop{suffix}"}
    _, _, _, value, _ = live_server.cli_many(
        ("create-tenant", site["tenant"], "--label", "A laboratory with a long display name"),
        ("create-tenant", f"empty{suffix}"),
        (("create-user", site["user"], "--email", f"{site['user']}@example.org", "--tenant", site["tenant"],
          "--name", "Lee Long-Name", "--password-stdin"), PASSWORD + "\n"),
        ("create-token", "--application", "craftersocial", "--user", site["user"], "--scope", "profiles tickets",
         "--tenant", f"{site['tenant']}=READ_TENANT,MANAGE_PROFILES", "--tenant", "*=MANAGE_TICKETS"),
        ("create-application", f"Shop {suffix}", "--client-id", site["client_id"], "--redirect-uri",
         "https://shop.example/callback", "--grant-type", "authorization_code",
         "--resource", "https://reports-api.example/v1/"))
    site["token_id"] = token_id(live_server, value.strip())
    site["application_id"] = db_rows(live_server, "SELECT id FROM applications WHERE client_id = ?",
                                     site["client_id"])[0][0]
    site["user_id"] = db_rows(live_server, "SELECT id FROM users WHERE username = ?", site["user"])[0][0]
    site["tenant_id"] = db_rows(live_server, "SELECT id FROM tenants WHERE name = ?", site["tenant"])[0][0]
    site["empty_tenant_id"] = db_rows(live_server, "SELECT id FROM tenants WHERE name = ?", f"empty{suffix}")[0][0]
    site["states"] = {"admin": admin_state, "user": signed_in_state(browser, live_server, site["user"], PASSWORD)}
    return site


def authorize_url(site) -> str:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return (f"/authorize?response_type=code&client_id={site['client_id']}&scope=openid%20profile%20email"
            f"&redirect_uri=https%3A%2F%2Fshop.example%2Fcallback&state=xyz&code_challenge={challenge}"
            "&code_challenge_method=S256")


def create_token(page, url, site):
    page.goto(url + "/admin/tokens/new")
    page.get_by_label("Application").select_option(label="crafterengine")
    page.get_by_label("Tenant of row 0").select_option(site["tenant"])
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url("**/created")


def regenerate_secret(page, url, site):
    page.goto(url + f"/admin/applications/{site['application_id']}/secret")
    page.get_by_role("button", name="Regenerate secret").click()
    page.wait_for_url("**/new-secret")


def delete_selected(page, url, site):
    page.goto(url + "/admin/tokens")
    boxes = page.get_by_role("checkbox", name=re.compile(r"^Select tsr_"))
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Revoke selected…").click()
    page.wait_for_url("**/tokens/delete")


def visit(path):
    return lambda page, url, site: page.goto(url + path.format(**site))


# name -> (who is logged in, how to get there, the status the page answers with)
PAGES = {
    "login": (None, visit("/login"), 200),
    "dashboard": ("admin", visit("/admin"), 200),
    "tokens list": ("admin", visit("/admin/tokens"), 200),
    "tokens list, filtered": ("admin", visit("/admin/tokens?status=active&tenant=*&q=tsr_"), 200),
    "token new": ("admin", visit("/admin/tokens/new"), 200),
    "token created": ("admin", create_token, 200),
    "token detail": ("admin", visit("/admin/tokens/{token_id}"), 200),
    "token replace": ("admin", visit("/admin/tokens/{token_id}/replace"), 200),
    "token delete": ("admin", visit("/admin/tokens/{token_id}/delete"), 200),
    "tokens delete selected": ("admin", delete_selected, 200),
    "applications list": ("admin", visit("/admin/applications"), 200),
    "applications list, searched": ("admin", visit("/admin/applications?q=shop"), 200),
    "application new": ("admin", visit("/admin/applications/new"), 200),
    "application detail": ("admin", visit("/admin/applications/{application_id}"), 200),
    "application edit": ("admin", visit("/admin/applications/{application_id}/edit"), 200),
    "application regenerate secret": ("admin", visit("/admin/applications/{application_id}/secret"), 200),
    "application secret shown": ("admin", regenerate_secret, 200),
    "application secret gone": ("admin", visit("/admin/applications/{application_id}/new-secret"), 200),
    "application delete": ("admin", visit("/admin/applications/{application_id}/delete"), 200),
    "users list": ("admin", visit("/admin/users"), 200),
    "user new": ("admin", visit("/admin/users/new"), 200),
    "user detail": ("admin", visit("/admin/users/{user_id}"), 200),
    "user edit": ("admin", visit("/admin/users/{user_id}/edit"), 200),
    "user end sessions": ("admin", visit("/admin/users/{user_id}/end-sessions"), 200),
    "user revoke tokens": ("admin", visit("/admin/users/{user_id}/revoke-tokens"), 200),
    "user deactivate": ("admin", visit("/admin/users/{user_id}/deactivate"), 200),
    "users list, filtered": ("admin", visit("/admin/users?tenant={tenant}&active=yes"), 200),
    "sessions": ("admin", visit("/admin/sessions"), 200),
    "sessions, one user": ("admin", visit("/admin/sessions?user={user}"), 200),
    "sessions log everyone out": ("admin", visit("/admin/sessions/end-all"), 200),
    "tenants list": ("admin", visit("/admin/tenants"), 200),
    "tenant detail": ("admin", visit("/admin/tenants/{tenant_id}"), 200),
    "tenant delete, refused": ("admin", visit("/admin/tenants/{tenant_id}/delete"), 200),
    "tenant delete": ("admin", visit("/admin/tenants/{empty_tenant_id}/delete"), 200),
    "audit log": ("admin", visit("/admin/audit"), 200),
    "consent": ("user", lambda page, url, site: page.goto(url + authorize_url(site)), 200),
    "signed in": ("user", visit("/"), 200),
    "error 400": ("admin", visit("/admin/tokens?application=not-an-id"), 400),
    "error 403": ("user", visit("/admin"), 403),
    "error 404": ("admin", visit("/admin/tokens/999999999"), 404),
    "error 404, user": ("admin", visit("/admin/users/999999999"), 404),
    "oauth error": ("user", visit("/authorize?response_type=code&client_id=no-such-client"), 400),
    "sign out, asked": ("user", visit("/end_session?client_id={client_id}&state=s"), 200),
    "signed out": (None, visit("/end_session"), 200),
    "sign out refused": (None, visit("/end_session?client_id=no-such-client"), 400),
}

@pytest.fixture(scope="module")
def signed_in_pages(browser, site):
    """One page per role (admin, user, nobody), each in its own context, kept for the whole
    module: the pages are checked one after another in the same tab, as a person browsing
    would see them; a renderer started afresh for each page made the check cost twice as
    much of Chromium's time."""
    contexts, pages = [], {}

    def page_for(role):
        if role not in pages:
            # bypass_csp: the portal's CSP (script-src 'self') would refuse the injected axe script.
            context = browser.new_context(bypass_csp=True, storage_state=site["states"][role] if role else None)
            context.set_default_timeout(15000)
            contexts.append(context)
            pages[role] = context.new_page()
        return pages[role]

    yield page_for
    for context in contexts:
        context.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_layout_and_accessibility(live_server, site, signed_in_pages, axe_script, name):
    """At both sizes: no sideways scrolling (the document no wider than the window), the
    layout sound, and axe clean."""
    role, go, status = PAGES[name]
    width, height = next(iter(SIZES.items()))
    page = signed_in_pages(role)
    page.set_viewport_size({"width": width, "height": height})
    statuses = []

    def document_status(response):
        if response.request.resource_type == "document":
            statuses.append(response.status)

    page.on("response", document_status)
    try:
        go(page, live_server.url, site)
        page.wait_for_load_state()
    finally:
        page.remove_listener("response", document_status)
    assert statuses and statuses[-1] == status, f"{name}: answered {statuses}"
    if SCREENSHOTS:  # for a person to look at: PORTAL_SCREENSHOTS=/tmp/shots pytest ...
        for width, height in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SCREENSHOTS}/{name.replace(' ', '-').replace(',', '')}-{width}.png",
                            full_page=True)
    assert_fits_and_is_accessible(page, axe_script, name)
