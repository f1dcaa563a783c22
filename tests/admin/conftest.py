"""Fixtures for the admin portal tests."""

import pytest

from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant


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
