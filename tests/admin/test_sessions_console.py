"""Login sessions and UTC dates in Chromium against a real gunicorn (issue 16), by label
and role: the Sessions page, ending one session, Log everyone out, the user's page, and
the token forms' expiry typed and shown in UTC by a browser in another time zone.

Log everyone out would end the sessions other modules' tests keep, so this module has a
gunicorn of its own."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.admin.browsing import box, db_rows, layout_problems, log_in, token_id
from tests.conftest import start_live_server

PASSWORD = "sam's long password"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
RED = "rgb(179, 38, 30)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("sessions"))
    yield server
    server.stop()


@pytest.fixture
def browse(browser):
    """Open browsers of their own (each its own cookies), with options such as user_agent."""
    contexts = []

    def open_page(**options):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def users(server) -> list[str]:
    """End users made up front in one `portal` process; each test takes the ones it needs."""
    names = [f"sam{uuid.uuid4().hex[:6]}" for _ in range(4)]
    server.cli_many(*((("create-user", name, "--email", f"{name}@example.org", "--password-stdin"), PASSWORD + "\n")
                      for name in names))
    return names


def logged_out(page, server) -> bool:
    page.goto(server.url + "/")
    return "/login" in page.url


def test_the_sessions_page_lists_each_login_with_address_and_browser(browse, browser, server, users):
    admin = browse()
    log_in(admin, server)
    username = users.pop()
    user = browse(user_agent=FIREFOX)
    log_in(user, server, username, PASSWORD)

    admin.get_by_role("link", name="Sessions", exact=True).click()
    expect(admin.get_by_role("heading", name="Login sessions")).to_be_visible()
    sessions = admin.get_by_role("table")
    headers = [h.strip() for h in sessions.get_by_role("columnheader").all_inner_texts()]
    assert headers[:5] == ["Started", "Last use", "Address", "Browser", "Expires"]
    # grouped by user: the user's name heads their sessions
    row = sessions.get_by_role("rowgroup").filter(has=admin.get_by_role("link", name=username, exact=True))
    expect(row.get_by_role("cell", name="Firefox 133 on Windows", exact=True)).to_be_visible()
    expect(row.get_by_role("cell", name="127.0.0.1", exact=True)).to_be_visible()
    assert row.locator("time").count() == 3  # started, last use, expires
    major = browser.version.split(".")[0]
    mine = sessions.get_by_role("row").filter(has_text="(this browser)")
    expect(mine).to_have_count(1)
    expect(mine.get_by_role("cell", name=re.compile(rf"^HeadlessChrome {major} on Linux"))).to_be_visible()
    assert layout_problems(admin) == []

    # The same details on the user's page, where one session can be ended too.
    row.get_by_role("link", name=username).click()
    user_sessions = admin.get_by_role("region", name="Login sessions")
    expect(user_sessions.get_by_role("cell", name="Firefox 133 on Windows")).to_be_visible()
    expect(user_sessions.get_by_role("columnheader", name="Last use")).to_be_visible()

    admin.get_by_role("link", name="Sessions", exact=True).click()
    end = admin.get_by_role("button", name=re.compile(f"^End the session of {username} started"))
    assert end.evaluate("b => getComputedStyle(b).backgroundColor") == RED
    end.click()
    expect(admin.get_by_text(f"Ended the login session of {username} started")).to_be_visible()
    expect(admin.get_by_role("link", name=username, exact=True)).to_have_count(0)
    assert logged_out(user, server)
    assert not logged_out(admin, server)


def test_log_everyone_out_confirms_in_red_and_keeps_this_browser(browse, server, users):
    admin, admin_elsewhere = browse(), browse(user_agent=FIREFOX)
    log_in(admin, server)
    log_in(admin_elsewhere, server)
    user_pages = [browse() for _ in range(2)]
    for page in user_pages:
        log_in(page, server, users.pop(), PASSWORD)
    live = db_rows(server, "SELECT count(*), count(DISTINCT user_id) FROM access_tokens WHERE source = 'session' "
                           "AND expires_at > datetime('now')")[0]

    admin.goto(server.url + "/admin/sessions")
    admin.get_by_role("button", name="Log everyone out…").click()
    expect(admin.get_by_role("heading", name="Log everyone out?")).to_be_visible()
    expect(admin.get_by_text(f"This ends {live[0]} live login sessions of {live[1]} users")).to_be_visible()
    me_too = admin.get_by_role("switch", name=re.compile("^Log me out too"))
    expect(me_too).not_to_be_checked()
    button = admin.get_by_role("button", name="Log everyone out", exact=True)
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == RED
    assert layout_problems(admin) == []
    button.click()

    ended = live[0] - 1
    expect(admin.get_by_text(f"Logged everyone out: {ended} login sessions of {live[1]} users ended. "
                             "Your session in this browser goes on.")).to_be_visible()
    expect(admin.get_by_text("1 live login session.")).to_be_visible()
    for page in (admin_elsewhere, *user_pages):
        assert logged_out(page, server)
    assert not logged_out(admin, server)

    admin.goto(server.url + "/admin/audit")
    event = admin.get_by_role("row").filter(has_text="sessions.ended_all").first
    expect(event).to_contain_text(f"sessions ended: {ended}")
    expect(event).to_contain_text("own session kept: yes")


def test_log_everyone_out_and_me_too(browse, server, users):
    admin, user = browse(), browse()
    log_in(admin, server)
    log_in(user, server, users.pop(), PASSWORD)
    admin.goto(server.url + "/admin/sessions/end-all")
    admin.get_by_role("switch", name=re.compile("^Log me out too")).check()
    admin.get_by_role("button", name="Log everyone out", exact=True).click()
    expect(admin.get_by_role("button", name="Log in")).to_be_visible()
    expect(admin.get_by_text(re.compile(r"^Logged everyone out, you too: \d+ login sessions? of \d+ users? ended\.$"))
           ).to_be_visible()
    assert logged_out(user, server)
    assert logged_out(admin, server)


def test_expiry_is_typed_and_shown_in_utc_by_a_browser_elsewhere(browse, server):
    """A browser in Los Angeles, in US English: the expiry field is UTC text, year first, as
    every date of the portal, not the browser's local form (12/31/2032, 11:59 PM)."""
    tenant = f"west{uuid.uuid4().hex[:6]}"
    server.cli("create-tenant", tenant)
    admin = browse(timezone_id="America/Los_Angeles", locale="en-US")
    assert admin.evaluate("new Date().getTimezoneOffset()") in (420, 480)  # the browser is not in UTC
    log_in(admin, server)

    admin.goto(server.url + "/admin/tokens/new")
    expiry = admin.get_by_label("Custom expiry (UTC)")
    assert expiry.get_attribute("type") == "text"
    shown = expiry.input_value()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", shown), shown
    default = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)  # ACCESS_TOKEN_EXPIRE_SECONDS
    assert abs(datetime.strptime(shown, "%Y-%m-%d %H:%M") - default) < timedelta(minutes=3)
    expiry.fill("2031-02-03 04:05")
    admin.get_by_label("Application").select_option(label="crafterengine")
    admin.get_by_label("Tenant of row 0").select_option(tenant)
    admin.get_by_role("button", name="Create token").click()
    admin.wait_for_url("**/created")
    value = admin.get_by_label("Token value").input_value()
    new_id = token_id(server, value)
    assert db_rows(server, "SELECT expires_at FROM access_tokens WHERE id = ?", new_id)[0][0].startswith(
        "2031-02-03 04:05")

    admin.goto(f"{server.url}/admin/tokens/{new_id}")
    expect(admin.get_by_role("row", name=re.compile("^Expires"))).to_contain_text("2031-02-03 04:05 UTC")
    admin.locator("#extend").get_by_label("Custom date").check()  # the presets count in days
    new_expiry = admin.get_by_label("New expiry (UTC)")
    assert new_expiry.get_attribute("placeholder") == "YYYY-MM-DD HH:MM"
    new_expiry.fill("2032-12-31 23:59")
    admin.get_by_role("button", name="Extend", exact=True).click()
    expect(admin.get_by_role("row", name=re.compile("^Expires"))).to_contain_text("2032-12-31 23:59 UTC")
    assert db_rows(server, "SELECT expires_at FROM access_tokens WHERE id = ?", new_id)[0][0].startswith(
        "2032-12-31 23:59")
    admin.locator("#extend").get_by_label("Custom date").check()
    assert box(admin.get_by_label("New expiry (UTC)"))["width"] >= 150

    admin.goto(f"{server.url}/admin/tokens/{new_id}/replace")
    assert admin.get_by_label("Custom expiry (UTC)").input_value() == "2032-12-31 23:59"
