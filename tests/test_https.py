"""HTTPS served by gunicorn itself, in a real Chromium: the login form and the portal's
forms work (a suite that ran only on plain HTTP once passed while nobody could log in)."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import make_certificate, start_live_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    server = start_live_server(folder, tls=make_certificate(folder), extra_env={"SESSION_COOKIE_SECURE": "true"})
    yield server
    server.stop()


def test_chromium_logs_in_and_submits_portal_forms_over_https(browser, tls_server):
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        page.goto(tls_server.url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(tls_server.admin_password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/admin$"))
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "__Host-tessera")
        assert cookie["secure"] and cookie["httpOnly"]

        page.goto(tls_server.url + "/admin/tenants")
        page.get_by_label("Name (a slug; never changes)").fill("site-https")
        page.get_by_role("button", name=re.compile("Create")).click()
        expect(page.get_by_role("link", name="site-https")).to_be_visible()
    finally:
        context.close()
