"""The console's shell in Chromium (issue 25): the Menu button on a phone, the skip link and
keyboard focus, lists as cards that keep what matters in view."""

import uuid

import pytest
from playwright.sync_api import expect

from tests.admin.browsing import db_rows, log_in

PASSWORD = "kim's long password"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def kim(live_server):
    """An end user with a long unicode name, logged in once so they have a session."""
    username = f"kim{uuid.uuid4().hex[:6]}"
    live_server.cli("create-user", username, "--email", f"{username}@example.org", "--name",
                    "Kim Nguyễn-Øyvindsdóttir de la Très-Longue-Famille", "--password-stdin", input=PASSWORD + "\n")
    return {"username": username,
            "id": db_rows(live_server, "SELECT id FROM users WHERE username = ?", username)[0][0]}


@pytest.fixture
def admin_at(browser, live_server):
    contexts = []

    def open_page(viewport):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        log_in(page, live_server)
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_a_phone_gets_a_menu_button_that_opens_the_links(admin_at, live_server, kim):
    page = admin_at(PHONE)
    page.goto(f"{live_server.url}/admin/users/{kim['id']}")
    menu = page.get_by_text("Menu", exact=True)
    expect(menu).to_be_visible()
    users = page.locator("header").get_by_role("link", name="Users", exact=True)
    expect(users).to_be_hidden()
    header = page.locator("header").bounding_box()
    assert header["height"] < 90, f"the header is {header['height']}px tall"  # one row, not three
    menu.focus()
    page.keyboard.press("Enter")  # a keyboard opens it
    expect(users).to_be_visible()
    assert users.get_attribute("aria-current") == "page"
    users.click()
    page.wait_for_url("**/admin/users")


def test_a_laptop_shows_the_links_in_a_row_with_the_current_one_marked(admin_at, live_server):
    page = admin_at(LAPTOP)
    page.goto(f"{live_server.url}/admin/sessions")
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    current = page.locator("header a[aria-current=page]:visible")
    expect(current).to_have_count(1)
    expect(current).to_have_text("Sessions")


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(admin_at, live_server):
    page = admin_at(LAPTOP)
    page.goto(f"{live_server.url}/admin/users")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the next stop is inside the content, not the menu
    assert page.evaluate("document.activeElement.closest('main') !== null")


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280", "390"])
def test_outline_buttons_show_a_focus_ring(admin_at, live_server, kim, viewport):
    page = admin_at(viewport)
    page.goto(f"{live_server.url}/admin/users/{kim['id']}/deactivate")
    cancel = page.get_by_role("button", name="Cancel")
    for _ in range(40):  # reach it by keyboard, as a keyboard user does
        page.keyboard.press("Tab")
        if cancel.evaluate("e => e === document.activeElement"):
            break
    expect(cancel).to_be_focused()
    style = cancel.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }")
    assert style[0] != "none" and float(style[1].rstrip("px")) >= 2, style


def test_on_a_phone_a_session_card_keeps_its_end_button_and_expiry_in_view(admin_at, new_page, live_server, kim):
    user_page = new_page()
    log_in(user_page, live_server, kim["username"], PASSWORD)
    page = admin_at(PHONE)
    page.goto(f"{live_server.url}/admin/sessions?user={kim['username']}")
    end = page.get_by_role("button", name=f"End the session of {kim['username']}")
    expect(end).to_be_visible()
    box = end.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    expires = page.locator("td[data-label=Expires]").first
    expect(expires).to_be_visible()
    assert expires.bounding_box()["x"] + expires.bounding_box()["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_on_a_phone_the_user_list_shows_status_as_a_badge_in_each_card(admin_at, live_server, kim):
    page = admin_at(PHONE)
    page.goto(f"{live_server.url}/admin/users?q={kim['username']}")
    card = page.locator("table.user-list tbody tr").first
    expect(card.locator(".badge-active")).to_be_visible()
    expect(card.get_by_text("Kim Nguyễn", exact=False)).to_be_visible()
    assert card.bounding_box()["width"] <= PHONE["width"]
