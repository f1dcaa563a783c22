"""The `portal` command group: clear messages for bad input, never a traceback."""

import json

import pytest
from sqlalchemy import select

from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, Application, Tenant, User
from tests.factories import make_tenant


def invoke(runner, *args, input=None):
    result = runner.invoke(args=list(args), input=input)
    assert "Traceback" not in result.output
    return result


def test_create_tenant_user_application_token(app, runner):
    assert invoke(runner, "create-tenant", "site1").exit_code == 0
    result = invoke(runner, "create-user", "alice", "--email", "alice@example.org", "--tenant", "site1",
                    "--name", "Alice", "--password-stdin", input="a long password\n")
    assert result.exit_code == 0, result.output
    alice = db.session.scalar(select(User).where(User.username == "alice"))
    assert alice.tenant.name == "site1" and alice.check_password("a long password") and not alice.is_admin

    result = invoke(runner, "create-application", "demo", "--client-id", "651462",
                    "--client-secret", "37b1c4ff826f8d78bd45e25bad75a2c0",
                    "--redirect-uri", "http://example.org/", "--response-type", "code",
                    "--scope", "openid email profile")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["client_id"] == "651462" and printed["client_secret"] == "37b1c4ff826f8d78bd45e25bad75a2c0"
    demo = db.session.scalar(select(Application).where(Application.client_id == "651462"))
    assert demo.check_client_secret("37b1c4ff826f8d78bd45e25bad75a2c0")
    assert demo.redirect_uris == ["http://example.org/"] and demo.response_types == ["code"]
    assert demo.token_auth_methods == ("client_secret_basic", "client_secret_post")
    result = invoke(runner, "create-application", "basic-only", "--auth-method", "client_secret_basic")
    assert result.exit_code == 0, result.output
    basic_only = db.session.scalar(select(Application).where(Application.name == "basic-only"))
    assert basic_only.token_auth_methods == ("client_secret_basic",)

    result = invoke(runner, "create-token", "--application", "demo", "--user", "alice", "--master",
                    "--expires-in", "600", "--tenant", "site1=READ_TENANT,MANAGE_PROFILES", "--tenant", "*=READ_TENANT")
    assert result.exit_code == 0, result.output
    value = result.output.strip()
    token = tokens.find_by_value(value)
    assert token.master and token.user_id == alice.id
    assert token.tenant_permissions == [{"tenant": "site1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]},
                                        {"tenant": "*", "actions": ["READ_TENANT"]}]


def test_create_admin(app, runner):
    result = invoke(runner, "create-admin", "root", "--password-stdin", input="another long one\n")
    assert result.exit_code == 0
    assert db.session.scalar(select(User).where(User.username == "root")).is_admin


@pytest.mark.parametrize("args, message", [
    (["create-tenant", "Not A Slug"], "a tenant name needs 1 to 64 lower-case letters"),
    (["create-user", "bob", "--email", "not-an-email", "--password-stdin"], "--email"),
    (["create-user", "bob", "--email", "bob@example.org", "--tenant", "nowhere", "--password-stdin"],
     "no tenant named"),
    (["create-token", "--application", "nope"], "no application named 'nope'"),
    (["create-token", "--application", "portal", "--value", "short"], "at least 16"),
    (["create-token", "--application", "portal", "--tenant", "site1"], "expected TENANT=ACTION"),
    (["create-token", "--application", "portal", "--tenant", "ghost=READ_TENANT"], "unknown tenant ghost"),
    (["create-token", "--application", "portal", "--tenant", "*=FLY"], "unknown action FLY"),
    (["create-token", "--application", "portal", "--user", "nobody"], "no user named"),
    (["create-application", "bad", "--redirect-uri", "https://a.example/cb#frag"], "fragment"),
    (["create-application", "bad", "--redirect-uri", "https://*.example/cb"], "wildcard"),
    (["create-application", "bad", "--redirect-uri", "/relative"], "not an absolute URI"),
    (["create-application", "bad", "--client-secret", "short"], "at least 16"),
    (["create-application", "bad", "--grant-type", "password"], "unsupported grant type"),
    (["create-admin", "x", "--password-stdin"], "a password needs 8 to 1000 characters"),
])
def test_bad_input_gets_a_clear_message_and_writes_nothing(app, runner, args, message):
    tokens.portal_application()
    before = (db.session.query(AccessToken).count(), db.session.query(Application).count(),
              db.session.query(User).count(), db.session.query(Tenant).count())
    result = invoke(runner, *args, input="short\n")
    assert result.exit_code != 0
    assert message in result.output
    after = (db.session.query(AccessToken).count(), db.session.query(Application).count(),
             db.session.query(User).count(), db.session.query(Tenant).count())
    assert before == after


@pytest.mark.both_databases  # unique constraints
def test_duplicates_are_refused(app, runner):
    make_tenant("site1")
    tokens.portal_application()
    assert "already exists" in invoke(runner, "create-tenant", "site1").output
    invoke(runner, "create-token", "--application", "portal", "--value", "a-custom-value-123456")
    result = invoke(runner, "create-token", "--application", "portal", "--value", "a-custom-value-123456")
    assert result.exit_code != 0 and "already exists" in result.output


@pytest.mark.real_signing_keys  # the one in-process test that makes its keys as the app does
def test_rotate_keys_keeps_the_previous_key_published(app, runner):
    from portal.domain.signing import ensure_signing_key, published_keys

    first = ensure_signing_key()
    assert invoke(runner, "rotate-keys").exit_code == 0
    kids = [key.kid for key in published_keys().keys]
    assert first.kid in kids and len(kids) == 2


def test_a_bad_setting_is_a_one_line_error(tmp_path):
    import os
    import subprocess

    from tests.conftest import VENV_BIN

    env = {**os.environ, "TESSERA_INSTANCE_PATH": str(tmp_path), "ACCESS_TOKEN_EXPIRE_SECONDS": "soon"}
    result = subprocess.run([str(VENV_BIN / "portal"), "init"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "ACCESS_TOKEN_EXPIRE_SECONDS must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_serving_loads_no_alembic_and_the_db_commands_still_work(tmp_path):
    import os
    import subprocess

    from tests.conftest import ROOT, VENV_BIN

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(TESSERA_INSTANCE_PATH=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")

    def run(*args):
        result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run(str(VENV_BIN / "portal"), "db", "upgrade") is not None
    # What `gunicorn wsgi:app` imports: no Flask-Migrate, no Alembic in the worker.
    loaded = run(str(VENV_BIN / "python"), "-c", "import sys, wsgi; print(sorted(m for m in ('alembic', "
                 "'flask_migrate') if m in sys.modules), wsgi.app.name)")
    assert loaded.strip() == "[] portal"
    # `flask --app wsgi` is the same command group as `portal`: the db commands are there.
    assert "(head)" in run(str(VENV_BIN / "flask"), "--app", "wsgi", "db", "current")
    assert "(head)" in run(str(VENV_BIN / "portal"), "db", "current")
