"""Crafter Profile's v1 access-token API, sent what Crafter's clients send (the caller's
token as the `accessTokenId` query parameter, JSON bodies), on SQLite and PostgreSQL; and
once against a live gunicorn, whose logs must not hold a token value from a path."""

import http.client
import time
from datetime import datetime, timedelta

import pytest
import requests

from portal.domain import audit, clock
from portal import tokens
from portal.extensions import db
from portal.models import AccessToken, AuditEvent
from tests.factories import make_application, make_tenant, make_token, make_user

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = pytest.mark.token_format

BASE = "/crafter-profile/api/1/access_token"
DAY_MS = 86400 * 1000
EPOCH = datetime(1970, 1, 1)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def engine_app(app):
    make_tenant("site1")
    make_tenant("site2")
    return make_application("crafterengine")


@pytest.fixture
def token_for(engine_app):
    """token_for(("site1", ["READ_TENANT"]), master=True) -> value"""

    def make(*entries, master=False, **overrides) -> str:
        permissions = [{"tenant": tenant, "actions": list(actions)} for tenant, actions in entries]
        return make_token(application=engine_app, master=master, tenant_permissions=permissions, **overrides).value

    return make


@pytest.fixture
def master(token_for) -> str:
    return token_for(("*", ["*"]), master=True)


def create(client, caller, body, **kwargs):
    return client.post(f"{BASE}/create?accessTokenId={caller}", json=body, **kwargs)


def crafter_body(expires_on=None, **overrides) -> dict:
    """An AccessToken as Crafter's Java client serialises it (Jackson writes the null id too)."""
    body = {"id": None, "application": "crafterengine", "master": False,
            "tenantPermissions": [{"tenant": "site1", "allowedActions": ["READ_TENANT", "MANAGE_PROFILES"]}],
            "expiresOn": expires_on or now_ms() + DAY_MS}
    body.update(overrides)
    return body


# --- create, all, get, delete --------------------------------------------------------------

def test_create_answers_the_token_with_its_value_as_id(client, master):
    expires_on = now_ms() + DAY_MS
    response = create(client, master, crafter_body(expires_on))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    value = body.pop("id")
    assert body == {"application": "crafterengine", "master": False,
                    "tenantPermissions": [{"tenant": "site1", "allowedActions": ["READ_TENANT", "MANAGE_PROFILES"]}],
                    "expiresOn": expires_on // 1000 * 1000}  # Tessera keeps whole seconds
    stored = tokens.find_by_value(value)
    assert stored.source == "api" and stored.token_hash == tokens.hash_value(value)
    assert stored.expires_at == (EPOCH + timedelta(milliseconds=expires_on)).replace(microsecond=0)
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "token.created")
                              .order_by(AuditEvent.id.desc()))
    assert event.actor == f"token {tokens.hint_for(master)} (crafterengine)"
    # The new value works at once, for what it was given, as Crafter Engine sends it.
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={value}").status_code == 200
    assert client.get(f"/api/v1/tenants/site2?accessTokenId={value}").status_code == 403


def test_create_without_expiry_permissions_or_master_uses_defaults(client, master, app):
    response = create(client, master, {"application": "crafterengine"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["master"] is False and body["tenantPermissions"] == []
    lifetime = body["expiresOn"] / 1000 - time.time()
    assert abs(lifetime - app.config["ACCESS_TOKEN_EXPIRE_SECONDS"]) < 60
    assert create(client, master, {"application": "crafterengine", "master": None}).get_json()["master"] is False
    anywhere = create(client, master, {"application": "crafterengine", "master": True,
                                       "tenantPermissions": [{"allowedActions": ["*"]}]}).get_json()
    assert anywhere["master"] is True and anywhere["tenantPermissions"] == [{"tenant": "*", "allowedActions": ["*"]}]


@pytest.mark.both_databases  # the reach rule as SQL
def test_all_lists_the_tokens_the_master_token_reaches_without_values(client, master, token_for, engine_app):
    site1 = token_for(("site1", ["READ_TENANT"]), expires_in=3600)
    token_for(("site2", ["READ_TENANT"]))
    revoked = token_for(("site1", ["READ_TENANT"]))
    tokens.revoke(tokens.find_by_value(revoked), actor="test")
    make_user("carol")  # a login-session token is no Crafter access token
    response = client.get(f"{BASE}/all?accessTokenId={master}")
    assert response.status_code == 200
    listed = response.get_json()
    assert len(listed) == 3  # master, site1, site2; not the revoked one
    assert all(entry["id"] is None for entry in listed)
    assert {"application": "crafterengine", "master": False, "id": None,
            "tenantPermissions": [{"tenant": "site1", "allowedActions": ["READ_TENANT"]}],
            "expiresOn": (tokens.find_by_value(site1).expires_at - EPOCH) // timedelta(milliseconds=1)} in listed
    # A master token narrower than another token's permissions does not see that token.
    narrow = token_for(("site1", ["*"]), master=True)
    seen = client.get(f"{BASE}/all?accessTokenId={narrow}").get_json()
    assert [entry["tenantPermissions"] for entry in seen] == [
        [{"tenant": "site1", "allowedActions": ["READ_TENANT"]}], [{"tenant": "site1", "allowedActions": ["*"]}]]


def test_get_by_value(client, master, token_for):
    value = token_for(("site2", ["MANAGE_TICKETS"]))
    response = client.get(f"{BASE}/{value}?accessTokenId={master}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["id"] == value and body["tenantPermissions"] == [{"tenant": "site2",
                                                                 "allowedActions": ["MANAGE_TICKETS"]}]
    # As in Crafter: an unknown id reads as null; so does a revoked token (Crafter never revokes).
    response = client.get(f"{BASE}/tsr_no_such_token_00000000000?accessTokenId={master}")
    assert response.status_code == 200 and response.is_json and response.get_json() is None
    tokens.revoke(tokens.find_by_value(value), actor="test")
    assert client.get(f"{BASE}/{value}?accessTokenId={master}").get_json() is None


def test_values_with_slashes_and_reserved_characters_work_in_the_path(client, master, engine_app):
    value = "legacy/crafter?token#with%odd+chars"
    make_token(application=engine_app, value=value, tenant_permissions=[{"tenant": "site1", "actions": ["*"]}])
    quoted = requests.utils.quote(value, safe="/")
    assert client.get(f"{BASE}/{quoted}?accessTokenId={master}").get_json()["id"] == value
    assert client.post(f"{BASE}/{quoted}/delete?accessTokenId={master}").status_code == 200
    assert tokens.find_by_value(value) is None


def test_delete_ends_the_token_at_once(client, master, token_for):
    value = token_for(("site1", ["READ_TENANT"]))
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={value}").status_code == 200
    response = client.post(f"{BASE}/{value}/delete?accessTokenId={master}")
    assert response.status_code == 200
    assert tokens.find_by_value(value) is None
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={value}").status_code == 401
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "token.deleted"))
    assert event.actor == audit.token_actor(tokens.authenticate(master))
    # Crafter's Java client posts the delete with accessTokenId in a form body, not the URL.
    other = token_for(("site1", ["READ_TENANT"]))
    response = client.post(f"{BASE}/{other}/delete", data={"accessTokenId": master})
    assert response.status_code == 200 and tokens.find_by_value(other) is None
    # As in Crafter: deleting an unknown id changes nothing.
    before = db.session.scalar(db.select(db.func.count()).select_from(AccessToken))
    assert client.post(f"{BASE}/{value}/delete?accessTokenId={master}").status_code == 200
    assert db.session.scalar(db.select(db.func.count()).select_from(AccessToken)) == before


# --- Tessera's rules, in Crafter's errors --------------------------------------------------

def test_only_master_tokens_manage_tokens(client, token_for):
    plain = token_for(("*", ["*"]))
    other = token_for(("site1", ["READ_TENANT"]))
    for response in (create(client, plain, crafter_body()),
                     client.get(f"{BASE}/all?accessTokenId={plain}"),
                     client.get(f"{BASE}/{other}?accessTokenId={plain}"),
                     client.post(f"{BASE}/{other}/delete?accessTokenId={plain}")):
        assert response.status_code == 403
        body = response.get_json()
        assert body["errorCode"] == "ACTION_DENIED" and "master" in body["message"]
    assert tokens.find_by_value(other) is not None


def test_a_master_token_grants_nothing_beyond_its_own_permissions(client, token_for):
    narrow = token_for(("site1", ["READ_TENANT", "MANAGE_PROFILES"]), master=True)
    response = create(client, narrow, crafter_body(tenantPermissions=[{"tenant": "site2",
                                                                       "allowedActions": ["READ_TENANT"]}]))
    assert response.status_code == 403
    assert response.get_json()["errorCode"] == "ACTION_DENIED"
    assert "READ_TENANT on site2" in response.get_json()["message"]
    assert create(client, narrow, crafter_body(tenantPermissions=[{"tenant": "*",
                                                                   "allowedActions": ["*"]}])).status_code == 403
    assert create(client, narrow, crafter_body()).status_code == 200  # within its own


def test_a_token_beyond_the_callers_reach_is_neither_read_nor_deleted(client, token_for):
    narrow = token_for(("site1", ["*"]), master=True)
    wider = token_for(("*", ["READ_TENANT"]))
    for response in (client.get(f"{BASE}/{wider}?accessTokenId={narrow}"),
                     client.post(f"{BASE}/{wider}/delete?accessTokenId={narrow}")):
        assert response.status_code == 403 and response.get_json()["errorCode"] == "ACTION_DENIED"
    assert tokens.find_by_value(wider) is not None


def test_caller_token_errors_are_crafters(client, master, token_for, engine_app, monkeypatch):
    response = client.get(f"{BASE}/all")
    assert response.status_code == 401 and response.get_json()["errorCode"] == "MISSING_ACCESS_TOKEN_ID_PARAM"
    response = client.get(f"{BASE}/all?accessTokenId=tsr_no_such_token_00000000")
    assert response.status_code == 403 and response.get_json()["errorCode"] == "NO_SUCH_ACCESS_TOKEN_ID"
    revoked = token_for(("*", ["*"]), master=True)
    tokens.revoke(tokens.find_by_value(revoked), actor="test")
    response = client.get(f"{BASE}/all?accessTokenId={revoked}")
    assert response.status_code == 403 and response.get_json()["errorCode"] == "NO_SUCH_ACCESS_TOKEN_ID"
    user = make_user("dora")
    of_user = make_token(application=engine_app, user=user, master=True,
                         tenant_permissions=[{"tenant": "*", "actions": ["*"]}]).value
    user.active = False
    db.session.commit()
    response = client.get(f"{BASE}/all?accessTokenId={of_user}")
    assert response.status_code == 403 and response.get_json()["errorCode"] == "DISABLED_PROFILE"
    later = clock.now() + timedelta(days=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = client.get(f"{BASE}/all?accessTokenId={master}")
    assert response.status_code == 403 and response.get_json()["errorCode"] == "EXPIRED_ACCESS_TOKEN"


@pytest.mark.parametrize("app_config", [{"BEARER_IP_RATE_LIMIT": "2 per minute"}])
def test_guessed_caller_tokens_are_throttled_and_a_live_one_still_passes(client, master):
    for attempt in range(2):
        assert client.get(f"{BASE}/all?accessTokenId=tsr_guess_{attempt}_0000000000").status_code == 403
    response = client.get(f"{BASE}/all?accessTokenId=tsr_guess_2_0000000000")
    assert response.status_code == 429 and response.get_json()["errorCode"] == "OTHER"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert client.get(f"{BASE}/all?accessTokenId={master}").status_code == 200


@pytest.mark.parametrize("app_config", [{"ALLOW_QUERY_ACCESS_TOKEN": False}])
def test_with_url_tokens_off_the_parameter_is_not_read(client, master):
    response = client.get(f"{BASE}/all?accessTokenId={master}")
    assert response.status_code == 401 and response.get_json()["errorCode"] == "MISSING_ACCESS_TOKEN_ID_PARAM"
    assert client.get(f"{BASE}/all", headers={"Authorization": f"Bearer {master}"}).status_code == 200


@pytest.mark.parametrize("body, code, says", [
    ({"master": False}, "OTHER", "application"),
    ({"application": 7}, "OTHER", "application"),
    ({"application": "nosuchapp"}, "OTHER", "Unknown application nosuchapp"),
    (crafter_body(master="yes"), "OTHER", "master"),
    (crafter_body(tenantPermissions="site1"), "OTHER", "tenantPermissions"),
    (crafter_body(tenantPermissions=["site1"]), "OTHER", "tenantPermissions"),
    (crafter_body(tenantPermissions=[{"tenant": "site1", "allowedActions": "READ_TENANT"}]), "OTHER",
     "allowedActions"),
    (crafter_body(tenantPermissions=[{"tenant": "site1", "allowedActions": ["FLY"]}]), "OTHER", "FLY"),
    (crafter_body(tenantPermissions=[{"tenant": 5, "allowedActions": []}]), "OTHER", "tenant"),
    (crafter_body(tenantPermissions=[{"tenant": "site1", "allowedActions": ["*"]},
                                     {"tenant": "site1", "allowedActions": ["READ_TENANT"]}]), "OTHER", "twice"),
    (crafter_body(tenantPermissions=[{"tenant": "site1"}]), "OTHER", "allowedActions"),
    (crafter_body(tenantPermissions=[{"tenant": "site1", "allowedActions": []}]), "OTHER", "allowedActions"),
    (crafter_body(tenantPermissions=[{"tenant": f"t{i}", "allowedActions": ["*"]} for i in range(101)]), "OTHER",
     "at most 100"),
    (crafter_body(tenantPermissions=[{"tenant": "site9", "allowedActions": ["READ_TENANT"]}]), "NO_SUCH_TENANT",
     "site9"),
    (crafter_body(expiresOn="tomorrow"), "OTHER", "expiresOn"),
    (crafter_body(expiresOn=1.5e12), "OTHER", "expiresOn"),
    (crafter_body(expiresOn=True), "OTHER", "expiresOn"),
    (crafter_body(expiresOn=10 ** 30), "OTHER", "expiresOn"),
    (crafter_body(expiresOn=-(10 ** 30)), "OTHER", "expiresOn"),
    (crafter_body(expiresOn=946684800000), "OTHER", "future"),
    (crafter_body(expiresOn=4102444800000 * 3), "OTHER", "ten years"),
    ([crafter_body()], "OTHER", "object"),
])
def test_bad_bodies_get_a_clear_400(client, master, body, code, says):
    before = db.session.scalar(db.select(db.func.count()).select_from(AccessToken))
    response = create(client, master, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["errorCode"] == code and says in response.get_json()["message"]
    assert db.session.scalar(db.select(db.func.count()).select_from(AccessToken)) == before


def test_malformed_or_non_json_bodies(client, master):
    url = f"{BASE}/create?accessTokenId={master}"
    response = client.post(url, data='{"application": ', content_type="application/json")
    assert response.status_code == 400 and response.get_json()["errorCode"] == "OTHER"
    response = client.post(url, data="[" * 100000 + "]" * 100000, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["errorCode"] == "OTHER"
    response = client.post(url, data={"application": "crafterengine"})
    assert response.status_code == 415 and response.get_json()["errorCode"] == "OTHER"


def test_other_paths_and_methods_answer_in_crafters_shape(client, master):
    for method, path, status in (("delete", f"{BASE}/{master}", 405), ("put", f"{BASE}/all", 405),
                                 ("post", f"{BASE}/all", 405), ("get", f"{BASE}/create", 405),
                                 ("get", f"{BASE}/{master}/delete", 405),
                                 ("get", "/crafter-profile/api/1/profile/x", 404)):
        response = getattr(client, method)(f"{path}?accessTokenId={master}")
        assert response.status_code == status, (method, path)
        assert response.get_json()["errorCode"] == "OTHER"


# --- no token value from a path in any log ------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("GET /crafter-profile/api/1/access_token/tsr_secret?accessTokenId=tsr_master HTTP/1.1",
     "GET /crafter-profile/api/1/access_token/[REDACTED]?accessTokenId=[REDACTED] HTTP/1.1"),
    ("POST /crafter-profile/api/1/access_token/tsr_secret/delete HTTP/1.1",
     "POST /crafter-profile/api/1/access_token/[REDACTED]/delete HTTP/1.1"),
    ("POST /crafter-profile/api/1/access_token/a/b%3Fc#d/delete/ HTTP/1.1",
     "POST /crafter-profile/api/1/access_token/[REDACTED]/delete HTTP/1.1"),
    ("GET //crafter-profile/api/1/access%5Ftoken/tsr_secret HTTP/1.1",
     "GET /crafter-profile/api/1/access_token/[REDACTED] HTTP/1.1"),
    ("GET /%63rafter-profile/api/1/access_token/tsr_secret HTTP/1.1",
     "GET /crafter-profile/api/1/access_token/[REDACTED] HTTP/1.1"),
    ("http://h:8000/crafter-profile/api/1/access_token/tsr_secret?x=1",
     "http://h:8000/crafter-profile/api/1/access_token/[REDACTED]?x=1"),
    ("/crafter-profile/api/1/access_token/tsr_secret", "/crafter-profile/api/1/access_token/[REDACTED]"),
    ("GET /crafter-profile/api/1/access_token/all HTTP/1.1", "GET /crafter-profile/api/1/access_token/all HTTP/1.1"),
    ("POST /crafter-profile/api/1/access_token/create/ HTTP/1.1",
     "POST /crafter-profile/api/1/access_token/create/ HTTP/1.1"),
    ("GET /api/v1/tenants/site%201 HTTP/1.1", "GET /api/v1/tenants/site%201 HTTP/1.1"),
])
def test_redact_takes_a_token_value_out_of_a_crafter_path(line, expected):
    from portal.web.logging import redact

    assert redact(line) == expected



def test_live_token_values_in_paths_never_reach_the_logs(live_server):
    master = live_server.default_tokens["adminconsole"]
    api = live_server.url + BASE
    created = requests.post(f"{api}/create", params={"accessTokenId": master}, timeout=10, json={
        "application": "crafterengine", "tenantPermissions": [{"tenant": "*", "allowedActions": ["READ_TENANT"]}],
        "expiresOn": now_ms() + DAY_MS})
    assert created.status_code == 200, created.text
    value = created.json()["id"]
    read = requests.get(f"{api}/{value}", params={"accessTokenId": master}, timeout=10)
    assert read.status_code == 200 and read.json()["id"] == value
    listed = requests.get(f"{api}/all", params={"accessTokenId": master}, timeout=10).json()
    assert {"tenant": "*", "allowedActions": ["READ_TENANT"]} in [p for t in listed for p in t["tenantPermissions"]]
    # The same path written as the application still routes it: encoded letters, doubled slashes.
    connection = http.client.HTTPConnection(live_server.url.removeprefix("http://"), timeout=10)
    for path in (f"/crafter-profile/api/1/access%5Ftoken/{value}", f"//crafter-profile/api/1/access_token/{value}/"):
        connection.request("GET", f"{path}?accessTokenId={master}")
        response = connection.getresponse()
        response.read()
        assert response.status in (200, 308), path
    connection.close()
    deleted = requests.post(f"{api}/{value}/delete", params={"accessTokenId": master}, timeout=10)
    assert deleted.status_code == 200
    assert requests.get(f"{api}/{value}", params={"accessTokenId": master}, timeout=10).json() is None
    time.sleep(0.5)
    log = live_server.log()
    assert "/crafter-profile/api/1/access_token/[REDACTED]/delete" in log
    assert value not in log and master not in log


@pytest.mark.both_databases  # NUL bytes and lengths, which only PostgreSQL refuses
@pytest.mark.parametrize("body", [
    crafter_body(application="crafter\u0000engine"),
    crafter_body(tenantPermissions=[{"tenant": "site\u00001", "allowedActions": ["READ_TENANT"]}]),
    crafter_body(tenantPermissions=[{"tenant": "site1", "allowedActions": ["READ\u0000TENANT"]}]),
    crafter_body(tenantPermissions=[{"tenant": "s" * 5000, "allowedActions": ["READ_TENANT"]}]),
])
def test_nul_bytes_and_long_names_are_a_clean_400(client, master, body):
    response = create(client, master, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["errorCode"] in ("OTHER", "NO_SUCH_TENANT")


def test_refusals_before_the_view_are_crafters_too(client, master):
    response = client.get(f"{BASE}/tsr_a%00b?accessTokenId={master}")
    assert response.status_code == 400 and response.get_json()["errorCode"] == "OTHER"
    response = create(client, master, crafter_body(application="x" * (2 * 1024 * 1024)))
    assert response.status_code == 413 and response.get_json()["errorCode"] == "OTHER"
