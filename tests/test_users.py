"""portal.domain.users: one username rule and one administrator rule for the admin form, the API
and the CLI (issue 13)."""

import pytest
from sqlalchemy import select

from portal.domain import users
from portal.extensions import db
from portal.models import User
from portal.tokens.core import MAX_EXPIRES_IN
from tests.factories import make_application, make_tenant, make_user


@pytest.mark.parametrize("text, stored", [
    ("alice", "alice"),
    ("Alice.B_c@d+e-f", "Alice.B_c@d+e-f"),
    ("ａｌｉｃｅ", "alice"),     # full-width forms: NFKC
    ("x" * 150, "x" * 150),
])
def test_usernames_are_stored_nfkc_normalised(text, stored):
    assert users.normalize_username(text) == stored


@pytest.mark.parametrize("text", [
    "", "x" * 151, "al ice", "alice\n", "\u0430lice", "al\u200bice", "\ufeffalice", "alice\u202e", "ålice",
    "alice\x00", None,
])
def test_usernames_that_could_pass_for_others_are_refused(text):
    with pytest.raises(users.UserError) as refused:
        users.normalize_username(text)
    assert refused.value.field == "username" and "ASCII letters" in refused.value.message


@pytest.mark.both_databases  # duplicates found by SQL lower()
def test_the_duplicate_check_compares_normalised_names_whatever_the_case(app):
    make_user("alice")
    for text in ("ALICE", "ａｌｉｃｅ", "ＡＬＩＣＥ"):
        with pytest.raises(users.UsernameTakenError):
            users.new_username(text)
    assert users.new_username("alicia") == "alicia"


def test_an_administrator_belongs_to_no_tenant(app):
    site1 = make_tenant("site1")
    with pytest.raises(users.UserError) as refused:
        users.create("boss", "a long password", tenant=site1, is_admin=True)
    assert refused.value.field == "tenant"
    boss = users.create("boss", "a long password", is_admin=True)
    assert boss.tenant is None
    assert users.create("alice", None, tenant=site1).tenant.name == "site1"
    with pytest.raises(users.UserError) as refused:
        users.update(boss, tenant=site1)
    assert refused.value.field == "tenant" and boss.tenant is None


# --- the CLI -------------------------------------------------------------------------------

def invoke(runner, *args, input="a long password\n"):
    result = runner.invoke(args=list(args), input=input)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("command", [
    ["create-user", "\u0430lice", "--email", "alice@example.org", "--password-stdin"],
    ["create-user", "al\u200bice", "--email", "alice@example.org", "--password-stdin"],
    ["create-admin", "\ufeffroot", "--password-stdin"],
    ["create-admin", "root\u202e", "--password-stdin"],
])
def test_cli_refuses_usernames_that_could_pass_for_others(app, runner, command):
    result = invoke(runner, *command)
    assert result.exit_code != 0 and "ASCII letters" in result.output
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 0


@pytest.mark.both_databases  # duplicates found by SQL lower()
def test_cli_stores_the_normalised_username_and_finds_duplicates_by_it(app, runner):
    assert invoke(runner, "create-admin", "ｒｏｏｔ", "--password-stdin").exit_code == 0
    root = db.session.scalar(select(User).where(User.username == "root"))
    assert root.is_admin and root.tenant is None
    result = invoke(runner, "create-user", "ROOT", "--email", "root@example.org", "--password-stdin")
    assert result.exit_code != 0 and "already exists" in result.output


def test_no_cli_path_makes_an_administrator_in_a_tenant(app, runner):
    """create-admin has no --tenant, create-user no --admin, and the helper both share
    refuses the pair."""
    import click

    from portal.cli import create_user

    site1 = make_tenant("site1")
    assert invoke(runner, "create-user", "bob", "--admin", "--email", "b@example.org").exit_code != 0
    assert invoke(runner, "create-admin", "bob", "--tenant", "site1", "--password-stdin").exit_code != 0
    with pytest.raises(click.ClickException) as refused:
        create_user("boss", "a long password", tenant=site1, admin=True)
    assert "belongs to no tenant" in refused.value.message
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 0


# --- one expiry cap, in the token core --------------------------------------------------

def test_cli_create_token_is_capped_at_ten_years(app, runner):
    make_application("demo")
    ten_years = MAX_EXPIRES_IN
    result = invoke(runner, "create-token", "--application", "demo", "--expires-in", str(ten_years + 1))
    assert result.exit_code != 0 and "--expires-in" in result.output and "ten years" in result.output
    assert invoke(runner, "create-token", "--application", "demo", "--expires-in", str(ten_years)).exit_code == 0
