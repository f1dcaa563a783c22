"""Odd and hostile input to `portal import` (issue 22, points 4 and 12): each record that
cannot be imported is refused with its reason and the rest lands; an import is one
transaction, so an unexpected error leaves nothing written and is one line; a file that
cannot be read is one line; no imported expiry lies more than ten years away; no
application name hides control, bidirectional or invisible characters."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.domain import clock
from portal.extensions import db
from portal.domain.hashing import sha256_hex
from portal.models import AccessToken, Application, AuditEvent, Tenant, User
from tests.factories import make_user

# On SQLite and PostgreSQL (tests/conftest.py): an import is one transaction; what each database refuses.
pytestmark = pytest.mark.both_databases

TEN_YEARS = timedelta(days=3650)
GOOD = "a0f1e2d3-c4b5-4a69-8877-665544332211"  # a Crafter token value


def invoke(runner, *args):
    result = runner.invoke(args=["import", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def section(output: str, title: str) -> list[str]:
    lines = output.splitlines()
    if title not in lines:
        return []
    rest = lines[lines.index(title) + 1:]
    return [line.strip() for line in rest[:next((i for i, line in enumerate(rest) if not line.startswith("  ")),
                                                  len(rest))]]


def rows() -> dict[str, int]:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, Application, Tenant, AccessToken, AuditEvent)}


def token(value: str) -> AccessToken | None:
    return db.session.scalar(select(AccessToken).where(AccessToken.token_hash == sha256_hex(value)))


def near(moment: datetime, expected: datetime) -> bool:
    return abs(moment - expected) <= timedelta(minutes=5)


# --- django-oauth-toolkit ----------------------------------------------------------------

def test_odd_dot_records_are_refused_one_by_one_and_the_rest_lands(app, runner, odd_geonode, auth, client):
    result = invoke(runner, "dot", odd_geonode["url"], "--apply")
    assert result.exit_code == 0, result.output
    refused, notes = section(result.output, "Refused:"), section(result.output, "Notes:")
    assert ("application 'spoofed-viewer': the name may hold only visible characters and spaces (no control, "
            "bidirectional or invisible characters)") in refused
    assert ("application 'slow-secret': its secret hash is refused: pbkdf2_sha256 iterations 20000000: "
            "Tessera checks 100000 to 2000000") in refused
    assert "token spoo…: its application was refused" in refused
    assert db.session.scalar(select(func.count()).where(Application.name.contains("\u202e"))) == 0
    if odd_geonode["vendor"] == "sqlite":  # SQLite keeps any value in any column
        assert "token garb…: expires is not a date" in refused
        assert "user b'blob': the username is not text" in refused

    # Password hashes outside the limits: the user comes over, the hash does not (said per user).
    for username, encoded in odd_geonode["hashes"].items():
        imported = db.session.scalar(select(User).where(User.username == username))
        if username in odd_geonode["kept"]:
            assert imported.password_hash == encoded
        else:
            assert imported.password_hash is None
            assert any(line.startswith(f"user {username!r}: password hash refused (") for line in notes), username
    assert auth.login("pbkdf2-floor", odd_geonode["passwords"]["pbkdf2-floor"]).status_code == 303

    # A token without an expiry is expired, as django-oauth-toolkit counts it; its refresh
    # token, if live, still renews. An expiry in 9999 is ten years from now.
    assert token(odd_geonode["null_token"]) is None
    renewable = token(odd_geonode["null_renewable_token"])
    assert renewable is not None and renewable.expires_at <= clock.now() and renewable.refresh_token_hash
    forever = token(odd_geonode["forever_token"])
    assert near(forever.expires_at, clock.now() + TEN_YEARS)
    assert any(line.startswith("token fore…: its expiry 9999-12-31 is more than ten years away") for line in notes)
    assert token(odd_geonode["erin_token"]).user.username == "erin"


def test_an_unexpected_error_leaves_nothing_written(app, runner, geonode, monkeypatch):
    """The users and applications come before the tokens: an error at the second token
    undoes them all, and is one line."""
    from portal.importers import dot

    real, calls = dot.import_token_row, []

    def fail_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the disk is full")
        return real(*args, **kwargs)

    monkeypatch.setattr(dot, "import_token_row", fail_at_the_second)
    before = rows()
    result = invoke(runner, "dot", geonode["url"], "--apply")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == ("Error: the import stopped at an unexpected error, and wrote "
                                                     "nothing: RuntimeError: the disk is full")
    assert rows() == before
    monkeypatch.undo()
    assert invoke(runner, "dot", geonode["url"], "--apply").exit_code == 0  # and a later run does it all
    assert rows()["AccessToken"] == 4


# --- Crafter Profile -----------------------------------------------------------------------

def export(tmp_path, *documents, raw: bytes | None = None):
    path = tmp_path / "accessToken.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join(json.dumps(document) for document in documents))
    return path


def document(value: str, **fields) -> dict:
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return {"_id": value, "application": "crafterengine", "master": False, "expiresOn": {"$date": in_a_month},
            "tenantPermissions": [{"tenant": "site1", "allowedActions": ["READ_TENANT"]}], **fields}


def test_crafter_documents_of_the_wrong_shape_are_refused_one_by_one(app, runner, tmp_path):
    make_user("someone")
    path = export(
        tmp_path,
        document(12345678901234567890),
        document("value-for-app-number-01", application=5),
        document("value-for-string-master", master="true"),
        document("value-for-bad-tenantperm", tenantPermissions="site1"),
        document("value-for-list-expires01", expiresOn=[2096]),
        document("value-with-a-nul-\u0000-0001"),
        document("value-for-a-spoofed-app1", application="crafter\u202eengine"),
        document(GOOD, master=True, tenantPermissions=[{"tenant": "*", "allowedActions": ["*"]}],
                 expiresOn={"$date": "9999-12-31T00:00:00Z"}),
    )
    result = invoke(runner, "crafter", path, "--apply")
    assert result.exit_code == 0, result.output
    refused = section(result.output, "Refused:")
    assert refused == [
        "token #1: _id is not a string",
        "token #2 (valu…): application is not a name",
        "token #3 (valu…): master is neither true nor false",
        "token #4 (valu…): tenantPermissions is not a list of {tenant, allowedActions}",
        "token #5 (valu…): expiresOn is not a date (a list)",
        f"token #6 (valu…): a custom token value has at most {4096} characters, printable ASCII without spaces",
        "application 'crafter\\u202eengine': the name may hold only visible characters and spaces (no control, "
        "bidirectional or invisible characters)",
        "token #7 (valu…): application 'crafter\\u202eengine' refused",
    ]
    assert "\u202e" not in result.output  # shown as an escape, never as the character itself
    master = token(GOOD)
    assert master.master and near(master.expires_at, clock.now() + TEN_YEARS)
    assert any(line.startswith(f"token #8 ({GOOD[:4]}…): its expiry 9999-12-31 is more than ten years away")
               for line in section(result.output, "Notes:"))
    assert rows()["AccessToken"] == 1 and db.session.scalar(select(func.count()).select_from(Application)) == 1


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "the JSON array is nested too deeply"),
    ('{"_id": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 1 is nested too deeply"),
    (json.dumps(document(GOOD))[:-1] + ', "master": true}', "line 1: a document has the key 'master' more than once"),
    (b'{"_id": "\xff\xfe-not-utf-8-at-all"}', "not UTF-8 text (byte 0xff at offset 9)"),
    (b'{"_id": "nul\x00byte-0123456789"}', "line 1 is not JSON: Invalid control character"),
    (b"\x00" * 64, "line 1 is not JSON"),
], ids=["deep-array", "deep-line", "repeated-key", "not-utf-8", "nul-in-string", "nul-bytes"])
def test_a_crafter_file_that_cannot_be_read_is_one_clear_line(app, runner, tmp_path, content, message):
    path = export(tmp_path, raw=content if isinstance(content, bytes) else content.encode())
    result = invoke(runner, "crafter", path, "--apply")
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert rows()["AccessToken"] == 0


def test_a_crafter_file_too_big_to_read_is_one_clear_line(app, runner, tmp_path, monkeypatch):
    monkeypatch.setattr("portal.importers.crafter.MAX_EXPORT_BYTES", 1000)
    path = export(tmp_path, *(document(f"value-{n:020d}") for n in range(20)))
    result = invoke(runner, "crafter", path)
    assert result.exit_code == 1 and "more than the 1,000 an import reads: split the export" in result.output


def test_an_unexpected_error_in_a_crafter_import_leaves_nothing_written(app, runner, tmp_path, monkeypatch):
    from portal.importers import crafter

    path = export(tmp_path, *(document(f"value-{n:020d}", application=f"app{n}") for n in range(3)))
    real = crafter.import_one
    monkeypatch.setattr(crafter, "import_one", lambda record, number, *rest: (
        real(record, number, *rest) if number < 3 else (_ for _ in ()).throw(KeyError("tenantPermissions"))))
    before = rows()
    result = invoke(runner, "crafter", path, "--apply")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == ("Error: the import stopped at an unexpected error, and wrote "
                                                     "nothing: KeyError: 'tenantPermissions'")
    assert rows() == before
