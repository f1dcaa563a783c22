"""Login sessions at the HTTP level (issue 16): what a login records (address, browser,
last use), the Sessions page and its keyset pages, ending one session, logging everyone
out; and the token forms' dates, typed and shown in UTC."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.domain import clock
from portal import create_app, tokens
from portal.admin.queries import session_counts
from portal.extensions import db
from portal.models import AccessToken, AuditEvent, LoginSession, User
from portal.web.user_agents import browser_summary
from tests.conftest import FreshContextClient, base_config, csrf_token_from
from tests.factories import make_user

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/156.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
PASSWORD = "correct horse battery"


@pytest.mark.parametrize("user_agent, summary", [
    (CHROME_LINUX, "Chrome 156 on Linux"),
    (FIREFOX, "Firefox 133 on Windows"),
    (IPHONE, "Mobile Safari 17 on iOS"),
    ("curl/8.5.0", "curl 8"),
    ("something nobody ever sent", "Unknown browser"),
    ("", "No User-Agent"),
])
def test_a_user_agent_in_a_few_words(user_agent, summary):
    assert browser_summary(user_agent) == summary


def log_in(app, username, password=PASSWORD, user_agent=FIREFOX, address="203.0.113.7", headers=None):
    """A client of its own (a browser of its own), logged in as `username`."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": user_agent})
    csrf = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                           headers=headers or {})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def details_of(username) -> list[LoginSession]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(LoginSession).join(AccessToken, AccessToken.id == LoginSession.token_id)
        .join(User, User.id == AccessToken.user_id).where(User.username == username)
        .order_by(AccessToken.id)))


def last_use_of(username):
    """The last use of the user's first login session: its token's."""
    return db.session.get(AccessToken, details_of(username)[0].token_id).last_used_at


def test_a_login_records_address_browser_and_first_use(app, admin_user):
    before = clock.now()
    log_in(app, "admin", user_agent=FIREFOX, address="203.0.113.7")
    [details] = details_of("admin")
    assert (details.address, details.browser, details.user_agent) == ("203.0.113.7", "Firefox 133 on Windows", FIREFOX)
    token = db.session.get(AccessToken, details.token_id)
    assert token.source == "session" and token.last_used_at == token.created_at >= before


@pytest.mark.both_databases  # a column's length, which only PostgreSQL enforces
def test_an_over_long_user_agent_is_kept_to_its_first_512_characters(app, admin_user):
    log_in(app, "admin", user_agent=FIREFOX + " x" * 400)
    [details] = details_of("admin")
    assert details.user_agent == (FIREFOX + " x" * 400)[:512]
    assert details.browser == "Firefox 133 on Windows"


def test_a_user_agent_with_control_characters_is_kept_without_them(app, admin_user):
    client = app.test_client()
    # NUL is refused outright (400), like anywhere in a request
    client.environ_base["HTTP_USER_AGENT"] = "curl/8.5.0\x1b\x07 tail"
    csrf = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 303
    [details] = details_of("admin")
    assert (details.user_agent, details.browser) == ("curl/8.5.0 tail", "curl 8")


def test_the_forwarded_address_counts_only_from_a_trusted_proxy(app, admin_user, tmp_path, monkeypatch):
    log_in(app, "admin", address="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.9"})
    assert [d.address for d in details_of("admin")] == ["127.0.0.1"]  # anyone may send the header

    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    proxied = create_app(base_config(tmp_path / "proxied", app.config["SQLALCHEMY_DATABASE_URI"]))
    proxied.test_client_class = FreshContextClient
    log_in(proxied, "admin", address="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.9"})
    with proxied.app_context():
        db.engine.dispose()
    assert [d.address for d in details_of("admin")] == ["127.0.0.1", "198.51.100.9"]


@pytest.mark.both_databases  # a conditional write that compares times in SQL
def test_last_use_is_written_at_most_once_a_minute(app, admin_user, monkeypatch):
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)  # the login's second is the start's, however slow it is
    client = log_in(app, "admin")
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=30))
    assert client.get("/admin").status_code == 200
    assert last_use_of("admin") == start  # within the minute: nothing written
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=61))
    assert client.get("/admin").status_code == 200
    assert last_use_of("admin") == start + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=100))
    assert client.get("/admin/tokens").status_code == 200
    assert last_use_of("admin") == start + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=125))
    assert client.get("/admin/tokens").status_code == 200
    assert last_use_of("admin") == start + timedelta(seconds=125)


@pytest.mark.both_databases  # a conditional write that compares times in SQL
def test_a_replayed_older_cookie_does_not_write_more_often(app, admin_user, monkeypatch):
    """A client that keeps sending its login cookie (ignoring the updated one) still gets at
    most one write a minute: the row's own time decides."""
    start, name = clock.now(), app.config["SESSION_COOKIE_NAME"]
    monkeypatch.setattr(clock, "now", lambda: start)
    client = log_in(app, "admin")
    login_cookie = client.get_cookie(name).value
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=61))
    assert client.get("/admin").status_code == 200
    assert last_use_of("admin") == start + timedelta(seconds=61)
    client.set_cookie(name, login_cookie)  # says: not written since the login
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=90))
    assert client.get("/admin").status_code == 200
    assert last_use_of("admin") == start + timedelta(seconds=61)


def test_the_sessions_page_lists_live_sessions_with_their_details(app, admin_user):
    admin = log_in(app, "admin", user_agent=CHROME_LINUX, address="192.0.2.1")
    make_user("noor")
    make_user("ola")
    log_in(app, "noor", user_agent=IPHONE, address="192.0.2.44")
    log_in(app, "ola", user_agent=FIREFOX, address="192.0.2.55")
    ola = db.session.scalar(select(User).where(User.username == "ola"))
    ola.active = False  # a deactivated user's sessions are not live
    expired = tokens.create_session_token(make_user("old"), address="192.0.2.66")
    db.session.get(AccessToken, expired.id).expires_at = clock.now() - timedelta(seconds=1)
    db.session.commit()

    page = admin.get("/admin/sessions").get_data(as_text=True)
    assert "2 live login sessions." in page
    assert "Mobile Safari 17 on iOS" in page and "192.0.2.44" in page and ">noor<" in page
    assert "Chrome 156 on Linux" in page and "(this browser)" in page
    assert "192.0.2.55" not in page and "192.0.2.66" not in page
    assert 'href="/admin/sessions"' in admin.get("/admin").get_data(as_text=True)  # in the menu
    user_page = admin.get(f"/admin/users/{db.session.scalar(select(User.id).where(User.username == 'noor'))}")
    assert "Mobile Safari 17 on iOS" in user_page.get_data(as_text=True)


@pytest.mark.both_databases  # counts in SQL
def test_sessions_are_counted_and_shown_grouped_by_user(app, admin_user):
    admin = log_in(app, "admin")
    people = [make_user(f"p{i}") for i in range(3)]
    for person in people:  # 54 + the admin's
        for _ in range(18):
            tokens.create_session_token(person)

    assert session_counts() == (55, 4)
    assert session_counts(cap=20) == (21, 0)

    html = admin.get("/admin/sessions").get_data(as_text=True)
    assert "55 live login sessions." in html and html.count('aria-label="End the session of') == 55
    assert html.count('class="group-head"') == 4 and "18 sessions" in html  # grouped by user


@pytest.mark.both_databases  # keyset on usernames in SQL
def test_sessions_are_grouped_by_user_paged_by_username_and_filtered(app, admin_user):
    """The Sessions page groups by user (20 users a page, by username), each user's newest
    20 sessions shown with their total, and narrows to one user with `user`."""
    admin = log_in(app, "admin")
    people = [make_user(f"u{i:02}") for i in range(22)]
    for person in people:
        tokens.create_session_token(person)
    for _ in range(22):
        tokens.create_session_token(people[0])
    html = admin.get("/admin/sessions").get_data(as_text=True)
    assert html.count('class="group-head"') == 20 and "23 sessions (newest 20 shown)" in html
    assert ">admin<" in html and ">u18<" in html and ">u19<" not in html
    next_url = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert next_url == "/admin/sessions?after=u18"
    following = admin.get(next_url).get_data(as_text=True)
    assert following.count('class="group-head"') == 3 and ">u21<" in following and "First page" in following
    only = admin.get("/admin/sessions?user=u03").get_data(as_text=True)
    assert only.count('class="group-head"') == 1 and ">u03<" in only and "Showing 1 user matching" in only
    none = admin.get("/admin/sessions?user=nobody").get_data(as_text=True)
    assert "No live login session of a user matching" in none
    assert admin.get("/admin/sessions?user=" + "x" * 300).status_code == 400
    assert admin.get("/admin/sessions?after=not-a-cursor").status_code == 200  # the first page


def test_end_one_session_from_the_list(app, admin_user):
    admin = log_in(app, "admin")
    make_user("noor")
    noor = log_in(app, "noor")
    session_id = details_of("noor")[0].token_id
    csrf = csrf_token_from(admin.get("/admin/sessions").get_data(as_text=True))
    assert admin.post(f"/admin/sessions/{session_id}/end").status_code == 400  # no CSRF token
    response = admin.post(f"/admin/sessions/{session_id}/end", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/sessions"
    assert details_of("noor") == []
    assert "/login" in noor.get("/").headers["Location"]
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (event.action, event.actor, event.target_id) == ("token.deleted", "admin", str(session_id))
    assert admin.post(f"/admin/sessions/{session_id}/end", data={"csrf_token": csrf}).status_code == 404
    api_token = tokens.create_token(application=tokens.portal_application(), source="admin", actor="test")
    assert admin.post(f"/admin/sessions/{api_token.id}/end", data={"csrf_token": csrf}).status_code == 404
    assert db.session.get(AccessToken, api_token.id) is not None


def test_ending_my_own_session_logs_me_out(app, admin_user):
    admin = log_in(app, "admin")
    [mine] = details_of("admin")
    csrf = csrf_token_from(admin.get("/admin/sessions").get_data(as_text=True))
    response = admin.post(f"/admin/sessions/{mine.token_id}/end", data={"csrf_token": csrf})
    assert response.headers["Location"] == "/login"
    assert "You ended your own session." in admin.get("/login").get_data(as_text=True)
    assert "/login" in admin.get("/admin").headers["Location"]


def everyone(app):
    """The admin in two browsers, and two users in one each."""
    admin, admin_elsewhere = log_in(app, "admin"), log_in(app, "admin", user_agent=IPHONE)
    make_user("noor")
    make_user("ola")
    return admin, admin_elsewhere, log_in(app, "noor"), log_in(app, "ola")


def test_log_everyone_out_keeps_this_browser_by_default(app, admin_user):
    admin, admin_elsewhere, noor, ola = everyone(app)
    page = admin.get("/admin/sessions/end-all").get_data(as_text=True)
    assert "4 live login sessions</strong> of <strong>3 users" in page
    assert 'class="danger">Log everyone out</button>' in page
    assert admin.post("/admin/sessions/end-all").status_code == 400  # no CSRF token
    response = admin.post("/admin/sessions/end-all", data={"csrf_token": csrf_token_from(page)})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/sessions"
    after = admin.get("/admin/sessions").get_data(as_text=True)
    assert "Logged everyone out: 3 login sessions of 3 users ended. Your session in this browser goes on." in after
    assert "1 live login session." in after
    for other in (admin_elsewhere, noor, ola):
        assert "/login" in other.get("/").headers["Location"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sessions.ended_all"))
    assert event.actor == "admin"
    assert event.details == {"sessions_ended": 3, "users": 3, "own_session_kept": True}


def test_log_everyone_out_and_me_too(app, admin_user):
    admin, *others = everyone(app)
    csrf = csrf_token_from(admin.get("/admin/sessions/end-all").get_data(as_text=True))
    response = admin.post("/admin/sessions/end-all", data={"csrf_token": csrf, "include_me": "y"})
    assert response.headers["Location"] == "/login"
    assert "Logged everyone out, you too: 4 login sessions of 3 users ended." in admin.get("/login").get_data(
        as_text=True)
    for client in (admin, *others):
        assert "/login" in client.get("/").headers["Location"]
    assert session_counts() == (0, 0)


class TestWithoutSessionTokens:
    @pytest.fixture
    def app_config(self):
        return {"SESSION_EXPIRED_CONTROL_ENABLED": False}

    def test_log_everyone_out_still_ends_every_other_session(self, app, admin_user):
        admin, admin_elsewhere, noor, ola = everyone(app)
        page = admin.get("/admin/sessions").get_data(as_text=True)
        assert "Session tokens are off" in page
        confirm = admin.get("/admin/sessions/end-all").get_data(as_text=True)
        assert "ends <strong>every user's login sessions</strong>" in confirm
        admin.post("/admin/sessions/end-all", data={"csrf_token": csrf_token_from(confirm)})
        assert "every user&#39;s login sessions ended" in admin.get("/admin/sessions").get_data(as_text=True)
        for other in (admin_elsewhere, noor, ola):
            assert "/login" in other.get("/").headers["Location"]


# --- the token forms' dates: typed and shown in UTC, year first ---------------------------

def test_the_expiry_fields_are_utc_text(admin_client, setup, csrf):
    html = admin_client.get("/admin/tokens/new").get_data(as_text=True)
    field = html.split('id="expires_at"')[0].rsplit("<input", 1)[1] + html.split('id="expires_at"')[1].split(">")[0]
    assert 'type="text"' in field and 'placeholder="YYYY-MM-DD HH:MM"' in field
    default = (clock.now() + timedelta(seconds=app_expiry(admin_client))).strftime("%Y-%m-%d %H:")
    assert f'value="{default}' in field
    assert "Custom expiry (UTC)" in html  # the setting's default, as text
    assert re.search(r'<input checked[^>]* value="custom"', html), "Custom date is not the chosen expiry"

    response = admin_client.post("/admin/tokens/new", data={
        "csrf_token": csrf(), "application": setup["app"].id, "expires_at": "2031-02-03 04:05",
        "perm-0-tenant": "site1", "perm-0-actions": "READ_TENANT"})
    assert response.status_code == 303, response.get_data(as_text=True)
    token = db.session.scalars(select(AccessToken).where(AccessToken.source == "admin")).one()
    assert token.expires_at == clock.now().replace(year=2031, month=2, day=3, hour=4, minute=5, second=0)

    detail = admin_client.get(f"/admin/tokens/{token.id}").get_data(as_text=True)
    assert "New expiry (UTC)" in detail
    extended = admin_client.post(f"/admin/tokens/{token.id}/extend", data={
        "csrf_token": csrf_token_from(detail), "expires_at": "2032-12-31 23:59"})
    assert extended.status_code == 303
    db.session.expire_all()
    assert db.session.get(AccessToken, token.id).expires_at.strftime("%Y-%m-%d %H:%M") == "2032-12-31 23:59"
    refused = admin_client.post(f"/admin/tokens/{token.id}/extend", data={
        "csrf_token": csrf_token_from(detail), "expires_at": "31/12/2032 11:59 PM"})
    assert refused.status_code == 422 and "Not a valid datetime value." in refused.get_data(as_text=True)


def app_expiry(client) -> int:
    return client.application.config["ACCESS_TOKEN_EXPIRE_SECONDS"]
