"""`portal purge-expired`: what goes, what stays, in batches (SQLite and PostgreSQL).

Speed is measured by `python -m bench.purge`, never here."""

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.domain import clock
from portal.extensions import db
from portal.models import AccessToken, AuthorizationCode, TokenPermission
from tests.factories import make_application, make_tenant, make_token, make_user

# On SQLite and PostgreSQL (tests/conftest.py): the purge's statements differ by dialect.
pytestmark = pytest.mark.both_databases


def token(application, **changes) -> int:
    """A token made through the core, then moved in time with a plain UPDATE."""
    issued = make_token(application, tenant_permissions=[{"tenant": "*", "actions": ["READ_TENANT"]}])
    if changes:
        db.session.execute(update(AccessToken).where(AccessToken.id == issued.token.id).values(**changes))
        db.session.commit()
    return issued.token.id


def code(application, user, **fields) -> int:
    now = clock.now()
    values = {"expires_at": now + timedelta(minutes=10), **fields}
    row = AuthorizationCode(code_hash=secrets.token_hex(32), application_id=application.id, user_id=user.id,
                            grant_id=secrets.token_hex(16), **values)
    db.session.add(row)
    db.session.commit()
    return row.id


def remaining(model, ids) -> set:
    db.session.expire_all()
    return set(db.session.scalars(select(model.id).where(model.id.in_(ids))))


def test_purge_removes_only_what_is_done(app, runner):
    make_tenant("site1")
    application = make_application("purge-app")
    user = make_user("purger")
    now = clock.now()
    day = timedelta(days=1)

    gone_tokens = {
        "expired": token(application, expires_at=now - day),
        "expired, refresh expired": token(application, expires_at=now - day, refresh_token_hash="r1" * 32,
                                          refresh_expires_at=now - day),
        "expired, refresh revoked long ago": token(application, expires_at=now - day, refresh_token_hash="r2" * 32,
                                                   refresh_expires_at=now + day, refresh_revoked_at=now - 31 * day),
        "revoked long ago": token(application, revoked_at=now - 31 * day),
    }
    kept_tokens = {
        "live": token(application),
        "expired, refresh still live": token(application, expires_at=now - day, refresh_token_hash="r3" * 32,
                                             refresh_expires_at=now + day),
        "expired, refresh revoked recently (replay detection)": token(
            application, expires_at=now - day, refresh_token_hash="r4" * 32, refresh_expires_at=now + day,
            refresh_revoked_at=now - day),
        "revoked recently": token(application, revoked_at=now - day),
    }
    gone_codes = {
        "used long ago": code(application, user, used_at=now - 31 * day),
        "expired long ago": code(application, user, expires_at=now - 31 * day),
    }
    kept_codes = {
        "fresh": code(application, user),
        "used recently (replay detection)": code(application, user, used_at=now - day),
    }

    result = runner.invoke(args=["purge-expired", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    assert "Purged 4 tokens and 2 authorization codes" in result.output
    assert remaining(AccessToken, gone_tokens.values()) == set()
    assert remaining(AccessToken, kept_tokens.values()) == set(kept_tokens.values())
    assert remaining(AuthorizationCode, gone_codes.values()) == set()
    assert remaining(AuthorizationCode, kept_codes.values()) == set(kept_codes.values())
    # The permissions of purged tokens go with them.
    orphans = db.session.scalar(select(func.count()).select_from(TokenPermission)
                                .where(TokenPermission.token_id.in_(gone_tokens.values())))
    assert orphans == 0


def test_purge_in_many_batches_past_live_rows(app, runner):
    """Expired rows spread between live ones, more than one batch: all go, none of the live."""
    application = make_application("purge-many")
    now = clock.now()
    expired, live = [], []
    for i in range(23):
        if i % 3 == 0:
            live.append(token(application))
        else:
            expired.append(token(application, expires_at=now - timedelta(seconds=1)))

    result = runner.invoke(args=["purge-expired", "--batch-size", "4"])

    assert result.exit_code == 0, result.output
    assert f"Purged {len(expired)} tokens and 0 authorization codes" in result.output
    assert remaining(AccessToken, expired) == set()
    assert remaining(AccessToken, live) == set(live)


def test_purge_with_nothing_to_do(app, runner):
    make_token()
    result = runner.invoke(args=["purge-expired"])
    assert result.exit_code == 0, result.output
    assert "Purged 0 tokens and 0 authorization codes" in result.output


def test_revoked_days_zero_purges_every_revoked_row(app, runner):
    application = make_application("purge-revoked")
    revoked = token(application, revoked_at=clock.now() - timedelta(seconds=5))
    result = runner.invoke(args=["purge-expired", "--revoked-days", "0"])
    assert result.exit_code == 0, result.output
    assert remaining(AccessToken, [revoked]) == set()
