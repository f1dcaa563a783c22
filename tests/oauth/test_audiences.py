"""RFC 8707 resource indicators: a client registered with the resource servers it may ask
tokens for asks with `resource`; the token's audience is that URI (`aud` of a JWT access
token, RFC 9068, and of introspection); anything else is `invalid_target`. Tokens are
checked the way a resource server that is not Authlib checks them: PyJWT against /jwks."""

import json
from urllib.parse import urlencode

import jwt
import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AccessToken, Application, AuthorizationCode
from tests.conftest import csrf_token_from
from tests.factories import make_application
from tests.oauth.conftest import CLIENT_SECRET, REDIRECT_URI, Flow, query_of

API = "https://api.example/"
OTHER = "https://other.example/"
UNREGISTERED = "https://unregistered.example/"


@pytest.fixture
def api_flow(client, auth, oauth_user):
    """A confidential client registered for two resource servers, and every grant."""
    application = make_application(
        name="api-client", client_id="api-client", client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token", "client_credentials"], scope="openid email profile api",
        resources=[API, OTHER])
    flow = Flow(client, auth, application, CLIENT_SECRET, oauth_user)
    flow.login()
    return flow


@pytest.fixture
def jwt_format(app):
    app.config["ACCESS_TOKEN_FORMAT"] = "jwt"


def client_credentials(flow, **extra):
    return flow.client.post("/token", data={"grant_type": "client_credentials", "scope": "api", **extra},
                            auth=(flow.client_id, flow.secret))


def resource_server_claims(flow, access_token, audience):
    """What a resource server using PyJWT accepts: signature by a key in /jwks, and `aud`."""
    keys = {key["kid"]: key for key in flow.client.get("/jwks").get_json()["keys"]}
    key = jwt.PyJWK(keys[jwt.get_unverified_header(access_token)["kid"]]).key
    return jwt.decode(access_token, key, algorithms=["RS256"], audience=audience)


def test_a_jwt_access_token_for_a_resource_is_refused_by_another_resource_server(api_flow, jwt_format):
    token = api_flow.tokens(resource=API)
    claims = resource_server_claims(api_flow, token["access_token"], API)
    assert claims["aud"] == API and claims["client_id"] == "api-client"
    with pytest.raises(jwt.InvalidAudienceError):
        resource_server_claims(api_flow, token["access_token"], OTHER)
    # the ID token is still for the client (OIDC Core §2), not for the resource server
    assert jwt.decode(token["id_token"], options={"verify_signature": False})["aud"] == ["api-client"]


def test_the_audience_holds_through_refresh_and_client_credentials(api_flow, jwt_format):
    token = api_flow.tokens(resource=API)
    refreshed = api_flow.refresh(token["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    assert resource_server_claims(api_flow, refreshed.get_json()["access_token"], API)["aud"] == API

    # a grant for two resources: each refresh may narrow to either, and without `resource`
    # gets both again (RFC 8707 §2.2: the refresh token stays the grant's)
    token = api_flow.tokens(resource=[API, OTHER])
    assert resource_server_claims(api_flow, token["access_token"], API)["aud"] == [API, OTHER]
    narrowed = api_flow.refresh(token["refresh_token"], resource=API)
    assert resource_server_claims(api_flow, narrowed.get_json()["access_token"], API)["aud"] == API
    other = api_flow.refresh(narrowed.get_json()["refresh_token"], resource=OTHER)
    assert resource_server_claims(api_flow, other.get_json()["access_token"], OTHER)["aud"] == OTHER
    both = api_flow.refresh(other.get_json()["refresh_token"])
    assert resource_server_claims(api_flow, both.get_json()["access_token"], OTHER)["aud"] == [API, OTHER]

    response = client_credentials(api_flow, resource=API)
    assert response.status_code == 200, response.get_json()
    assert resource_server_claims(api_flow, response.get_json()["access_token"], API)["aud"] == API
    both = api_flow.client.post("/token", data={"grant_type": "client_credentials", "resource": [API, OTHER]},
                            auth=(api_flow.client_id, api_flow.secret))
    assert both.status_code == 200, both.get_json()
    assert resource_server_claims(api_flow, both.get_json()["access_token"], OTHER)["aud"] == [API, OTHER]


def test_without_a_resource_the_audience_is_the_client_as_before(api_flow, jwt_format):
    token = api_flow.tokens()
    assert resource_server_claims(api_flow, token["access_token"], "api-client")["aud"] == "api-client"
    with pytest.raises(jwt.InvalidAudienceError):
        resource_server_claims(api_flow, token["access_token"], API)


@pytest.mark.token_format
def test_introspection_shows_the_audience(api_flow):
    token = api_flow.tokens(resource=API)
    assert api_flow.introspect(token["access_token"]).get_json()["aud"] == API
    plain = client_credentials(api_flow).get_json()["access_token"]
    assert api_flow.introspect(plain).get_json()["aud"] == "api-client"
    stored = db.session.scalars(select(AccessToken.audience).where(AccessToken.source != "session")
                                .order_by(AccessToken.id)).all()
    assert stored == [API, None]


def test_an_unregistered_resource_at_authorize_is_invalid_target_at_the_redirect_uri(api_flow):
    response = api_flow.authorize(resource=UNREGISTERED)
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert query["error"] == "invalid_target" and query["state"] == "123123" and "code" not in query
    assert UNREGISTERED in query["error_description"]
    assert db.session.scalar(select(func.count()).select_from(AuthorizationCode)) == 0


@pytest.mark.token_format
def test_an_unregistered_resource_at_token_is_invalid_target_and_issues_nothing(api_flow):
    response = client_credentials(api_flow, resource=UNREGISTERED)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    # a code asked for one resource cannot be exchanged for another, even a registered one
    code = api_flow.code(resource=API)
    response = api_flow.token(code, resource=OTHER)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    token = api_flow.tokens()
    response = api_flow.refresh(token["refresh_token"], resource=UNREGISTERED)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    issued = select(func.count()).select_from(AccessToken).where(AccessToken.source != "session")
    assert db.session.scalar(issued) == 1  # the one from tokens()


@pytest.mark.token_format
def test_a_resource_taken_off_the_client_is_not_refreshed(api_flow):
    token = api_flow.tokens(resource=[API, OTHER])
    api_flow.application.resources = [OTHER]
    db.session.commit()
    response = api_flow.refresh(token["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    refreshed = api_flow.refresh(token["refresh_token"], resource=OTHER)  # the refresh token was not used up
    assert refreshed.status_code == 200 and api_flow.introspect(refreshed.get_json()["access_token"]).get_json()[
        "aud"] == OTHER


def test_a_client_registered_for_no_resource_may_ask_for_none(logged_in):
    code = logged_in.code()
    response = logged_in.token(code, resource=API)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


def test_the_cli_registers_resources_and_refuses_bad_ones(app, runner):
    result = runner.invoke(args=["create-application", "reports", "--grant-type", "client_credentials",
                                 "--resource", API, "--resource", " " + OTHER])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.output)["client_id"]
    assert db.session.scalar(select(Application.resources).where(Application.client_id == client_id)) == [API, OTHER]
    for bad, message in [("/relative", "not an absolute URI"), ("https://api.example/#x", "has a fragment")]:
        result = runner.invoke(args=["create-application", "bad", "--grant-type", "client_credentials",
                                     "--resource", bad])
        assert result.exit_code != 0 and message in result.output
    assert db.session.scalar(select(func.count()).select_from(Application).where(Application.name == "bad")) == 0


def test_the_admin_form_registers_and_edits_resources(admin_client):
    page = admin_client.get("/admin/applications/new").get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(page), "name": "reports", "client_type": "confidential",
            "redirect_uris": "", "grant_types": ["client_credentials"], "scope": "api",
            "token_endpoint_auth_method": "", "client_id": "reports", "description": "",
            "resources": f"{API}\n{OTHER}\n"}
    assert admin_client.post("/admin/applications/new", data=data).status_code == 303
    application = db.session.scalar(select(Application).where(Application.client_id == "reports"))
    assert application.resources == [API, OTHER]
    detail = admin_client.get(f"/admin/applications/{application.id}").get_data(as_text=True)
    assert f"<code>{API}</code>" in detail
    edit = f"/admin/applications/{application.id}/edit"
    form = admin_client.get(edit).get_data(as_text=True)
    assert OTHER in form
    data.update(csrf_token=csrf_token_from(form), resources="https://api.example/#fragment")
    response = admin_client.post(edit, data=data)
    assert response.status_code == 422 and "has a fragment" in response.get_data(as_text=True)
    data["resources"] = API
    assert admin_client.post(edit, data=data).status_code == 303
    db.session.expire_all()
    assert db.session.get(Application, application.id).resources == [API]


def test_the_consent_page_names_the_resource_servers_asked_for(api_flow):
    query = urlencode(api_flow.params(resource=[API, OTHER]), doseq=True)
    page = api_flow.client.get("/authorize?" + query).get_data(as_text=True)
    assert "Its access will be for:" in page
    assert f"<code>{API}</code>" in page and f"<code>{OTHER}</code>" in page
    plain = api_flow.authorize().get_data(as_text=True)
    assert "consent-scopes" in plain and "Its access will be for:" not in plain
