"""Consent per scope and resource (issue 22, point 9): a consent covers an authorization
request only when both its scopes and its resources (RFC 8707) are within what the user
granted; a code, and every refresh after it, is limited to the resources asked for at
/authorize (a refresh narrows the audience, never widens it); consents given before this
rule (no specific resource) keep covering requests that name none."""

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AccessToken, Consent
from portal.oauth.views import consent_covers
from tests.factories import make_application
from tests.oauth.conftest import CLIENT_SECRET, REDIRECT_URI, Flow, query_of
from tests.test_migration_data import empty_database_url, fill_every_table, migrating_app  # noqa: F401 (fixture)

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

API = "https://api.example/"
BILLING = "https://billing.example/"


@pytest.fixture
def flow(client, auth, oauth_user):
    application = make_application(
        name="two-apis", client_id="two-apis", client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"], scope="openid email profile", resources=[API, BILLING])
    flow = Flow(client, auth, application, CLIENT_SECRET, oauth_user)
    flow.login()
    return flow


def asks_consent(flow, **request) -> bool:
    """Whether /authorize shows the consent page (True) or sends a code at once (False)."""
    response = flow.authorize(**request)
    if response.status_code == 200:
        assert 'class="consent-form"' in response.get_data(as_text=True)
        return True
    assert response.status_code == 302 and "code" in query_of(response.headers["Location"]), response.headers
    return False


def consent_to(flow, **request) -> None:
    page = flow.authorize(**request)
    assert page.status_code == 200
    assert flow.consent(page).status_code == 302


def issued_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AccessToken).where(AccessToken.source != "session"))


def test_consent_for_one_resource_does_not_cover_another(flow):
    consent_to(flow, resource=BILLING)
    assert asks_consent(flow, resource=API)
    response = flow.authorize(resource=API, prompt="none")
    assert response.status_code == 302 and query_of(response.headers["Location"])["error"] == "consent_required"
    assert not asks_consent(flow, resource=BILLING)


@pytest.mark.both_databases  # consents kept in a JSON column, rewritten as they grow
def test_a_consent_covers_a_request_only_within_both_its_scopes_and_its_resources(flow):
    consent_to(flow, resource=API, scope="openid email")
    consent_to(flow, resource=BILLING, scope="openid")
    assert not asks_consent(flow, resource=API, scope="openid email")
    assert not asks_consent(flow, resource=[API, BILLING], scope="openid")
    assert asks_consent(flow, resource=BILLING, scope="openid email")  # email was granted for API only
    assert asks_consent(flow, resource=[API, BILLING], scope="openid email")
    assert asks_consent(flow, resource=API, scope="openid profile")


def test_tokens_for_no_resource_and_for_a_resource_are_consented_apart(flow):
    consent_to(flow)
    assert asks_consent(flow, resource=API)
    consent_to(flow, resource=API)
    assert not asks_consent(flow) and not asks_consent(flow, resource=API)
    consent = db.session.scalar(select(Consent))
    assert consent.scope == "openid email profile" and consent.resource_scopes == {API: "openid email profile"}


def test_a_refresh_narrows_the_audience_but_never_widens_it(flow):
    token = flow.tokens(resource=API)
    before = issued_count()
    response = flow.refresh(token["refresh_token"], resource=BILLING)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    assert BILLING in response.get_json()["error_description"] and issued_count() == before
    kept = flow.refresh(token["refresh_token"])  # the refresh token was not used up
    assert kept.status_code == 200 and flow.introspect(kept.get_json()["access_token"]).get_json()["aud"] == API

    both = flow.tokens(resource=[API, BILLING])
    narrowed = flow.refresh(both["refresh_token"], resource=BILLING)
    assert flow.introspect(narrowed.get_json()["access_token"]).get_json()["aud"] == BILLING
    again = flow.refresh(narrowed.get_json()["refresh_token"])  # without resource: the grant's audience
    assert flow.introspect(again.get_json()["access_token"]).get_json()["aud"] == [API, BILLING]


def test_a_code_for_no_resource_is_not_exchanged_for_one(flow):
    code = flow.code()
    response = flow.token(code, resource=API)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    token = flow.tokens()
    response = flow.refresh(token["refresh_token"], resource=API)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_upgrade_keeps_every_consent_for_requests_without_a_resource(empty_database_url, tmp_path):
    app = migrating_app(empty_database_url, tmp_path)
    with app.app_context():
        try:
            upgrade(revision="a8d0f2b4c6e8")
            with db.engine.begin() as connection:
                before = fill_every_table(connection)
            upgrade()
            consents = db.session.scalars(select(Consent).order_by(Consent.id)).all()
            assert [(c.id, c.scope) for c in consents] == [(row["id"], row["scope"]) for row in before["consents"]]
            for consent in consents:
                assert consent.resource_scopes == {}
                assert consent_covers(consent, consent.scope, [])
                assert not consent_covers(consent, consent.scope, [API])
            refreshable = {row["id"]: row["audience"] for row in before["access_tokens"]
                           if row["refresh_token_hash"] is not None}
            granted = db.session.execute(select(AccessToken.id, AccessToken.granted_resources)
                                         .where(AccessToken.id.in_(refreshable)))
            assert refreshable and dict(granted.all()) == refreshable
        finally:
            db.session.remove()
            db.engine.dispose()
