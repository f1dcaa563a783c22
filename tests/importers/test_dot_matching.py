"""`portal import dot`: a GeoNode user becomes an existing Tessera user only by a rule the
operator chose (`--map FILE`, `--match email`), never an administrator without
`--allow-admin-match`, never because the names differ only in case (issue 22, point 3).
The database is make_dot_database.build_strangers': GeoNode users `Ops`, `carla` and `dave`."""

import base64

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AccessToken, AuditEvent, User
from tests.factories import make_user

# On SQLite and PostgreSQL (tests/conftest.py): users matched by SQL (lower(), case rules) in the target database.
pytestmark = pytest.mark.both_databases


def invoke(runner, geonode, *args, ok=True):
    result = runner.invoke(args=["import", "dot", geonode["url"], *map(str, args)])
    assert "Traceback" not in result.output
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def section(output: str, title: str) -> list[str]:
    """The lines under a summary heading ("Refused:", "Matched with existing Tessera users:")."""
    lines = output.splitlines()
    if title not in lines:
        return []
    rest = lines[lines.index(title) + 1:]
    return [line.strip() for line in rest[:next((i for i, line in enumerate(rest) if not line.startswith("  ")),
                                                  len(rest))]]


def about(lines: list[str], who: str) -> str:
    found = [line for line in lines if line.startswith(f"user {who!r}")]
    assert len(found) == 1, (who, lines)
    return found[0]


def user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def token_user(value: str) -> str | None:
    from portal.domain.hashing import sha256_hex

    token = db.session.scalar(select(AccessToken).where(AccessToken.token_hash == sha256_hex(value)))
    return None if token is None else (token.user.username if token.user else "")


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def tessera_ops(app):
    """Tessera's administrator `ops`: not GeoNode's `Ops`, who is nobody special there."""
    return make_user("ops", email="ops@example.org", is_admin=True)


def test_a_geonode_user_is_not_crowned_by_a_case_only_name_match(app, runner, strangers_geonode, tessera_ops, client):
    dry = invoke(runner, strangers_geonode)
    reason = about(section(dry, "Refused:"), "Ops")
    assert "'ops' (administrator, email ops@example.org)" in reason and "--map" in reason
    assert section(dry, "Matched with existing Tessera users:") == []
    assert f"token {strangers_geonode['ops_token'][:4]}…: its user 'Ops' was refused" in section(dry, "Refused:")

    applied = invoke(runner, strangers_geonode, "--apply")
    assert about(section(applied, "Refused:"), "Ops") == reason  # the dry run said what --apply does
    assert token_user(strangers_geonode["ops_token"]) is None
    db.session.refresh(tessera_ops)
    assert tessera_ops.is_admin and tessera_ops.email == "ops@example.org"
    # GeoNode's token of Ops neither answers as Tessera's administrator nor renews.
    userinfo = client.get("/api/o/v4/userinfo", headers={"Authorization": f"Bearer {strangers_geonode['ops_token']}"})
    assert userinfo.status_code == 401
    renewed = client.post("/token",
                          data={"grant_type": "refresh_token", "refresh_token": strangers_geonode["ops_refresh"]},
                          headers=basic(strangers_geonode["client_id"], strangers_geonode["client_secret"]))
    assert renewed.status_code == 400 and renewed.get_json()["error"] == "invalid_grant"


def test_an_administrator_is_attached_only_by_an_explicit_map_and_flag(app, runner, strangers_geonode, tessera_ops,
                                                                       client, tmp_path):
    mapping = tmp_path / "users.map"
    mapping.write_text("# GeoNode = Tessera\nOps=ops\n")
    refused = about(section(invoke(runner, strangers_geonode, "--map", mapping, "--apply"), "Refused:"), "Ops")
    assert "--map line 2" in refused and "administrator" in refused and "--allow-admin-match" in refused
    assert token_user(strangers_geonode["ops_token"]) is None

    output = invoke(runner, strangers_geonode, "--map", mapping, "--allow-admin-match", "--apply")
    match = about(section(output, "Matched with existing Tessera users:"), "Ops")
    assert match == ("user 'Ops' (GeoNode email ops@geonode.example) -> Tessera user 'ops' (administrator, "
                     "email ops@example.org): --map line 2")
    users_line = next(line for line in output.splitlines() if line.strip().startswith("users:"))
    assert ", 1 attached to existing users" in users_line  # the others: made by the first run
    assert token_user(strangers_geonode["ops_token"]) == "ops"
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.import_matched")).all()
    assert [(e.target_label, e.details["source_username"]) for e in events] == [("ops", "Ops")]


def test_a_case_only_difference_in_the_map_is_refused(app, runner, strangers_geonode, tessera_ops, tmp_path):
    mapping = tmp_path / "users.map"
    mapping.write_text("Ops=OPS\n")
    output = invoke(runner, strangers_geonode, "--map", mapping, "--allow-admin-match")
    reason = about(section(output, "Refused:"), "Ops")
    assert "names 'OPS', but Tessera's user is 'ops'" in reason


def test_the_same_email_attaches_only_with_match_email(app, runner, strangers_geonode, tessera_ops):
    carla = make_user("carla.t", email="Carla@example.org")
    # Without a rule, GeoNode's carla is a new user (no Tessera user is named carla).
    assert "carla" not in " ".join(section(invoke(runner, strangers_geonode), "Matched with existing Tessera users:"))

    output = invoke(runner, strangers_geonode, "--match", "email", "--apply")
    assert about(section(output, "Matched with existing Tessera users:"), "carla") == (
        "user 'carla' (GeoNode email carla@example.org) -> Tessera user 'carla.t' (end user, "
        "email Carla@example.org): the same email (--match email)")
    assert user("carla") is None and token_user(strangers_geonode["carla_token"]) == "carla.t"
    assert db.session.get(User, carla.id).password_hash == carla.password_hash  # the Tessera user is unchanged


def test_the_same_email_never_attaches_an_administrator_without_the_flag(app, runner, strangers_geonode, tessera_ops):
    tessera_ops.email = "ops@geonode.example"
    db.session.commit()
    reason = about(section(invoke(runner, strangers_geonode, "--match", "email"), "Refused:"), "Ops")
    assert "the same email (--match email) names Tessera user 'ops', an administrator" in reason
    assert "--allow-admin-match" in reason
    output = invoke(runner, strangers_geonode, "--match", "email", "--allow-admin-match")
    assert "-> Tessera user 'ops' (administrator, email ops@geonode.example): the same email" in output


def test_a_name_clash_is_imported_under_the_name_the_map_gives(app, runner, strangers_geonode, tessera_ops, tmp_path):
    dave = make_user("dave", email="dave@example.org")
    refused = section(invoke(runner, strangers_geonode), "Refused:")
    assert "Tessera has a user 'dave' (end user" in about(refused, "dave")

    mapping = tmp_path / "users.map"
    mapping.write_text("dave = dave.geonode\n")
    output = invoke(runner, strangers_geonode, "--map", mapping, "--apply")
    assert not [line for line in section(output, "Refused:") if line.startswith("user 'dave'")]
    made = user("dave.geonode")
    assert made is not None and made.email == "dave@geonode.example" and not made.is_admin
    assert db.session.get(User, dave.id).email == "dave@example.org"
    # Run again, with or without the map: the user is the one the first run made.
    for args in (("--map", mapping, "--apply"), ("--apply",)):
        again = invoke(runner, strangers_geonode, *args)
        assert "users: 0 created" in again
        assert not [line for line in section(again, "Refused:") if line.startswith("user 'dave'")]
    assert db.session.scalar(select(func.count()).where(func.lower(User.username).like("dave%"))) == 2


def test_two_geonode_users_never_become_one(app, runner, strangers_geonode, tessera_ops, tmp_path):
    """A map target that another GeoNode user's own name also claims: one of them is refused,
    and the dry run says which, as --apply does."""
    mapping = tmp_path / "users.map"
    mapping.write_text("Ops=carla\n")
    dry = invoke(runner, strangers_geonode, "--map", mapping)
    applied = invoke(runner, strangers_geonode, "--map", mapping, "--apply")
    assert section(dry, "Refused:") == section(applied, "Refused:")
    assert "'carla' is made in this run for GeoNode user 'Ops'" in about(section(applied, "Refused:"), "carla")
    assert token_user(strangers_geonode["ops_token"]) == "carla"
    assert token_user(strangers_geonode["carla_token"]) is None


@pytest.mark.parametrize("content, message", [
    ("Ops\n", "line 1: write geonode_username=tessera_username"),
    ("Ops=ops\n\nOps=ops2\n", "line 3: GeoNode user 'Ops' is already mapped on line 1"),
    ("Ops=x\ncarla=X\n", "line 2: Tessera user 'X' is already named on line 1"),
    ("Ops=o\u202eps\n", "line 1: 'o\\u202eps': a username needs"),
    (b"Ops=\xff\n", "not UTF-8 text (byte 0xff at offset 4)"),
], ids=["no-equals", "source-twice", "target-twice", "bidi-target", "not-utf-8"])
def test_a_bad_map_file_is_one_clear_line(app, runner, strangers_geonode, tmp_path, content, message):
    mapping = tmp_path / "users.map"
    mapping.write_bytes(content if isinstance(content, bytes) else content.encode())
    output = invoke(runner, strangers_geonode, "--map", mapping, "--apply", ok=False)
    assert message in output and len(output.strip().splitlines()) == 1
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_the_map_gives_a_name_tessera_refuses_a_new_one(app, runner, geonode, tmp_path):
    """GeoNode's `jürgen` (Tessera usernames are ASCII) comes over as `jurgen`, token and all."""
    mapping = tmp_path / "names.map"
    mapping.write_text("jürgen=jurgen\n", encoding="utf-8")
    output = invoke(runner, geonode, "--map", mapping, "--apply")
    assert not [line for line in section(output, "Refused:") if "rgen" in line]
    assert user("jurgen").email == "jürgen@example.org" and token_user(geonode["refused_token"]) == "jurgen"
