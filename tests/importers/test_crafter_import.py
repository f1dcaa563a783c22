"""`portal import crafter FILE`: Crafter Profile's accessToken collection as mongoexport
writes it, moved over; afterwards Crafter's clients keep using their token values."""

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.domain.hashing import sha256_hex
from portal.models import AccessToken, Application, AuditEvent, Tenant

# On SQLite and PostgreSQL (tests/conftest.py): an import is one transaction in the target database.
pytestmark = pytest.mark.both_databases

EXPORT = Path(__file__).with_name("crafter_access_tokens.jsonl")
RECORDS = [json.loads(line) for line in EXPORT.read_text().splitlines()]
MASTER, ENGINE, SOCIAL, EXPIRED, BAD_ACTION, SHORT, BAD_TENANT = (record["_id"] for record in RECORDS)


def invoke(runner, *args):
    result = runner.invoke(args=["import", "crafter", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def summary_line(output: str, kind: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(f"{kind}:"))


def tokens_line(created: int, present: int, *, made: str = "created") -> str:
    return f"tokens: {created} {made}, {present} already present, 1 expired (skipped), 3 refused"


def row_counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (AccessToken, Application, Tenant))


def test_dry_run_then_apply_then_apply_again(app, runner):
    result = invoke(runner, EXPORT)
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output
    assert summary_line(result.output, "tokens") == tokens_line(3, 0, made="to create")
    assert summary_line(result.output, "applications") == "applications: 3 to create, 0 already present, 0 refused"
    assert summary_line(result.output, "tenants") == "tenants: 2 to create, 0 already present, 1 refused"
    assert "LAUNCH_ROCKETS" in result.output and "Site Three" in result.output and "at least 16" in result.output
    assert row_counts() == (0, 0, 0)  # the dry run wrote nothing

    result = invoke(runner, EXPORT, "--apply")
    assert result.exit_code == 0, result.output
    assert summary_line(result.output, "tokens") == tokens_line(3, 0)
    assert row_counts() == (3, 3, 2)
    for value in RECORDS:
        assert value["_id"] not in result.output  # values are never printed, only hints
    stored = db.session.scalars(select(AccessToken)).all()
    assert {t.token_hash for t in stored} == {sha256_hex(v) for v in (MASTER, ENGINE, SOCIAL)}

    result = invoke(runner, EXPORT, "--apply")
    assert result.exit_code == 0, result.output
    assert summary_line(result.output, "tokens") == tokens_line(0, 3)
    assert summary_line(result.output, "applications").startswith("applications: 0 created")
    assert row_counts() == (3, 3, 2)  # nothing twice
    runs = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "import.applied")).all()
    assert [run.details["counts"]["tokens"]["created"] for run in runs] == [3, 0]


def test_tokens_keep_their_settings_and_values(app, runner, monkeypatch):
    # In 2090 the export's 2096 expiries lie within ten years, so they are kept as they are.
    monkeypatch.setattr("portal.domain.clock.now", lambda: datetime(2090, 1, 1))
    assert invoke(runner, EXPORT, "--apply").exit_code == 0
    by_hash = {t.token_hash: t for t in db.session.scalars(select(AccessToken))}
    master, engine, social = (by_hash[sha256_hex(v)] for v in (MASTER, ENGINE, SOCIAL))
    assert master.master and master.application.name == "adminconsole"
    assert master.tenant_permissions == [{"tenant": "*", "actions": ["*"]}]
    assert not engine.master and engine.application.name == "crafterengine"
    assert engine.tenant_permissions == [{"tenant": "site1",
                                          "actions": ["READ_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS"]}]
    assert social.tenant_permissions == [{"tenant": "*", "actions": ["READ_TENANT"]},
                                         {"tenant": "site2", "actions": ["MANAGE_PROFILES"]}]
    # {"$date": ISO}, {"$date": {"$numberLong"}} and epoch milliseconds: the same instant.
    assert master.expires_at == engine.expires_at == social.expires_at == datetime(2096, 1, 1)
    assert {t.source for t in (master, engine, social)} == {"admin"}


def test_the_same_records_as_a_json_array(app, runner, tmp_path):
    array = tmp_path / "accessToken.json"
    array.write_text(json.dumps(RECORDS, indent=2))
    lines = invoke(runner, EXPORT).output
    assert invoke(runner, array).output == lines
    assert invoke(runner, array, "--apply").exit_code == 0
    assert invoke(runner, EXPORT, "--apply").output.count("3 already present") == 1


def test_migrated_tokens_work_on_the_api_and_at_introspect(app, runner, client):
    from tests.factories import make_application

    assert invoke(runner, EXPORT, "--apply").exit_code == 0
    # The master token manages tokens through the API, as Crafter's admin console did.
    listed = client.get("/api/v1/access-tokens", headers={"Authorization": f"Bearer {MASTER}"})
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert len(listed.get_json()["items"]) == 3
    # Crafter Engine sends its token as accessTokenId; its permissions hold on site1 only.
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={ENGINE}").status_code == 200
    assert client.get(f"/api/v1/tenants/site2?accessTokenId={ENGINE}").status_code == 403
    assert client.get(f"/api/v1/tenants/site1?accessTokenId={EXPIRED}").status_code == 401

    resource_server = make_application(name="resource-server", client_secret="resource-server-secret-0123")
    basic = base64.b64encode(f"{resource_server.client_id}:resource-server-secret-0123".encode()).decode()
    answer = client.post("/introspect", data={"token": ENGINE}, headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["active"] is True and body["application"] == "crafterengine" and body["master"] is False
    assert body["tenant_permissions"] == [{"tenant": "site1",
                                           "actions": ["READ_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS"]}]


@pytest.mark.parametrize("content, message", [
    ("[{\"_id\": ", "not a JSON array"),
    ("{\"_id\": \"x\"}\nnot json\n", "line 2 is not JSON"),
    ("[1, 2]", "accessToken documents"),
])
def test_a_bad_file_is_a_clear_error(app, runner, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = invoke(runner, bad, "--apply")
    assert result.exit_code != 0 and message in result.output
    assert row_counts() == (0, 0, 0)


@pytest.mark.parametrize("expires_on", [
    {"$date": "2096-01-01T00:00:00Z"},  # mongoexport's relaxed Extended JSON
    {"$date": "2096-01-01T01:00:00.000+01:00"},
    {"$date": {"$numberLong": "3976214400000"}},  # canonical
    {"$date": 3976214400000},  # legacy mode
    3976214400000,
    "3976214400000",
])
def test_every_date_shape_mongoexport_writes(expires_on):
    from portal.importers.crafter import parse_date

    assert parse_date(expires_on) == datetime(2096, 1, 1)


@pytest.mark.parametrize("expires_on", [{"$date": "next tuesday"}, {"$date": True}, [2096], {"$regex": "x"}])
def test_what_is_not_a_date_is_refused(expires_on):
    from portal.importers.crafter import parse_date

    with pytest.raises(ValueError):
        parse_date(expires_on)


def test_an_object_id_is_the_value_of_older_exports(app, runner, tmp_path):
    export = tmp_path / "accessToken.json"
    export.write_text(json.dumps({"_id": {"$oid": "5a1b2c3d4e5f60718293a4b5"}, "application": "crafterengine",
                                  "tenantPermissions": [], "expiresOn": {"$date": "2096-01-01T00:00:00Z"}}))
    assert invoke(runner, export, "--apply").exit_code == 0
    assert db.session.scalar(select(AccessToken.token_hash)) == sha256_hex("5a1b2c3d4e5f60718293a4b5")
