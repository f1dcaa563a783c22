"""The token pages in Chromium against a real gunicorn (issue 25): a list that scans,
every token page at a laptop's and a phone's width (no sideways scroll, axe clean), the
bulk bar, and a shown-once value that a late answer of the user picker cannot lose."""

import json
import time
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.admin.browsing import assert_fits_and_is_accessible, box, db_rows, token_id


def api(live_server, method: str, path: str, master: str, body=None) -> dict:
    request = urllib.request.Request(live_server.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {master}", "Content-Type": "application/json",
                                              "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                                                            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else {}


@pytest.fixture(scope="module")
def fleet(live_server, admin_state):
    """Five tenants, a user with a long unicode name, 14 tokens made through the API (one
    used, one expired, one revoked), and the admin's logged-in browser state."""
    suffix = uuid.uuid4().hex[:6]
    tenants = [f"{name}{suffix}" for name in ("zürich", "oslo", "lima", "kyoto", "accra")]
    tenants = [t.replace("ü", "u") for t in tenants]  # names are slugs; labels carry the unicode
    user = f"jozefina{suffix}"
    *_, master = live_server.cli_many(
        *(("create-tenant", tenant, "--label", f"Standort {tenant} – Größte Filiale") for tenant in tenants),
        (("create-user", user, "--email", f"{suffix}@example.org", "--tenant", tenants[0],
          "--name", "Józefina Krzyżanowska-Wiśniewska", "--password-stdin"), "a long password here\n"),
        ("create-token", "--application", "adminconsole", "--master", "--tenant", "*=*"))
    master = master.strip()
    made = []
    for i in range(14):
        entries = [{"tenant": tenants[(i + k) % 5], "actions": ["READ_TENANT", "MANAGE_PROFILES"]}
                   for k in range(i % 4 + 1)]
        made.append(api(live_server, "POST", "/api/v1/access-tokens", master, {
            "application": "crafterengine" if i % 2 else "craftersocial", "user": user if i % 3 == 0 else None,
            "tenant_permissions": entries, "master": i == 5, "expires_in": 86400 * (i + 1)}))
    used = made[0]["value"]
    api(live_server, "GET", f"/api/v1/tenants/{tenants[0]}", used)  # a use, with address and client
    expired = live_server.cli("create-token", "--application", "craftersocial", "--expires-in", "1",
                              "--tenant", f"{tenants[1]}=READ_TENANT").stdout.strip()
    gone = api(live_server, "POST", "/api/v1/access-tokens", master, {"application": "craftersocial"})
    api(live_server, "DELETE", f"/api/v1/access-tokens/{gone['id']}", master)
    time.sleep(1)  # the expired token's second passes
    return {"tenants": tenants, "user": user, "master": master, "used_id": token_id(live_server, used),
            "expired_id": token_id(live_server, expired), "gone_id": gone["id"], "state": admin_state,
            "master_id": made[5]["id"]}


def open_page(browser, fleet, width, height=844, **options):
    context = browser.new_context(viewport={"width": width, "height": height}, storage_state=fleet["state"],
                                  **options)
    context.set_default_timeout(15000)
    return context, context.new_page()


def test_ten_rows_on_the_first_screen_at_1280_by_800(browser, live_server, fleet):
    context, page = open_page(browser, fleet, 1280, 800)
    try:
        page.goto(live_server.url + "/admin/tokens")
        bottoms = [box(row)["y"] + box(row)["height"] for row in page.locator("table.token-list tbody tr").all()]
        assert sum(1 for bottom in bottoms if bottom <= 800) >= 10, bottoms[:12]
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        expect(page.locator("td.col-token .badge-master").first).to_be_visible()
    finally:
        context.close()


# Every token page, as (path or how to get there, the status it answers with).
def created(page, url, fleet):
    page.goto(url + "/admin/tokens/new")
    page.get_by_label("Application").select_option(label="crafterengine")
    page.get_by_label("Tenant of row 0").select_option(fleet["tenants"][0])
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url("**/created")


def with_errors(page, url, fleet):
    page.goto(url + "/admin/tokens/new")
    page.get_by_label("User (username or email)").fill("nobody-at-all")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("problems to fix")).to_be_visible()


def bulk_revoke(page, url, fleet):
    page.goto(url + "/admin/tokens")
    boxes = page.locator("tbody input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Revoke selected…").click()
    page.wait_for_url("**/tokens/delete")


PAGES = {
    "list": "/admin/tokens",
    "list filtered": "/admin/tokens?status=active&sort=application&q=crafter",
    "list no match": "/admin/tokens?q=no-such-token-anywhere",
    "new": "/admin/tokens/new",
    "new with errors": with_errors,
    "created": created,
    "detail": "/admin/tokens/{used_id}",
    "detail master": "/admin/tokens/{master_id}",
    "detail expired": "/admin/tokens/{expired_id}",
    "replace": "/admin/tokens/{used_id}/replace",
    "revoke": "/admin/tokens/{used_id}/delete",
    "revoke selected": bulk_revoke,
    "deleted": "/admin/tokens/{gone_id}",
}


@pytest.fixture(scope="module")
def axe_page(browser, fleet):
    """The admin's tab for the page checks, kept for the module: the pages are checked one
    after another in it (a renderer started afresh for each costs twice the time)."""
    context, page = open_page(browser, fleet, 1280, bypass_csp=True)  # axe is injected
    yield page
    context.close()


@pytest.mark.parametrize("name", PAGES)
def test_token_pages_fit_and_are_accessible(axe_page, live_server, fleet, axe_script, name):  # noqa: F811
    page, go = axe_page, PAGES[name]
    page.set_viewport_size({"width": 1280, "height": 844})
    if callable(go):
        go(page, live_server.url, fleet)
    else:
        response = page.goto(live_server.url + go.format(**fleet))
        assert response.status == (404 if name == "deleted" else 200)
    page.wait_for_load_state()
    assert_fits_and_is_accessible(page, axe_script, name)


def test_token_page_says_who_used_it_and_what_expired(browser, live_server, fleet):
    context, page = open_page(browser, fleet, 1280)
    try:
        page.goto(f"{live_server.url}/admin/tokens/{fleet['used_id']}")
        expect(page.locator("#last-use")).to_contain_text("from 127.0.0.1 with Chrome 131 on Linux")
        page.goto(f"{live_server.url}/admin/tokens/{fleet['expired_id']}")
        banner = page.locator("#expired-banner")
        expect(banner).to_contain_text("This token expired")
        banner.get_by_role("link", name="extend it").click()
        page.get_by_label("30 days", exact=False).check()
        page.get_by_role("button", name="Extend").click()
        expect(page.get_by_text("now expires on")).to_be_visible()
        expect(page.locator("#expired-banner")).to_have_count(0)
        page.goto(f"{live_server.url}/admin/tokens/{fleet['gone_id']}")
        expect(page.get_by_role("heading", name="This token was revoked")).to_be_visible()
    finally:
        context.close()


def test_bulk_bar_counts_the_selection_and_extends(browser, live_server, fleet):
    context, page = open_page(browser, fleet, 390)
    try:
        page.goto(live_server.url + "/admin/tokens?q=crafterengine")
        bar = page.locator("#bulk-bar")
        expect(bar).to_be_hidden()  # the bar comes with the first tick
        boxes = page.locator("tbody input[name=ids]")
        boxes.nth(0).check()
        expect(bar.get_by_role("button", name="Extend selected")).to_be_enabled()
        boxes.nth(1).check()
        expect(page.get_by_text("2 tokens selected")).to_be_visible()
        bar_box = box(bar)  # sticky: in sight at the bottom of the phone's screen
        assert bar_box["y"] + bar_box["height"] <= 844 + 1
        bar.get_by_role("button", name="Extend selected").click()
        expect(page.get_by_text("Extended 2 tokens by 30 days.")).to_be_visible()
    finally:
        context.close()


def test_the_shown_once_value_survives_a_late_answer_of_the_user_picker(browser, live_server, fleet):
    """Issue 25: the picker's JSON, answered before the token was made but arriving after,
    re-set the session cookie that carried the value. Here its answer is held back and
    delivered (with its Set-Cookie) just before the value's page is asked for."""
    context, page = open_page(browser, fleet, 1280)
    held = []

    def hold(route):
        held.append((route, route.fetch()))  # answered now, by the server, with the session as it is

    def late_answer_first(route):
        for picker, answer in held:
            picker.fulfill(response=answer)  # arrives late, re-setting the session cookie
        page.wait_for_timeout(300)
        route.continue_()

    try:
        page.route("**/admin/users/search*", hold)
        page.route("**/created", late_answer_first)
        page.goto(live_server.url + "/admin/tokens/new")
        page.get_by_label("Application").select_option(label="crafterengine")
        page.get_by_label("Tenant of row 0").select_option(fleet["tenants"][2])
        page.get_by_label("User (username or email)").press_sequentially(fleet["user"][:4])
        page.wait_for_timeout(600)  # the picker's debounce: its request is made, its answer held
        assert held, "the user picker asked nothing"
        page.get_by_label("User (username or email)").fill(fleet["user"])
        page.get_by_role("button", name="Create token").click()
        page.wait_for_url("**/created")
        value = page.get_by_label("Token value").input_value()
        assert value.startswith("tsr_") and token_id(live_server, value) is not None
        page.reload()  # and still shown only once
        expect(page.get_by_text("was shown once")).to_be_visible()
        assert db_rows(live_server, "SELECT count(*) FROM access_tokens WHERE id = ?", token_id(live_server, value))
    finally:
        context.close()


def test_the_two_most_common_jobs_take_few_clicks(browser, live_server, fleet):
    """Issue 25's first two jobs, click by click (today 16 clicks + 18 keys, and 7 clicks)."""
    context, page = open_page(browser, fleet, 1280, 800)
    clicks = 0

    def click(locator):
        nonlocal clicks
        clicks += 1
        locator.click()

    def choose(select, **option):  # a drop-down: one click to open, one to pick
        nonlocal clicks
        clicks += 2
        select.select_option(**option)

    try:
        # 1. Issue a token with READ on two tenants, for 30 days.
        page.goto(live_server.url + "/admin/tokens")
        click(page.get_by_role("button", name="New token"))
        choose(page.get_by_label("Application"), label="crafterengine")
        click(page.get_by_role("button", name=f"Add a row for {fleet['tenants'][3]}"))
        click(page.get_by_role("button", name=f"Add a row for {fleet['tenants'][4]}"))
        click(page.get_by_label("30 days"))
        click(page.get_by_role("button", name="Create token"))
        page.wait_for_url("**/created")
        assert clicks == 7  # and no key
        value = page.get_by_label("Token value").input_value()
        rows = db_rows(live_server, "SELECT tenant, actions FROM token_permissions WHERE token_id = ? "
                       "ORDER BY position", token_id(live_server, value))
        assert rows == [(fleet["tenants"][3], "READ_TENANT"), (fleet["tenants"][4], "READ_TENANT")]

        # 2. Find a token by application and revoke it (the search box has the focus).
        clicks = 0
        page.goto(live_server.url + "/admin/tokens")
        page.keyboard.type("craftersocial")
        page.keyboard.press("Enter")
        page.wait_for_url("**q=craftersocial*")
        click(page.locator("tbody input[name=ids]").first)
        click(page.get_by_role("button", name="Revoke selected…"))
        click(page.get_by_role("button", name="Revoke 1 token"))
        expect(page.get_by_text("Revoked 1 token.")).to_be_visible()
        assert clicks == 3  # and 14 keys: the application's name and Enter
    finally:
        context.close()
