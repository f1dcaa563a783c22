"""Minting a master token or a `*`/`*` token in the portal needs the admin's password,
unless it was given in this session within the last five minutes (issue 13)."""

from datetime import timedelta

import pytest

from portal.domain import clock
from tests.admin.conftest import token_count
from tests.admin.test_tokens_http import create_data
from tests.factories import make_token

ALL = {"perm-0-tenant": "*", "perm-0-actions": ["*"]}


@pytest.fixture
def later(monkeypatch):
    """Six minutes after the login."""
    moved = clock.now() + timedelta(minutes=6)
    monkeypatch.setattr(clock, "now", lambda: moved)


def test_right_after_login_no_password_is_asked(admin_client, setup, csrf):
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), master="y"))
    assert response.status_code == 303 and token_count() == 1


@pytest.mark.parametrize("powerful", [{"master": "y"}, ALL], ids=["master", "all-on-all"])
def test_later_a_powerful_token_needs_the_password(admin_client, setup, csrf, later, powerful):
    asked = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), **powerful))
    assert asked.status_code == 422 and "Enter your password to make a master or */* token." in asked.get_data(
        as_text=True)
    wrong = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), current_password="nope",
                                                                    **powerful))
    assert wrong.status_code == 422 and "Wrong password." in wrong.get_data(as_text=True)
    assert token_count() == 0
    made = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), **powerful,
                                                                   current_password="correct horse battery"))
    assert made.status_code == 303 and token_count() == 1
    # The password counts as a fresh login for the next five minutes.
    again = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), **powerful))
    assert again.status_code == 303 and token_count() == 2


def test_later_an_ordinary_token_needs_no_password(admin_client, setup, csrf, later):
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf()))
    assert response.status_code == 303 and token_count() == 1


def test_replacing_into_a_master_token_needs_the_password_too(admin_client, setup, csrf, later):
    issued = make_token(application=setup["app"], tenant_permissions=[{"tenant": "site1", "actions": ["*"]}])
    path = f"/admin/tokens/{issued.id}/replace"
    asked = admin_client.post(path, data=create_data(setup, csrf(path), master="y"))
    assert asked.status_code == 422 and "Enter your password" in asked.get_data(as_text=True)
    done = admin_client.post(path, data=create_data(setup, csrf(path), master="y",
                                                    current_password="correct horse battery"))
    assert done.status_code == 303


@pytest.mark.parametrize("app_config", [{"LOGIN_DEVICE_RATE_LIMIT": "2 per minute"}])
def test_wrong_passwords_at_the_step_up_are_throttled_and_then_not_checked(admin_client, setup, csrf, later):
    for _ in range(2):
        wrong = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), master="y",
                                                                        current_password="nope"))
        assert wrong.status_code == 422 and "Wrong password." in wrong.get_data(as_text=True)
    refused = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), master="y",
                                                                      current_password="correct horse battery"))
    assert refused.status_code == 422 and "Too many wrong passwords: try again in" in refused.get_data(as_text=True)
    assert token_count() == 0


def test_strangers_locking_the_account_at_the_login_form_do_not_block_the_step_up(app, admin_client, setup, csrf,
                                                                                   later):
    from tests.test_auth import attempt

    stranger = app.test_client()
    assert [attempt(stranger, "wrong").status_code for _ in range(6)] == [200] * 5 + [429]
    made = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf(), master="y",
                                                                   current_password="correct horse battery"))
    assert made.status_code == 303 and token_count() == 1
