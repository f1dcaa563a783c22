"""No cache keeps an answer to a request that carried credentials: logged-in portal
pages, API reads, /userinfo, the /authorize redirect with a code (issue 13)."""

import pytest

from tests.api.conftest import bearer
from tests.factories import make_tenant, make_token


def test_logged_in_pages_are_no_store_but_static_files_and_public_metadata_are_not(admin_client):
    assert admin_client.get("/admin").headers["Cache-Control"] == "no-store"
    assert admin_client.get("/admin/tokens").headers["Cache-Control"] == "no-store"
    css = admin_client.get("/static/css/tessera.css")
    assert "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


def test_anonymous_public_answers_keep_their_own_caching(client):
    assert client.get("/jwks").headers["Cache-Control"] == "public, max-age=300"
    assert "Cache-Control" not in client.get("/login").headers


@pytest.mark.token_format
def test_api_reads_with_a_token_are_no_store(client, app):
    make_tenant("site1")
    value = make_token(tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    assert client.get("/api/v1/tenants/site1", headers=bearer(value)).headers["Cache-Control"] == "no-store"
    assert client.get(f"/api/v1/tenants/site1?access_token={value}").headers["Cache-Control"] == "no-store"


def test_the_authorize_redirect_with_a_code_is_no_store(logged_in):
    first = logged_in.authorize()
    redirect = logged_in.consent(first)
    assert "code=" in redirect.headers["Location"] and redirect.headers["Cache-Control"] == "no-store"
    again = logged_in.authorize()  # consent remembered: straight to the redirect
    assert "code=" in again.headers["Location"] and again.headers["Cache-Control"] == "no-store"
