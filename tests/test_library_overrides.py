"""Each place Tessera overrides or patches a library, checked against the library as
installed, so an upgrade that moves what we lean on fails here by name instead of
silently (issue 14). The gunicorn error-page patch is checked live in tests/test_live.py
(test_requests_gunicorn_refuses_itself_get_json_errors_and_no_secret_in_the_log)."""

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from flask import request
from portal import hook_owner
from portal.extensions import login_manager
from portal.oauth.server import TesseraOAuth2Request
from tests.api.conftest import bearer
from tests.conftest import csrf_token_from
from tests.factories import make_tenant, make_token


def test_the_login_hooks_run_for_the_login_blueprint_only(app):
    """create_app takes Flask-Login's per-request hooks off every other route
    (confine_login_hooks): they are found by their owner, and none is left app-wide."""
    app_wide = app.after_request_funcs.get(None, []) + app.teardown_request_funcs.get(None, [])
    assert not [hook for hook in app_wide if hook_owner(hook) is login_manager]
    confined = app.after_request_funcs.get("auth", []) + app.teardown_request_funcs.get("auth", [])
    assert {hook_owner(hook) for hook in confined} == {login_manager}


def test_our_oauth_request_has_what_authlibs_has(app):
    """TesseraOAuth2Request builds `uri` itself and skips FlaskOAuth2Request.__init__: it
    must end with the same attributes and the same values."""
    with app.test_request_context("/token?x=1", method="POST", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": "Basic YTpi"}):
        ours, theirs = TesseraOAuth2Request(request), FlaskOAuth2Request(request)
        assert set(vars(ours)) == set(vars(theirs))
        for name in vars(theirs):
            if name not in ("payload", "_request"):
                assert getattr(ours, name) == getattr(theirs, name), name
        assert ours.payload.data == theirs.payload.data and ours.payload.grant_type == "client_credentials"
        assert ours.uri == request.url


def test_spectree_still_validates_queries_and_bodies_through_our_plugin(client, app):
    """TesseraFlaskPlugin skips the request pass on views with no query or body model."""
    make_tenant("site1")
    value = make_token(master=True, tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    assert client.get("/api/v1/tenants?limit=0", headers=bearer(value)).status_code == 422
    assert client.post("/api/v1/tenants", json={"name": "x", "nope": 1}, headers=bearer(value)).status_code == 422
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200


def test_the_same_origin_check_runs_after_flask_wtf_accepted_the_token(app, client):
    """SameOriginCSRFProtect.protect runs CSRFProtect.protect, then checks the origin only
    when Flask-WTF set its g.csrf_valid flag: a valid token from another site must still be
    refused (were the flag renamed, this would pass the request)."""
    assert app.config["WTF_CSRF_SSL_STRICT"] is False  # replaced by our check
    token = csrf_token_from(client.get("/login", base_url="https://example.org").get_data(as_text=True))
    response = client.post("/login", base_url="https://example.org", headers={"Sec-Fetch-Site": "cross-site"},
                           data={"csrf_token": token, "username": "x", "password": "y"})
    assert response.status_code == 400 and "another site" in response.get_data(as_text=True)


def test_a_request_without_the_session_cookie_gets_an_empty_session_and_a_logged_in_one_its_own(client, auth,
                                                                                              admin_user):
    """CookieSessionInterface short-cuts open_session when there is no cookie."""
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert auth.login().status_code == 303
    assert client.get("/admin").status_code == 200
