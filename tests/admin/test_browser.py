"""The admin portal in Chromium against a real gunicorn: the main paths of issue 3."""

import hashlib
import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal.domain import clock
from tests.admin.browsing import db_rows, log_in

PASSWORD = "pat's long password"


def token_row(live_server, value):
    """(id, master, expires_at, revoked_at) of the row a value authenticates as, or None."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    rows = db_rows(live_server, "SELECT id, master, expires_at, revoked_at FROM access_tokens WHERE token_hash = ?",
                   digest)
    return rows[0] if rows else None


def permissions(live_server, token_id):
    return db_rows(live_server, "SELECT tenant, actions FROM token_permissions WHERE token_id = ? ORDER BY position",
                   token_id)


@pytest.fixture(scope="module")
def names(live_server):
    """Two tenants and an end user on the live server (unique per run)."""
    suffix = uuid.uuid4().hex[:6]
    names = {"t1": f"east{suffix}", "t2": f"west{suffix}", "user": f"pat{suffix}"}
    live_server.cli_many(("create-tenant", names["t1"]), ("create-tenant", names["t2"]),
                         (("create-user", names["user"], "--email", f"{names['user']}@example.org",
                           "--password-stdin"), PASSWORD + "\n"))
    return names


def test_token_lifecycle_with_the_js_editor(page, live_server, names):
    log_in(page, live_server)
    page.goto(live_server.url + "/admin/tokens/new")
    page.get_by_label("Application").select_option(label="crafterengine")
    page.get_by_label("User (username or email)").fill(names["user"])
    page.get_by_label("Scope").fill("profiles")
    # Row 0 starts with READ_TENANT only (nothing granted unseen); CREATE_TENANT is for * only.
    page.get_by_label("Tenant of row 0").select_option(names["t1"])
    assert page.get_by_label("READ_TENANT for row 0").is_checked()
    assert not page.get_by_label("MANAGE_TICKETS for row 0").is_checked()
    assert page.get_by_label("CREATE_TENANT for row 0").is_disabled()
    page.get_by_label("MANAGE_PROFILES for row 0").check()
    page.get_by_label("MANAGE_TICKETS for row 0").check()
    url_before = page.url
    page.get_by_role("button", name="Add tenant row").click()  # in place, no round trip
    assert page.url == url_before
    page.get_by_label("Tenant of row 1").select_option(names["t2"])
    assert page.get_by_label("READ_TENANT for row 1").is_checked()
    page.get_by_label("MANAGE_PROFILES for row 1").uncheck()
    page.get_by_label("MANAGE_TICKETS for row 1").uncheck()
    page.get_by_label("UPDATE_TENANT for row 1").check()
    page.get_by_role("button", name="Add tenant row").click()
    page.locator(".perm-row").nth(2).get_by_role("button", name="Remove").click()  # removed in place
    expect(page.locator(".perm-row")).to_have_count(2)
    with page.expect_response(lambda r: r.url.endswith("/admin/tokens/new") and r.request.method == "POST") as info:
        page.get_by_role("button", name="Create token").click()
    assert info.value.headers["cache-control"] == "no-store"

    # Shown once, with a copy button (hidden until admin.js, a deferred script, shows it:
    # expect waits for it, where is_visible() answered at once and sometimes too early).
    value = page.get_by_label("Token value").input_value()
    assert value.startswith("tsr_")
    expect(page.get_by_role("button", name="Copy to clipboard")).to_be_visible()
    row = token_row(live_server, value)
    assert permissions(live_server, row[0]) == [(names["t1"], "READ_TENANT MANAGE_PROFILES MANAGE_TICKETS"),
                                                (names["t2"], "READ_TENANT UPDATE_TENANT")]

    # Found by search, never shown again.
    page.goto(live_server.url + "/admin/tokens")
    page.get_by_label("Search tokens (hint, application, username or email)").fill(names["user"])
    page.get_by_role("button", name="Search").click()
    found = page.get_by_role("link", name=value[:8] + "…")
    expect(found).to_be_visible()
    assert value not in page.content()
    found.click()

    # The grid: tenants × actions.
    grid = page.locator("#permission-grid")
    expect(grid).to_be_visible()
    assert value not in page.content()
    expect(grid.locator(f'tr[data-tenant="{names["t1"]}"] td[data-action="MANAGE_TICKETS"].allowed')).to_have_count(1)
    expect(grid.locator(f'tr[data-tenant="{names["t2"]}"] td[data-action="UPDATE_TENANT"].allowed')).to_have_count(1)
    expect(grid.locator(f'tr[data-tenant="{names["t2"]}"] td[data-action="MANAGE_PROFILES"].denied')).to_have_count(1)

    # Extend: a past date is refused, a future one moves the expiry in place.
    page.get_by_label("Custom date").check()
    page.get_by_label("New expiry (UTC)").fill("2001-01-01T00:00")
    page.get_by_role("button", name="Extend").click()
    expect(page.locator("body")).to_contain_text("The new expiry must be in the future.")
    target = (clock.now() + timedelta(days=40)).replace(second=0)
    page.get_by_label("Custom date").check()
    page.get_by_label("New expiry (UTC)").fill(target.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Extend").click()
    expect(page.locator("body")).to_contain_text("now expires on")
    assert token_row(live_server, value)[2].startswith(target.strftime("%Y-%m-%d %H:%M"))

    # Replace with other permissions: the same value, the new settings.
    page.get_by_role("button", name="Replace…").click()
    expect(page).to_have_url(re.compile(r"/admin/tokens/\d+/replace$"))
    expect(page.locator("body")).to_contain_text("It keeps the same value, its address and its history")
    token_url = page.url.removesuffix("/replace")
    assert page.get_by_label("Tenant of row 0").input_value() == names["t1"]
    page.get_by_label("Master token (may manage other tokens through the API)").check()
    page.locator(".perm-row").nth(1).get_by_role("button", name="Remove").click()
    page.get_by_label("All actions for row 0").check()
    page.get_by_role("button", name="Replace token").click()
    expect(page.locator("body")).to_contain_text("replaced: same value, new settings")
    expect(page).to_have_url(token_url)  # the same token page, its history continued
    expect(page.get_by_text("master: no → yes")).to_be_visible()
    row = token_row(live_server, value)
    assert row is not None and row[1] == 1 and row[3] is None  # master, not revoked
    assert permissions(live_server, row[0])[0][0] == names["t1"]
    assert "*" in permissions(live_server, row[0])[0][1]
    assert len(permissions(live_server, row[0])) == 1

    # Delete: confirmed; the value stops working at once.
    page.get_by_role("button", name="Revoke…").click()
    expect(page).to_have_url(re.compile(r"/admin/tokens/\d+/delete$"))
    expect(page.locator("body")).to_contain_text("lose access at once")
    page.get_by_role("button", name="Revoke token").click()
    expect(page.locator("body")).to_contain_text("revoked. Applications using it lost access.")
    assert token_row(live_server, value) is None


def test_create_without_javascript(browser, live_server, names):
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(live_server.url + "/admin/tokens/new")
        assert not page.get_by_role("button", name="Copy to clipboard").count()
        page.get_by_label("Application").select_option(label="craftersocial")
        page.get_by_label("Tenant of row 0").select_option(names["t1"])
        page.get_by_role("button", name="Add tenant row").click()  # a server round trip
        page.get_by_label("Tenant of row 1").select_option(names["t1"])
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("body")).to_contain_text("already has a row")  # duplicate tenant refused
        page.get_by_label("Tenant of row 1").select_option("*")
        page.get_by_text("Custom value (migrating from another system)").click()
        page.get_by_label("Token value").fill("legacy-system-token-0001")
        page.get_by_role("button", name="Create token").click()
        assert page.get_by_label("Token value").input_value() == "legacy-system-token-0001"
        row = token_row(live_server, "legacy-system-token-0001")
        assert [t for t, _ in permissions(live_server, row[0])] == [names["t1"], "*"]
    finally:
        context.close()


def test_end_a_users_sessions(page, new_page, live_server, names):
    user_page = new_page()
    log_in(user_page, live_server, names["user"], PASSWORD)
    user_page.goto(live_server.url + "/")
    assert "/login" not in user_page.url

    log_in(page, live_server)
    page.goto(live_server.url + "/admin/users")
    page.get_by_label("Username or email starts with").fill(names["user"])
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=names["user"], exact=True).click()
    expect(page.locator("body")).to_contain_text(re.compile(r"[1-9]\d* active login session"))
    page.get_by_role("button", name="Sign out everywhere…").click()  # asks first (issue 16)
    page.get_by_role("button", name="Sign out everywhere", exact=True).click()
    expect(page.locator("body")).to_contain_text(re.compile(f"Signed {names['user']} out of every browser: "
                                                            r"\d+ login sessions? ended"))

    user_page.goto(live_server.url + "/")
    assert "/login" in user_page.url
