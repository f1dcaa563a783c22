"""Issue 16 at the HTTP and function level: the token list's bounded count, the audit
log's readable details, secrets shown once, over-long filters refused."""

import pytest
from sqlalchemy import text

from portal.admin.audit import readable, readable_details
from portal.admin.queries import TokenFilters, count_tokens, estimated_count
from portal.extensions import db
from tests.factories import make_application, make_token


@pytest.mark.both_databases  # the bounded count's SQL
def test_the_count_is_bounded_and_says_so(app, setup):
    other = make_application("billing")
    for _ in range(3):
        make_token(setup["app"])
    make_token(other)
    assert count_tokens(TokenFilters(), cap=10) == (4, False)
    assert count_tokens(TokenFilters(), cap=2) == (2, True)
    assert count_tokens(TokenFilters(application=other.id), cap=2) == (1, False)
    assert count_tokens(TokenFilters(q="crm"), cap=10) == (3, False)  # a search counts like the page finds
    assert count_tokens(TokenFilters(q="crm"), cap=2) == (2, True)


def test_login_sessions_are_counted_only_when_asked_for(admin_client, setup):
    make_token(setup["app"])  # admin_client's login made a session token too
    assert count_tokens(TokenFilters(), cap=10) == (1, False)
    assert count_tokens(TokenFilters(source="session"), cap=10) == (1, False)
    assert count_tokens(TokenFilters(source="all"), cap=10) == (2, False)
    assert "1 token matches." in admin_client.get("/admin/tokens").get_data(as_text=True)


@pytest.mark.both_databases  # PostgreSQL's planner estimate; none on SQLite
def test_an_estimate_past_the_count(admin_client, setup, database_url):
    for _ in range(3):
        make_token(setup["app"])
    if database_url.startswith("postgresql"):
        db.session.execute(text("ANALYZE access_tokens"))
        assert estimated_count(TokenFilters()) >= 1
        assert estimated_count(TokenFilters(q="crm", status="active", master="no", tenant="site1", expiring=7)) >= 1
    else:
        assert estimated_count(TokenFilters()) is None
    html = admin_client.get("/admin/tokens").get_data(as_text=True)
    assert "3 tokens match." in html


def test_the_page_says_more_than_when_past_the_cap(admin_client, setup, monkeypatch):
    for _ in range(3):
        make_token(setup["app"])
    monkeypatch.setattr("portal.admin.tokens.count_tokens", lambda filters: count_tokens(filters, cap=2))
    assert "More than 2 tokens match" in admin_client.get("/admin/tokens").get_data(as_text=True)


@pytest.mark.parametrize("value, shown", [
    (True, "yes"), (False, "no"), (None, "—"), ([], "—"),
    ([{"tenant": "site1", "actions": ["READ_TENANT", "MANAGE_PROFILES"]}, {"tenant": "*", "actions": ["*"]}],
     "site1: READ_TENANT, MANAGE_PROFILES; *: all actions"),
    (["authorization_code", "refresh_token"], "authorization_code, refresh_token"),
    ({"old_label": "A", "new": True}, "old label: A; new: yes"),
    ("2026-11-30T12:04:41.123456", "2026-11-30 12:04:41 UTC"),
    (42, "42"),
])
def test_audit_details_read_without_python_repr(value, shown):
    assert readable(value) == shown


def test_audit_detail_labels():
    assert readable_details({"tokens_deleted": 3, "master": False}) == [("tokens deleted", "3"), ("master", "no")]
    assert readable_details(None) == []


@pytest.mark.parametrize("path, message", [
    ("/admin/tokens?q=" + "a" * 5000, "The search text is too long: at most 4,096 characters (it has 5,000)."),
    ("/admin/tokens?tenant=" + "t" * 65, "The tenant filter is too long: at most 64 characters (it has 65)."),
    ("/admin/users?q=" + "u" * 255, "The search text is too long: at most 254 characters (it has 255)."),
    ("/admin/audit?actor=" + "a" * 201, "The actor filter is too long: at most 200 characters (it has 201)."),
])
def test_over_long_filters_get_the_error_page_saying_why(admin_client, path, message):
    response = admin_client.get(path)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)


def test_a_held_value_is_shown_to_its_own_page_only_once(admin_client, setup):
    from tests.admin.conftest import token_count
    from tests.admin.test_tokens_http import create_data
    from tests.conftest import csrf_token_from

    csrf = csrf_token_from(admin_client.get("/admin/tokens/new").get_data(as_text=True))
    response = admin_client.post("/admin/tokens/new", data=create_data(setup, csrf))
    assert response.status_code == 303 and token_count() == 1
    other = make_token(setup["app"]).token
    # Another token's "created" page does not get this value, and does not use it up.
    assert 'id="token-value"' not in admin_client.get(f"/admin/tokens/{other.id}/created").get_data(as_text=True)
    assert 'id="token-value"' in admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="token-value"' not in admin_client.get(response.headers["Location"]).get_data(as_text=True)


def test_new_writes_need_csrf_and_their_pages_change_nothing(admin_client, setup):
    from tests.admin.conftest import audit_count
    from tests.factories import make_user

    user, tenant, application = make_user("ivan"), setup["site1"], setup["app"]
    secret_hash = application.client_secret_hash
    before = audit_count()
    for path in (f"/admin/applications/{application.id}/edit", f"/admin/users/{user.id}/edit",
                 f"/admin/tenants/{tenant.id}/delete", f"/admin/users/{user.id}/end-sessions",
                 f"/admin/applications/{application.id}/secret"):
        assert admin_client.get(path).status_code == 200, path
        assert admin_client.post(path, data={"name": "x", "email": "x@example.org"}).status_code == 400, path
    db.session.expire_all()
    assert audit_count() == before and application.client_secret_hash == secret_hash
    assert user.email == "ivan@example.org" and db.session.get(type(tenant), tenant.id) is not None


def test_the_built_in_application_cannot_be_edited(admin_client, app):
    from portal.tokens.core import portal_application

    builtin = portal_application()
    response = admin_client.get(f"/admin/applications/{builtin.id}/edit", follow_redirects=True)
    assert "The built-in portal application cannot be changed." in response.get_data(as_text=True)
    assert 'href="/admin/applications/%d/edit"' % builtin.id not in admin_client.get(
        f"/admin/applications/{builtin.id}").get_data(as_text=True)


@pytest.mark.both_databases  # every page's queries, which PostgreSQL checks more strictly
def test_every_portal_page_answers_on_each_database(admin_client, setup):
    """The pages the browser checks look at, on SQLite and PostgreSQL (which refuses some
    SQL that SQLite lets through)."""
    from tests.factories import make_user

    user = make_user("pat", tenant=setup["site1"])
    token = make_token(setup["app"], user=user, tenant_permissions=[{"tenant": "site1", "actions": ["READ_TENANT"]}],
                       master=True, scope="read").token
    app_id, tenant_id = setup["app"].id, setup["site1"].id
    for path in ("/admin", "/admin/tokens", "/admin/tokens?status=active&master=yes&tenant=site1&expiring=7&q=crm",
                 "/admin/tokens?source=all&sort=expires_desc", "/admin/tokens?source=session",
                 "/admin/tokens/new", f"/admin/tokens/{token.id}", f"/admin/tokens/{token.id}/replace",
                 f"/admin/tokens/{token.id}/delete", f"/admin/tokens/{token.id}/created", "/admin/applications",
                 "/admin/applications/new", f"/admin/applications/{app_id}", f"/admin/applications/{app_id}/edit",
                 f"/admin/applications/{app_id}/secret", f"/admin/applications/{app_id}/new-secret",
                 f"/admin/applications/{app_id}/delete", "/admin/users", "/admin/users/new", f"/admin/users/{user.id}",
                 f"/admin/users/{user.id}/edit", f"/admin/users/{user.id}/end-sessions", "/admin/tenants",
                 f"/admin/tenants/{tenant_id}", f"/admin/tenants/{tenant_id}/delete", "/admin/audit",
                 f"/admin/audit?target=access_token:{token.id}"):
        assert admin_client.get(path).status_code == 200, path
