"""Fixtures for the admin portal tests."""

import os
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.admin.browsing import signed_in_state
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_tenant


AXE = Path(__file__).resolve().parent.parent / "js" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core, from the npm registry through tests/js/package-lock.json (`npm ci` in
    tests/js, which `make test` runs)."""
    if not AXE.exists():
        reason = f"{AXE} is missing: run `npm ci` in tests/js (make test does)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return AXE


@pytest.fixture(scope="module")
def admin_state(browser, live_server) -> dict:
    """The admin's signed-in browser state (its cookies), from one login through the form per
    module: a test opens a context with it instead of logging in again. Tests about logging
    in, or that end the admin's sessions, log in themselves (tests.admin.browsing.log_in)."""
    return signed_in_state(browser, live_server)


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
