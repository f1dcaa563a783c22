"""`portal import dot DATABASE_URL`: a real django-oauth-toolkit database, made by Django's
own migrations (tests/importers/make_dot_database.py, on SQLite and on PostgreSQL), moved
over; afterwards the old passwords, the old client secret and the old tokens work."""

import base64

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.domain.hashing import django_algorithm, django_password_matches, sha256_hex
from portal.models import AccessToken, Application, AuditEvent, User

# On SQLite and PostgreSQL (tests/conftest.py): an import is one transaction in the target database.
pytestmark = pytest.mark.both_databases


def invoke(runner, geonode, *args):
    result = runner.invoke(args=["import", "dot", geonode["url"], *args])
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    return result.output


def summary_line(output: str, kind: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(f"{kind}:"))


def row_counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (User, Application, AccessToken))


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_dry_run_then_apply_then_apply_again(app, runner, geonode):
    output = invoke(runner, geonode)
    assert "Dry run" in output
    assert summary_line(output, "users") == "users: 5 to create, 0 already present, 1 refused"
    assert summary_line(output, "applications") == "applications: 3 to create, 0 already present, 0 refused"
    assert summary_line(output, "tokens") == "tokens: 4 to create, 0 already present, 1 expired (skipped), 1 refused"
    assert "'jürgen'" in output and "md5" in output  # refused, and imported without its password
    assert row_counts() == (0, 0, 0)

    output = invoke(runner, geonode, "--apply")
    assert summary_line(output, "users") == "users: 5 created, 0 already present, 1 refused"
    assert summary_line(output, "tokens") == "tokens: 4 created, 0 already present, 1 expired (skipped), 1 refused"
    assert row_counts() == (5, 3, 4)
    assert geonode["access_token"] not in output and geonode["client_secret"] not in output

    output = invoke(runner, geonode, "--apply")
    assert summary_line(output, "users") == "users: 0 created, 5 already present, 1 refused"
    assert summary_line(output, "applications") == "applications: 0 created, 3 already present, 0 refused"
    assert summary_line(output, "tokens") == "tokens: 0 created, 4 already present, 1 expired (skipped), 1 refused"
    assert row_counts() == (5, 3, 4)
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "import.applied")) == 2


def test_what_is_kept(app, runner, geonode):
    invoke(runner, geonode, "--apply")
    alice, gnadmin, bob, mallory, carol = (user(name) for name in ("alice", "gnadmin", "bob", "mallory", "carol"))
    assert alice.password_hash == geonode["hashes"]["alice"]  # Django's hashes, as they were
    assert gnadmin.password_hash.startswith("argon2$") and bob.password_hash.startswith("bcrypt_sha256$")
    assert mallory.password_hash is None and carol.password_hash is None  # md5 not kept; unusable stays so
    assert gnadmin.is_admin and not bob.is_admin and not alice.is_admin  # superuser only; bob is staff
    assert alice.email == "alice@example.org" and alice.name == "Alice Old" and alice.tenant is None
    assert user("jürgen") is None

    geoserver = db.session.scalar(select(Application).where(Application.client_id == geonode["client_id"]))
    assert geoserver.name == "GeoServer" and geoserver.client_type == "confidential"
    assert geoserver.client_secret_hash == geonode["stored_client_secret"]  # DOT's own hash
    assert geoserver.redirect_uris == ["http://localhost:8080/geoserver/index.html",
                                       "https://geo.example.org/geoserver/index.html"]
    assert geoserver.grant_types == ["authorization_code", "refresh_token"]
    assert set(geoserver.scope.split()) >= {"openid", "read", "write"}
    viewer = db.session.scalar(select(Application).where(Application.client_id == geonode["public_client_id"]))
    assert viewer.is_public and viewer.client_secret_hash is None and viewer.token_endpoint_auth_method == "none"

    by_value = select(AccessToken).where(AccessToken.token_hash == sha256_hex(geonode["access_token"]))
    harvester = db.session.scalar(select(Application).where(Application.client_id == geonode["legacy_client_id"]))
    assert harvester.client_secret_hash == sha256_hex(geonode["legacy_secret"])  # a plain DOT secret, hashed
    assert harvester.grant_types == ["client_credentials"]
    token = db.session.scalar(by_value)
    assert token.user.username == "alice" and token.application == geoserver and token.scope == "openid read write"
    assert token.refresh_token_hash == sha256_hex(geonode["refresh_token"]) and token.grant_id
    hashes = {sha256_hex(geonode[gone]) for gone in ("expired_token", "refused_token")}
    assert db.session.scalar(select(func.count()).where(AccessToken.token_hash.in_(hashes))) == 0


def test_old_passwords_log_in_once_and_are_rehashed(app, runner, geonode, auth):
    invoke(runner, geonode, "--apply")
    assert auth.login("alice", "not her password").status_code == 200
    assert django_algorithm(user("alice").password_hash) == "pbkdf2_sha256"  # a failure changes nothing
    for username in ("alice", "gnadmin", "bob"):  # pbkdf2_sha256, argon2, bcrypt_sha256
        response = auth.login(username, geonode["passwords"][username])
        assert response.status_code == 303, (username, response.get_data(as_text=True))
        auth.logout()
        db.session.expire_all()
        assert django_algorithm(user(username).password_hash) is None  # now Tessera's own hash
        assert auth.login(username, geonode["passwords"][username]).status_code == 303
        auth.logout()
    assert auth.login("gnadmin", geonode["passwords"]["gnadmin"]).headers["Location"].startswith("/admin")


def test_old_client_secret_and_tokens_keep_working(app, runner, geonode, client):
    invoke(runner, geonode, "--apply")
    access, secret, client_id = geonode["access_token"], geonode["client_secret"], geonode["client_id"]

    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 200 and userinfo.get_json()["sub"] == user("alice").sub
    # On the JSON API the token authenticates (403: it carries no tenant permissions; an
    # unknown token is 401).
    assert client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {access}"}).status_code == 403
    assert client.get("/api/v1/tenants", headers={"Authorization": "Bearer unknown-token-000000000"}).status_code == 401

    assert client.post("/introspect", data={"token": access},
                       headers=basic(client_id, "a wrong secret 0123456789")).status_code == 401
    body = client.post("/introspect", data={"token": access}, headers=basic(client_id, secret)).get_json()
    assert body["active"] is True and body["username"] == "alice" and body["client_id"] == client_id
    assert body["scope"] == "openid read write"
    db.session.expire_all()
    geoserver = db.session.scalar(select(Application).where(Application.client_id == client_id))
    assert geoserver.client_secret_hash == sha256_hex(secret)  # matched once, so stored Tessera's way

    tokeninfo = client.post("/api/o/v4/tokeninfo/", data={"token": access}, headers=basic(client_id, secret))
    assert tokeninfo.status_code == 200, tokeninfo.get_data(as_text=True)
    assert tokeninfo.get_json()["username"] == "alice" and tokeninfo.get_json()["client_id"] == client_id

    # GeoServer renews with the old refresh token and the old secret.
    renewed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": geonode["refresh_token"]},
                          headers=basic(client_id, secret))
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    fresh = renewed.get_json()
    assert fresh["scope"] == "openid read write"
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    # An expired access token whose refresh token DOT had not revoked renews too.
    stale = client.post("/token", data={"grant_type": "refresh_token",
                                        "refresh_token": geonode["stale_refresh_token"],
                                        "client_id": client_id, "client_secret": secret})
    assert stale.status_code == 200, stale.get_data(as_text=True)


def test_a_client_with_a_plain_dot_secret_gets_tokens(app, runner, geonode, client):
    invoke(runner, geonode, "--apply")
    issued = client.post("/token", data={"grant_type": "client_credentials"},
                         headers=basic(geonode["legacy_client_id"], geonode["legacy_secret"]))
    assert issued.status_code == 200, issued.get_data(as_text=True)
    assert client.post("/token", data={"grant_type": "client_credentials"},
                       headers=basic(geonode["legacy_client_id"], "not-the-secret-0123456789")).status_code == 401


def test_django_hashes_are_checked_as_django_checks_them(geonode):
    for username, encoded in geonode["hashes"].items():
        password = geonode["passwords"][username]
        kept = django_algorithm(encoded) is not None
        assert django_password_matches(encoded, password) is kept  # md5: never
        assert django_password_matches(encoded, password + "x") is False
        assert django_password_matches(encoded[:-6], password) is False  # a damaged hash is no match, no error
    assert django_password_matches(geonode["stored_client_secret"], geonode["client_secret"])


def test_not_a_dot_database_is_a_clear_error(app, runner, tmp_path):
    (tmp_path / "empty.db").touch()
    for url, message in ((f"sqlite:///{tmp_path / 'empty.db'}", "not a django-oauth-toolkit database"),
                         (f"sqlite:///{tmp_path / 'missing.db'}", "no such SQLite file"),
                         ("nonsense://x", "not a database URL")):
        result = runner.invoke(args=["import", "dot", url])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()
