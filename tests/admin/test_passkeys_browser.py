"""Passkeys in Chromium with a virtual authenticator (the DevTools protocol's WebAuthn
domain through Playwright's CDP session) against a real gunicorn (issue 26): register one,
sign in with it after the password, sign in without the password, rename and remove it,
and a cloned credential whose sign counter is behind is refused.

WebAuthn needs a secure context and a domain as the relying-party id: the pages are opened
at http://localhost:PORT (the RP id is the request's host while ISSUER is unset)."""

import uuid

import pytest
from playwright.sync_api import expect

from tests.admin.browsing import db_rows
from tests.second_factor import add_authenticator

PASSWORD = "a passkey owner's password"


@pytest.fixture
def base(live_server) -> str:
    return live_server.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def owner(live_server) -> str:
    username = f"pk{uuid.uuid4().hex[:8]}"
    live_server.cli("create-admin", username, "--password-stdin", input=PASSWORD + "\n")
    return username


def password_step(page, base, username):
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")


def register(page, base, name):
    page.goto(base + "/account/security")
    page.get_by_label("Name of the new passkey").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text(f"The passkey “{name}” was added.")).to_be_visible()
    # The first factor comes with ten recovery codes, shown this once.
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("button", name="I saved them").click()
    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()


def test_register_sign_in_with_it_passwordless_rename_and_remove(page, base, owner, live_server):
    add_authenticator(page)
    password_step(page, base, owner)
    assert page.url.endswith("/admin")
    register(page, base, "YubiKey 5")
    expect(page.locator(".passkey-list")).to_contain_text("YubiKey 5")
    assert db_rows(live_server, "SELECT count(*) FROM passkeys p JOIN users u ON u.id = p.user_id "
                                "WHERE u.username = ?", owner) == [(1,)]

    # The password, then the passkey: no code typed.
    log_out(page)
    password_step(page, base, owner)
    assert "/login/second-factor" in page.url
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/admin")

    # Passwordless.
    log_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url("**/admin")
    amr = db_rows(live_server, "SELECT details FROM audit_events WHERE action = 'login' AND actor = ? "
                               "ORDER BY id DESC LIMIT 1", owner)[0][0]
    assert '"amr": "hwk mfa"' in amr or '"amr": "swk mfa"' in amr

    # Step-up (a master token later on): the passkey again, not the password.
    page.goto(base + "/account/confirm?next=/account/security")
    page.get_by_role("button", name="Use a passkey").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/account/security")
    page.wait_for_load_state()

    # Rename, keyboard only (on the Security page the step-up came back to).
    rename = page.get_by_label("New name for YubiKey 5")
    rename.fill("laptop")
    rename.press("Enter")
    expect(page.get_by_text("The passkey was renamed.")).to_be_visible()
    expect(page.locator(".passkey-list")).to_contain_text("laptop")

    # Removing asks the password (or a code) first.
    page.get_by_role("button", name="Remove passkey “laptop”").click()
    expect(page.get_by_text("Enter your password or a code.")).to_be_visible()
    page.get_by_label("Your password, or a code from your authenticator app").fill(PASSWORD)
    page.get_by_role("button", name="Remove passkey “laptop”").click()
    expect(page.get_by_text("The passkey “laptop” was removed.")).to_be_visible()
    assert db_rows(live_server, "SELECT count(*) FROM passkeys p JOIN users u ON u.id = p.user_id "
                                "WHERE u.username = ?", owner) == [(0,)]


def test_a_cloned_credential_with_a_stale_sign_counter_is_refused(page, base, owner, live_server):
    cdp, authenticator = add_authenticator(page)
    password_step(page, base, owner)
    register(page, base, "cloned key")
    clone = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]

    log_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url("**/admin")
    stored = db_rows(live_server, "SELECT sign_count FROM passkeys WHERE name = 'cloned key'")[0][0]
    assert stored > clone["signCount"]

    # The same key, copied before that sign-in, in another authenticator.
    log_out(page)
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    _, copy = add_authenticator(page)
    cdp2 = page.context.new_cdp_session(page)
    cdp2.send("WebAuthn.enable")
    cdp2.send("WebAuthn.addCredential", {"authenticatorId": copy, "credential": clone})
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator(".passkey-status")).to_contain_text("Not signed in")
    expect(page.locator(".passkey-status")).to_contain_text("sign count")
    assert "/login" in page.url
    failed = db_rows(live_server, "SELECT count(*) FROM audit_events WHERE action = 'login.second_factor_failed'")
    assert failed[0][0] >= 1
