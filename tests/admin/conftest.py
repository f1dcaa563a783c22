"""Fixtures for the admin portal tests."""

import functools

import pytest
from werkzeug.security import generate_password_hash

from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    """Passwords hashed with one PBKDF2 round: these tests are about the portal, not hashing."""
    monkeypatch.setattr("portal.models.user.generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1"))


@pytest.fixture
def setup(app, admin_user):
    """Two tenants and one application."""
    return {
        "site1": make_tenant("site1"),
        "site2": make_tenant("site2"),
        "app": make_application("crm"),
    }


@pytest.fixture
def csrf(admin_client):
    def token(path="/admin/tokens/new") -> str:
        return csrf_token_from(admin_client.get(path).get_data(as_text=True))
    return token


def token_count() -> int:
    db.session.expire_all()
    return db.session.query(AccessToken).filter(AccessToken.source == "admin").count()


def audit_count() -> int:
    return db.session.query(AuditEvent).count()
