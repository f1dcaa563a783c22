"""The token core against a real database (SQLite, and PostgreSQL when configured)."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, Application, AuditEvent, TokenPermission, User
from tests.factories import make_application, make_tenant, make_token, make_user

# On SQLite and PostgreSQL (tests/conftest.py): the token core's writes, constraints and
# lookups, in each database's SQL.
pytestmark = pytest.mark.both_databases


def test_generated_values_are_prefixed_random_and_stored_only_as_hash(app):
    issued = make_token()
    assert issued.value.startswith("tsr_") and len(issued.value) == 4 + 43
    row = db.session.get(AccessToken, issued.token.id)
    assert row.token_hash == tokens.hash_value(issued.value) != issued.value
    assert row.hint == issued.value[:8]
    assert issued.value not in repr(db.session.execute(select(AccessToken.__table__)).all())


def test_generated_values_are_unique():
    values = {tokens.generate_value() for _ in range(10000)}
    assert len(values) == 10000


def test_lookup_by_value(app):
    issued = make_token()
    assert tokens.find_by_value(issued.value).id == issued.token.id
    assert tokens.find_by_value("tsr_unknown-value-000000000000") is None
    assert tokens.find_by_value("") is None


@pytest.mark.parametrize("value, message", [
    ("short-value", "at least 16"),
    ("has a space in it!!", "without spaces"),
    ("tab\tseparated-value-1", "without spaces"),
    ("line\nbreak-value-12345", "without spaces"),
    ("no-break\u00a0space-value", "without spaces"),
    ("control\x00character-value", "without spaces"),
])
def test_custom_values_are_checked(app, value, message):
    with pytest.raises(tokens.TokenError, match=message):
        make_token(value=value)
    assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 0


def test_a_custom_value_may_use_any_printable_ascii_character_and_nothing_else(app):
    """One rule for the admin form, the API and the CLI: what an Authorization header or a
    URL carries as it is (printable ASCII, no spaces)."""
    value = "legacy!#$%&'()*+,-./:;<=>?@[]^_`{|}~0123"
    assert tokens.authenticate(make_token(value=value).value).hint == tokens.hint_for(value)
    for refused in ("café-token-ünïcode-Ω-0123", "with a space-0123456", "tab\there-0123456789", "x" * 4097):
        with pytest.raises(tokens.TokenError, match="printable ASCII without spaces"):
            make_token(value=refused)


def test_a_user_and_application_made_in_the_same_transaction_are_linked(app):
    application = Application(name="fresh-app", client_id="fresh-app")
    user = User(username="fresh-user", email="fresh@example.org")
    db.session.add_all([application, user])  # pending: no ids yet
    issued = tokens.create_token(application=application, source="admin", user=user, actor="test")
    row = db.session.get(AccessToken, issued.id)
    assert (row.application.name, row.user.username) == ("fresh-app", "fresh-user")
    other = User(username="other-fresh-user", email="other@example.org")
    db.session.add(other)
    replaced = tokens.replace(row, actor="test", application=row.application, user=other, master=False,
                              scope="", tenant_permissions=[])
    assert replaced.user.username == "other-fresh-user"


def test_custom_value_must_be_unique_and_nothing_is_half_written(app):
    application = make_application()
    make_token(application, value="migrated-token-value-0001")
    with pytest.raises(tokens.DuplicateValueError):
        make_token(application, value="migrated-token-value-0001",
                   tenant_permissions=[{"tenant": "*", "actions": ["*"]}])
    assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 1
    assert db.session.scalar(select(func.count()).select_from(TokenPermission)) == 0


def test_a_client_credentials_token_commits_on_the_hot_connection_and_a_taken_value_leaves_nothing(app):
    """client_credentials issuance: no ORM session, committed at once, same duplicate rule."""
    application = make_application()

    def store():
        return tokens.store_grant_token(client=application, grant_type="client_credentials", user=None,
                                        value="alone-token-value-0001", scope="", expires_in=3600)

    token_id = store()
    assert tokens.authenticate("alone-token-value-0001").id == token_id
    with pytest.raises(tokens.DuplicateValueError):
        store()
    # The hot connection was rolled back and still answers; nothing half-written.
    assert tokens.authenticate("alone-token-value-0001").id == token_id
    assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "token.created")) == 0


def test_grant_tokens_are_not_held_to_the_custom_value_rule(app):
    """A value Authlib generated (a JWT, say) is stored as it is: the 16-character rule and
    the audit event are for values people type."""
    application = make_application()
    token_id = tokens.store_grant_token(client=application, grant_type="authorization_code", user=None,
                                        value="short", scope="openid", expires_in=60)
    assert tokens.authenticate("short").id == token_id
    with pytest.raises(tokens.TokenError, match="unknown source"):
        make_token(application, source="client_credentials")


def test_unknown_tenant_is_refused(app):
    with pytest.raises(tokens.TokenError, match="unknown tenant site9"):
        make_token(tenant_permissions=[{"tenant": "site9", "actions": ["READ_TENANT"]}])


def test_expiry_default_custom_and_past(app):
    issued = make_token()
    expected = clock.now() + timedelta(seconds=app.config["ACCESS_TOKEN_EXPIRE_SECONDS"])
    assert abs((issued.token.expires_at - expected).total_seconds()) <= 2
    with pytest.raises(tokens.TokenError, match="future"):
        make_token(expires_at=clock.now() - timedelta(minutes=1))


def test_validate_expired_revoked_deleted_and_inactive_user(app, monkeypatch):
    user = make_user()
    issued = make_token(user=user, expires_in=60)
    assert tokens.authenticate(issued.value).id == issued.token.id

    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    with pytest.raises(tokens.InvalidTokenError, match="expired"):
        tokens.authenticate(issued.value)
    monkeypatch.undo()

    user.active = False
    db.session.commit()
    with pytest.raises(tokens.InvalidTokenError, match="deactivated"):
        tokens.authenticate(issued.value)
    user.active = True
    db.session.commit()

    tokens.revoke(issued.token, actor="test")
    with pytest.raises(tokens.InvalidTokenError, match="revoked"):
        tokens.authenticate(issued.value)

    other = make_token()
    tokens.delete(other.token, actor="test")
    with pytest.raises(tokens.InvalidTokenError, match="unknown"):
        tokens.authenticate(other.value)


def test_extend_in_place_never_into_the_past(app):
    issued = make_token()
    token_id = issued.token.id
    new_expiry = clock.now() + timedelta(days=30)
    tokens.extend(issued.token, new_expiry, actor="alice")
    token = db.session.get(AccessToken, token_id)
    assert token.expires_at == new_expiry
    with pytest.raises(tokens.TokenError, match="future"):
        tokens.extend(token, clock.now() - timedelta(seconds=1), actor="alice")
    assert db.session.get(AccessToken, token_id).expires_at == new_expiry
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == str(token_id))).all()
    assert "token.extended" in actions


def test_replace_keeps_the_value_and_swaps_the_settings(app):
    make_tenant("site1")
    make_tenant("site2")
    first, second = make_application(), make_application()
    issued = make_token(first, tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    new = tokens.replace(issued.token, actor="alice", application=second, user=None, master=True, scope="x",
                         tenant_permissions=[{"tenant": "site2", "actions": ["MANAGE_PROFILES"]}])
    found = tokens.authenticate(issued.value)
    assert found.id == new.id
    assert found.application_id == second.id and found.master and found.scope == "x"
    assert found.permissions == (tokens.Permission("site2", frozenset({"MANAGE_PROFILES"})),)
    assert found.allows("MANAGE_PROFILES", "site2")
    assert not found.allows("READ_TENANT", "site1")
    assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 1


def test_authenticate_reads_every_permission_in_order_and_the_application(app):
    make_tenant("site1")
    application = make_application()
    entries = [{"tenant": "site1", "actions": ["READ_TENANT"]}, {"tenant": "*", "actions": ["*"]}]
    issued = make_token(application, tenant_permissions=entries)
    found = tokens.authenticate(issued.value)
    assert [p.as_dict() for p in found.permissions] == [{"tenant": "site1", "actions": ["READ_TENANT"]},
                                                        {"tenant": "*", "actions": ["*"]}]
    assert found.application_name == application.name and found.hint == issued.token.hint
    assert not found.allows("UPDATE_TENANT", "site1")  # the site1 entry beats *
    assert found.allows("UPDATE_TENANT", "site2")
    assert tokens.authenticate(make_token(application).value).permissions == ()


def test_replace_with_bad_permissions_changes_nothing(app):
    issued = make_token()
    with pytest.raises(tokens.TokenError):
        tokens.replace(issued.token, actor="alice", application=issued.token.application, user=None,
                       master=False, scope="", tenant_permissions=[{"tenant": "nope", "actions": ["*"]}])
    db.session.rollback()
    assert tokens.authenticate(issued.value).id == issued.token.id


def test_delete_ends_the_token_and_its_refresh_token(app):
    issued = make_token(refresh_value="refresh-value-for-test-0001")
    assert tokens.describe("refresh-value-for-test-0001", tokens.REFRESH) is not None
    tokens.delete(issued.token, actor="alice")
    assert tokens.find_by_value(issued.value) is None
    assert tokens.describe("refresh-value-for-test-0001", tokens.REFRESH) is None


def test_delete_for_user_ends_only_that_users_tokens(app):
    alice, bob = make_user("alice"), make_user("bob")
    application = make_application()
    make_token(application, user=alice)
    tokens.create_session_token(alice)
    kept = make_token(application, user=bob)
    assert tokens.delete_for_user(alice, actor="admin") == 2
    remaining = db.session.scalars(select(AccessToken.id)).all()
    assert remaining == [kept.token.id]


def test_revoke_grant_ends_the_family(app):
    application = make_application()
    def grant_token(value, grant_id):
        tokens.store_grant_token(client=application, grant_type="authorization_code", user=None, value=value,
                                 scope="", expires_in=3600, grant_id=grant_id)
        return value

    family = [grant_token("tsr_first-of-g1", "g1"), grant_token("tsr_second-of-g1", "g1")]
    other = grant_token("tsr_only-of-g2", "g2")
    assert tokens.revoke_grant("g1", actor="oauth") == 2
    for value in family:
        assert tokens.invalid_reason(tokens.find_by_value(value)) == "token revoked"
    assert tokens.invalid_reason(tokens.find_by_value(other)) is None


def test_master_flag_and_permissions_are_stored(app):
    make_tenant("site1")
    issued = make_token(master=True, tenant_permissions=[
        {"tenant": "*", "actions": ["READ_TENANT"]}, {"tenant": "site1", "actions": ["*"]},
    ])
    token = tokens.find_by_value(issued.value)
    assert token.master is True
    assert token.tenant_permissions == [{"tenant": "*", "actions": ["READ_TENANT"]},
                                        {"tenant": "site1", "actions": ["*"]}]


def test_replace_keeps_the_id_the_creation_time_the_last_use_and_one_history(app):
    make_tenant("site1")
    issued = make_token()
    token = issued.token
    token_id, created_at = token.id, token.created_at
    tokens.authenticate(issued.value)  # records a last use, on the request's own connection
    db.session.expire_all()
    last_used_at = db.session.get(AccessToken, token_id).last_used_at
    assert last_used_at is not None
    replaced = tokens.replace(token, actor="root", application=token.application, user=None, master=True,
                              scope="", tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}])
    assert (replaced.id, replaced.created_at, replaced.last_used_at) == (token_id, created_at, last_used_at)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.target_type == "access_token",
                                                         AuditEvent.target_id == str(token_id))
                                .order_by(AuditEvent.id)).all()
    assert [event.action for event in events] == ["token.created", "token.replaced"]
    assert events[1].details["changes"] == {
        "master": {"from": False, "to": True},
        "tenant_permissions": {"from": [], "to": [{"tenant": "site1", "actions": ["READ_TENANT"]}]},
    }