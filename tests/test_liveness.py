"""One liveness rule (models.token.token_state, and AccessToken.in_state as its SQL), used
by every reader: a deactivated user's token is not "active" anywhere (issue 14)."""

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken
from portal.models.token import ACTIVE, INACTIVE_USER, STATES, token_state
from tests.api.conftest import bearer
from tests.factories import make_application, make_token, make_user

# On SQLite and PostgreSQL (tests/conftest.py): the liveness rule's SQL (AccessToken.in_state) against its Python.
pytestmark = pytest.mark.both_databases


def test_python_and_sql_put_every_token_in_the_same_state(app):
    now = clock.now()
    application = make_application(name="svc")
    users = {None: None, True: make_user(username="on"), False: make_user(username="off", active=False)}
    expected = {}
    for revoked, expired, active in itertools.product((False, True), (False, True), (None, True, False)):
        issued = make_token(application=application, user=users[active], expires_in=3600)
        row = db.session.get(AccessToken, issued.id)
        row.revoked_at = now - timedelta(minutes=1) if revoked else None
        row.expires_at = now - timedelta(minutes=1) if expired else now + timedelta(hours=1)
        expected[row.id] = token_state(row.revoked_at, row.expires_at, active, now)
        assert row.status == expected[row.id]
    db.session.commit()
    for state in STATES:
        found = set(db.session.scalars(select(AccessToken.id).where(*AccessToken.in_state(state, now))))
        assert found == {i for i, s in expected.items() if s == state}, state
    assert set(expected.values()) == set(STATES)


def test_a_deactivated_users_token_is_inactive_in_the_portal_and_the_api(admin_client):
    user = make_user(username="leaver")
    issued = make_token(user=user)
    master = make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    user.active = False
    db.session.commit()
    with_user = admin_client.get(f"/admin/tokens/{issued.id}").get_data(as_text=True)
    assert INACTIVE_USER in with_user
    listed = admin_client.get("/admin/tokens?status=inactive").get_data(as_text=True)
    assert issued.token.hint in listed
    assert issued.token.hint not in admin_client.get("/admin/tokens?status=active").get_data(as_text=True)
    # The API shows the same state (a master token may see a token of a tenantless profile).
    shown = admin_client.get(f"/api/v1/access-tokens/{issued.id}", headers=bearer(master)).get_json()
    assert shown["status"] == INACTIVE_USER
    assert tokens.invalid_reason(issued.token) == "user deactivated"
    dashboard = admin_client.get("/admin").get_data(as_text=True)
    assert ACTIVE in dashboard
