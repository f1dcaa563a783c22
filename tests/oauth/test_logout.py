"""RP-Initiated Logout 1.0 at /end_session: a current id_token_hint logs out at once and
goes back to a registered post-logout URI with `state`; a missing or stale hint asks
first (a CSRF-checked form); a hint this server did not sign, or a URI not registered, is
refused without a redirect. The session token goes with the session."""

import html
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AccessToken, Application, AuditEvent
from portal.domain.signing import current_key
from tests.conftest import csrf_token_from
from tests.factories import make_application, make_user
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Flow, query_of

LOGGED_OUT_URI = "https://rp.example/logged-out?from=tessera"


@pytest.fixture
def rp(client, auth, oauth_user):
    """docs/oauth.md's client, with a post-logout redirect URI, logged in with an ID token."""
    application = make_application(name="demo", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                   redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[LOGGED_OUT_URI])
    flow = Flow(client, auth, application, CLIENT_SECRET, oauth_user)
    flow.login()
    flow.id_token = flow.tokens()["id_token"]
    return flow


def session_tokens(user) -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken).where(
        AccessToken.user_id == user.id, AccessToken.source == "session"))


def logged_in_as(client) -> bool:
    return client.get("/").status_code == 200


def end_session(client, method="GET", path="/end_session", **params):
    if method == "GET":
        return client.get(path + "?" + urlencode(params))
    return client.post(path, data=params)


def assert_refused(response, rp):
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "cannot be followed" in response.get_data(as_text=True)
    assert logged_in_as(rp.client) and session_tokens(rp.user) == 1


def test_discovery_names_the_endpoint_and_no_channel_logout(client):
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = client.get(path).get_json()
        assert metadata["end_session_endpoint"] == metadata["issuer"] + "/end_session"
        assert metadata["frontchannel_logout_supported"] is False
        assert metadata["backchannel_logout_supported"] is False


@pytest.mark.parametrize(("method", "path"), [("GET", "/end_session"), ("POST", "/end_session"),
                                              ("GET", "/end_session/")])
def test_a_current_hint_logs_out_at_once_and_returns_with_state(rp, method, path):
    assert session_tokens(rp.user) == 1
    response = end_session(rp.client, method, path, id_token_hint=rp.id_token,
                           post_logout_redirect_uri=LOGGED_OUT_URI, state="s-42")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(LOGGED_OUT_URI + "&")
    assert query_of(location) == {"from": "tessera", "state": "s-42"}
    assert not logged_in_as(rp.client)
    assert session_tokens(rp.user) == 0
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "logout"))
    assert event.actor == rp.user.username


def test_the_client_id_alone_may_name_the_application(rp):
    response = end_session(rp.client, client_id=CLIENT_ID, post_logout_redirect_uri=LOGGED_OUT_URI)
    assert response.status_code == 200  # no hint: asked first
    assert "Sign out of Tessera?" in response.get_data(as_text=True)
    assert logged_in_as(rp.client)


def test_without_a_redirect_uri_the_user_sees_our_signed_out_page(rp):
    response = end_session(rp.client, id_token_hint=rp.id_token)
    assert response.status_code == 200 and "Signed out" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert not logged_in_as(rp.client)


def test_no_hint_asks_and_the_confirmation_needs_its_csrf_token(rp):
    page = end_session(rp.client, client_id=CLIENT_ID, post_logout_redirect_uri=LOGGED_OUT_URI, state="s-1")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="confirm"' in text
    forged = rp.client.post("/end_session", data={"confirm": "yes", "client_id": CLIENT_ID})
    assert forged.status_code == 400 and logged_in_as(rp.client)
    response = rp.client.post("/end_session", data={
        "confirm": "yes", "csrf_token": csrf_token_from(text), "client_id": CLIENT_ID,
        "post_logout_redirect_uri": LOGGED_OUT_URI, "state": "s-1"})
    assert response.status_code == 303
    assert query_of(response.headers["Location"])["state"] == "s-1"
    assert not logged_in_as(rp.client) and session_tokens(rp.user) == 0


def test_a_hint_for_another_user_asks_first(rp):
    other = make_user(username="bob")
    rp.login(other)  # this browser now belongs to bob; rp.id_token is alice's
    response = end_session(rp.client, id_token_hint=rp.id_token, post_logout_redirect_uri=LOGGED_OUT_URI)
    assert response.status_code == 200 and "Sign out of Tessera?" in response.get_data(as_text=True)
    assert logged_in_as(rp.client)


def test_a_hint_from_an_earlier_session_asks_first(rp, move_clock):
    move_clock(5)
    rp.login()  # a new session, after the hint was issued
    response = end_session(rp.client, id_token_hint=rp.id_token, post_logout_redirect_uri=LOGGED_OUT_URI)
    assert response.status_code == 200 and "Sign out of Tessera?" in response.get_data(as_text=True)


def test_an_expired_hint_of_this_session_still_logs_out(rp, move_clock):
    move_clock(7200)  # past the ID token's exp, within the session's life
    response = end_session(rp.client, id_token_hint=rp.id_token, post_logout_redirect_uri=LOGGED_OUT_URI)
    assert response.status_code == 303 and not logged_in_as(rp.client)


def test_a_post_without_a_session_is_sent_on_as_a_get(client, oauth_user):
    make_application(name="demo", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI],
                     post_logout_redirect_uris=[LOGGED_OUT_URI])
    params = {"client_id": CLIENT_ID, "post_logout_redirect_uri": LOGGED_OUT_URI, "state": "x"}
    response = client.post("/end_session", data=params)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/end_session?")
    assert query_of(response.headers["Location"]) == params


def test_without_a_session_it_just_returns(client, auth, oauth_user):
    make_application(name="demo", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI],
                     post_logout_redirect_uris=[LOGGED_OUT_URI])
    response = end_session(client, client_id=CLIENT_ID, post_logout_redirect_uri=LOGGED_OUT_URI, state="x")
    assert response.status_code == 303 and query_of(response.headers["Location"])["state"] == "x"


@pytest.mark.parametrize("uri", [LOGGED_OUT_URI + "&x=1", "https://rp.example/logged-out", REDIRECT_URI,
                                 "https://evil.example/"])
def test_an_unregistered_post_logout_uri_is_refused(rp, uri):
    assert_refused(end_session(rp.client, id_token_hint=rp.id_token, post_logout_redirect_uri=uri), rp)


def test_a_redirect_uri_without_any_client_is_refused(rp):
    assert_refused(end_session(rp.client, post_logout_redirect_uri=LOGGED_OUT_URI), rp)


def test_a_client_id_that_is_not_the_hints_audience_is_refused(rp):
    make_application(name="other", client_id="other-client", redirect_uris=[REDIRECT_URI],
                     post_logout_redirect_uris=[LOGGED_OUT_URI])
    assert_refused(end_session(rp.client, id_token_hint=rp.id_token, client_id="other-client",
                               post_logout_redirect_uri=LOGGED_OUT_URI), rp)


def forged_hint(rp, key, **claims) -> str:
    now = int(time.time())
    payload = {"iss": "http://localhost", "sub": rp.user.sub, "aud": CLIENT_ID, "iat": now, "exp": now + 600}
    payload.update(claims)
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def test_a_hint_signed_by_another_key_is_refused(rp):
    stranger = RSAKey.generate_key(2048, parameters={"kid": current_key().kid})  # even with our kid
    assert_refused(end_session(rp.client, id_token_hint=forged_hint(rp, stranger),
                               post_logout_redirect_uri=LOGGED_OUT_URI), rp)


def test_a_hint_from_another_issuer_is_refused(rp):
    hint = forged_hint(rp, current_key(), iss="https://other-issuer.example")
    assert_refused(end_session(rp.client, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT_URI), rp)


@pytest.mark.parametrize("resource", [None, "https://api.example/"])
def test_a_jwt_access_token_is_no_hint(app, rp, resource):
    """A resource server holds the user's JWT access token, signed with the ID tokens' key:
    it must not log the user out with it."""
    app.config["ACCESS_TOKEN_FORMAT"] = "jwt"
    rp.application.resources = [resource] if resource else []
    db.session.commit()
    access_token = rp.tokens(resource=resource)["access_token"]
    assert jwt.decode(access_token, current_key()).header["typ"] == "at+jwt"
    assert_refused(end_session(rp.client, id_token_hint=access_token, post_logout_redirect_uri=LOGGED_OUT_URI), rp)
    assert_refused(end_session(rp.client, id_token_hint=access_token), rp)


@pytest.mark.parametrize("change", [{"typ": "at+jwt"}, {"at_hash": None}, {"aud": "https://api.example/"},
                                    {"aud": [CLIENT_ID, "nobody"]}, {"aud": []}])
def test_a_signed_token_without_the_id_token_shape_is_no_hint(rp, change):
    """Signed with our key, issued here, for this user and session: still refused when it
    is not shaped as our ID tokens are."""
    claims = {**jwt.decode(rp.id_token, current_key()).claims, **change}
    header = {"alg": "RS256", "kid": current_key().kid, "typ": claims.pop("typ", "JWT")}
    hint = jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, current_key(), default_type=None)
    assert_refused(end_session(rp.client, id_token_hint=hint), rp)
    resigned = jwt.encode({"alg": "RS256", "kid": current_key().kid}, jwt.decode(rp.id_token, current_key()).claims,
                          current_key())
    assert end_session(rp.client, id_token_hint=resigned).status_code == 200  # the shape itself is accepted
    assert not logged_in_as(rp.client)


@pytest.mark.parametrize("hint", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "tampered"])
def test_a_malformed_or_tampered_hint_is_refused(rp, hint):
    if hint == "tampered":
        header, payload, signature = rp.id_token.split(".")
        hint = ".".join([header, payload, signature[::-1]])
    assert_refused(end_session(rp.client, id_token_hint=hint), rp)


def test_unknown_client_id_is_refused(rp):
    assert_refused(end_session(rp.client, client_id="nobody"), rp)


# --- registering post-logout redirect URIs ------------------------------------------------

def test_the_cli_registers_post_logout_uris(app, runner):
    result = runner.invoke(args=["create-application", "spa", "--public", "--redirect-uri", "https://spa.example/cb",
                                 "--post-logout-redirect-uri", "https://spa.example/bye",
                                 "--post-logout-redirect-uri", "https://spa.example/bye?again=1"])
    assert result.exit_code == 0, result.output
    application = db.session.scalar(select(Application).where(Application.name == "spa"))
    assert application.post_logout_redirect_uris == ["https://spa.example/bye", "https://spa.example/bye?again=1"]


@pytest.mark.parametrize("uri", ["https://spa.example/bye#frag", "/bye", "javascript:alert(1)",
                                 "https://*.spa.example/bye"])
def test_the_cli_refuses_a_bad_post_logout_uri(app, runner, uri):
    result = runner.invoke(args=["create-application", "spa", "--redirect-uri", "https://spa.example/cb",
                                 "--post-logout-redirect-uri", uri])
    assert result.exit_code != 0
    assert repr(uri) in result.output
    assert db.session.scalar(select(func.count()).select_from(Application).where(Application.name == "spa")) == 0


def test_the_admin_form_edits_post_logout_uris(admin_client):
    application = make_application(name="shop", redirect_uris=["https://shop.example/cb"])
    path = f"/admin/applications/{application.id}/edit"
    page = admin_client.get(path).get_data(as_text=True)
    assert 'name="post_logout_redirect_uris"' in page
    form = {"csrf_token": csrf_token_from(page), "name": "shop", "redirect_uris": "https://shop.example/cb",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": "openid", "post_logout_redirect_uris": "https://shop.example/bye\nhttps://shop.example/bye2"}
    response = admin_client.post(path, data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Application, application.id).post_logout_redirect_uris == [
        "https://shop.example/bye", "https://shop.example/bye2"]
    detail = admin_client.get(f"/admin/applications/{application.id}").get_data(as_text=True)
    assert "https://shop.example/bye2" in detail
    refused = admin_client.post(path, data={**form, "post_logout_redirect_uris": "https://shop.example/#x"})
    assert refused.status_code == 422 and "has a fragment" in refused.get_data(as_text=True)


# --- a real browser: requests posted from the application's own page (another site) -------

RP_SITE = "http://rp.example"


@pytest.fixture(scope="module")
def browser_rp(live_server):
    suffix = uuid.uuid4().hex[:6]
    rp = {"username": f"eve{suffix}", "password": "eve's long password", "client_id": f"web{suffix}",
          "secret": f"secret-{suffix}-0123456789abcdef"}
    live_server.cli_many(
        (("create-user", rp["username"], "--email", f"{rp['username']}@example.org", "--password-stdin"),
         rp["password"] + "\n"),
        ("create-application", f"Web {suffix}", "--client-id", rp["client_id"], "--client-secret", rp["secret"],
         "--redirect-uri", RP_SITE + "/callback", "--post-logout-redirect-uri", RP_SITE + "/logged-out"))
    return rp


def posting_page(action: str, fields: dict) -> str:
    """The application's page: a form that posts itself to Tessera at once."""
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return f'<form method="post" action="{action}">{inputs}</form><script>document.forms[0].submit()</script>'


def test_requests_posted_from_another_site_see_the_session(live_server, browser_rp, page):
    """The session cookie is SameSite=Lax, so Chromium leaves it off a POST from another
    site: /authorize and /end_session send such a request on as a GET, which has it."""
    pages = {}
    page.route(RP_SITE + "/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=pages.get(route.request.url.split("?")[0], "<p>the app</p>")))
    params = {"client_id": browser_rp["client_id"], "redirect_uri": RP_SITE + "/callback", "response_type": "code",
              "scope": "openid profile", "state": "s1"}
    page.goto(live_server.url + "/authorize?" + urlencode(params))
    page.get_by_label("Username").fill(browser_rp["username"])
    page.get_by_label("Password").fill(browser_rp["password"])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(RP_SITE + "/callback?**")
    tokens = requests.post(live_server.url + "/token", data={
        "grant_type": "authorization_code", "code": query_of(page.url)["code"], "redirect_uri": RP_SITE + "/callback",
        "client_id": browser_rp["client_id"], "client_secret": browser_rp["secret"]}, timeout=30).json()

    # Silent login by POST: the user is signed in, so a code comes back, not login_required.
    pages[RP_SITE + "/silent"] = posting_page(live_server.url + "/authorize", {**params, "prompt": "none",
                                                                                "state": "s2"})
    page.goto(RP_SITE + "/silent")
    page.wait_for_url(RP_SITE + "/callback?**")
    answer = query_of(page.url)
    assert answer["state"] == "s2" and "code" in answer and answer["iss"] == live_server.url, answer

    pages[RP_SITE + "/logout"] = posting_page(live_server.url + "/end_session", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": RP_SITE + "/logged-out", "state": "bye"})
    page.goto(RP_SITE + "/logout")
    page.wait_for_url(RP_SITE + "/logged-out?**")
    assert query_of(page.url) == {"state": "bye"}
    page.goto(live_server.url + "/")
    assert "/login" in page.url  # the Tessera session in this browser is over
