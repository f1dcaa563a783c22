"""deploy/'s systemd units and env file example, held to docs/deployment.md and
docs/configuration.md so that they cannot drift apart, and checked by `systemd-analyze verify`."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ConfigError, settings_from_environment
from tests.deploy.conftest import WITH_ENV_FILE

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs"
UNITS = ("tessera.service", "tessera-purge.service", "tessera-purge.timer")
HARDENING = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp")
# An assignment in the env file, or one commented out to show the default.
ENV_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", re.M)


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: [Section] headers, Key=value lines (a key may repeat), # and ;
    comments, a trailing backslash continues the line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    lines = iter(path.read_text().splitlines())
    for line in lines:
        line = line.strip()
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: not a unit line: {line!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def doc(name: str) -> str:
    """A page of docs/, e.g. doc("deployment.md")."""
    return (DOCS / name).read_text()


def example_lines() -> dict[str, str]:
    """Every NAME=value of deploy/tessera.env.example, commented out or not, quotes removed."""
    found = ENV_LINE.findall((DEPLOY / "tessera.env.example").read_text())
    return {name: value[1:-1] if value[:1] == value[-1:] == '"' else value for name, value in found}


def example_settings() -> dict[str, str]:
    """The settings the example sets (its lines not commented out)."""
    text = (DEPLOY / "tessera.env.example").read_text()
    return {name: value for name, value in re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.M)}


@pytest.fixture(scope="module")
def units() -> dict:
    return {name: parse_unit(DEPLOY / name) for name in UNITS}


def test_the_service_runs_gunicorn_from_the_venv_as_tessera(units):
    service = units["tessera.service"]
    assert one(service, "Service", "ExecStart") == "/opt/tessera/bin/gunicorn -c python:portal.gunicorn_config wsgi:app"
    assert one(service, "Service", "User") == one(service, "Service", "Group") == "tessera"
    assert one(service, "Service", "EnvironmentFile") == "/etc/tessera/tessera.env"
    assert one(service, "Service", "Type") == "notify"  # gunicorn sends READY=1 (tests/deploy checks it does)
    assert one(service, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "Service", "Restart") == "on-failure"
    state = "/var/lib/" + one(service, "Service", "StateDirectory")
    assert one(service, "Service", "WorkingDirectory") == state
    assert example_settings()["TESSERA_INSTANCE_PATH"] == state
    for key, value in zip(HARDENING, ("true", "strict", "true", "true")):
        assert one(service, "Service", key) == value, key
    metrics = dict(entry.split("=", 1) for entry in service["Service"]["Environment"])["PROMETHEUS_MULTIPROC_DIR"]
    runtime = one(service, "Service", "RuntimeDirectory").split()
    assert metrics.removeprefix("/run/") in runtime, (metrics, runtime)
    assert one(service, "Install", "WantedBy") == "multi-user.target"


def test_the_purge_runs_as_the_service_does_once_a_day(units):
    service, purge, timer = (units[name] for name in UNITS)
    venv_bin = os.path.dirname(one(service, "Service", "ExecStart").split()[0])
    assert one(purge, "Service", "ExecStart") == f"{venv_bin}/portal purge-expired"
    assert one(purge, "Service", "Type") == "oneshot"
    for key in ("User", "Group", "EnvironmentFile", "StateDirectory", "WorkingDirectory"):
        assert one(purge, "Service", key) == one(service, "Service", key), key
    hardening = {key: values for key, values in service["Service"].items()
                 if key.startswith(("Protect", "Private", "Restrict", "NoNew", "Lock", "Capability", "UMask"))}
    assert len(hardening) >= len(HARDENING)
    assert {key: purge["Service"].get(key) for key in hardening} == hardening
    assert one(timer, "Timer", "OnCalendar") == "daily"
    assert one(timer, "Timer", "Persistent") == "true"
    assert "Unit" not in timer["Timer"]  # so it starts tessera-purge.service, its namesake
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_the_deployment_doc_installs_what_the_units_expect(units):
    service = units["tessera.service"]
    user = one(service, "Service", "User")
    venv_bin = os.path.dirname(one(service, "Service", "ExecStart").split()[0])
    env_file = one(service, "Service", "EnvironmentFile")
    state = one(service, "Service", "WorkingDirectory")
    deployment = doc("deployment.md")
    # What the deployment test runs a command with is docs/deployment.md's way, word for word.
    run_with_settings = WITH_ENV_FILE.replace('"$0"', env_file).removesuffix(' "$@"')
    for line in (
        f"useradd --system --user-group --home-dir {state} --shell /usr/sbin/nologin {user}",
        f"install -d -o {user} -g {user} -m 0700 {state}",
        f"python3 -m venv {os.path.dirname(venv_bin)}",
        f"install -m 0600 -o root -g root deploy/tessera.env.example {env_file}",
        f"({run_with_settings} runuser -u {user} -- {venv_bin}/portal init)",
        f"cp {' '.join('deploy/' + name for name in UNITS)} /etc/systemd/system/",
        "systemctl enable --now tessera.service tessera-purge.timer",
        "cp deploy/nginx.conf /etc/nginx/conf.d/tessera.conf",
        f"`{one(service, 'Service', 'ExecStart')}`",
        f'print("SECRET_KEY=" + secrets.token_hex(32))\' >> {env_file}',
    ):
        assert line in deployment, f"docs/deployment.md no longer has {line!r}: deploy/ and the doc must agree"
    assert f"print(\"SECRET_KEY=\" + secrets.token_hex(32))' >> {env_file}" in \
        (DEPLOY / "tessera.env.example").read_text()


def test_the_env_example_lists_every_setting_of_the_configuration_doc():
    documented = set()
    for row in re.findall(r"^\| (.+?) \|", doc("configuration.md"), re.M):
        documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    assert len(documented) > 20, documented
    listed = set(example_lines())
    # SECRET_KEY is appended by a command the example and docs/deployment.md show (test above).
    assert documented - listed == {"SECRET_KEY"}, "add them to deploy/tessera.env.example"
    assert listed <= documented, "document them in docs/configuration.md"


def test_the_env_example_is_valid_sh_once_every_line_is_uncommented(tmp_path):
    uncommented = tmp_path / "tessera.env"
    uncommented.write_text(re.sub(r"^#([A-Z])", r"\1", (DEPLOY / "tessera.env.example").read_text(), flags=re.M))
    printed = subprocess.run(["sh", "-c", WITH_ENV_FILE, uncommented, "env", "-0"], env={"PATH": os.defpath},
                             capture_output=True, text=True, check=True).stdout
    read = dict(entry.split("=", 1) for entry in printed.split("\0") if entry)
    expected = example_lines()
    assert {name: read.get(name) for name in expected} == expected


def test_the_env_example_shows_the_defaults(monkeypatch, tmp_path):
    """Each line commented out holds the value Tessera uses when the setting is unset; the
    lines set are valid settings."""
    for name in example_lines():
        monkeypatch.delenv(name, raising=False)
    defaults = settings_from_environment(str(tmp_path), skip_secret=True)
    commented = {name: value for name, value in example_lines().items() if name not in example_settings()}
    for name, value in commented.items():
        monkeypatch.setenv(name, value)
    assert settings_from_environment(str(tmp_path), skip_secret=True) == defaults
    for name, value in example_settings().items():
        monkeypatch.setenv(name, value)
    try:
        settings_from_environment(str(tmp_path), skip_secret=True)
    except ConfigError as error:
        pytest.fail(f"deploy/tessera.env.example: {error}")
    # gunicorn's (portal/gunicorn_config.py); workers and threads depend on the cores.
    gunicorn = {name: commented[name] for name in ("BIND", "WORKER_CLASS", "ACCESS_LOG")}
    script = "import portal.gunicorn_config as c; print(c.bind, c.worker_class, c.accesslog)"
    environment = {key: value for key, value in os.environ.items() if key not in gunicorn}
    printed = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              check=True).stdout for env in (environment, {**environment, **gunicorn})]
    assert printed[0] == printed[1], printed


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """systemd's own check of every key and value, in a root of their own: systemd's units,
    ours, and a stand-in for each program they start."""
    analyze = shutil.which("systemd-analyze")
    system_units = next((Path(p) for p in ("/usr/lib/systemd/system", "/lib/systemd/system")
                         if Path(p, "sysinit.target").exists()), None)
    if not analyze or not system_units:
        reason = "systemd-analyze is not installed (apt-get install systemd): the units are not verified"
        if os.environ.get("REQUIRE_DEPLOY") == "1":
            pytest.fail(f"REQUIRE_DEPLOY=1 but {reason}")
        pytest.skip(reason)

    def verify(folder: Path) -> subprocess.CompletedProcess:
        root = tmp_path / folder.name
        shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
        (root / "etc/systemd/system").mkdir(parents=True)
        for name in UNITS:
            unit = (folder / name).read_text()
            (root / "etc/systemd/system" / name).write_text(unit)
            for program in re.findall(r"^Exec\w+=[-@:+!]*(/\S+)", unit, re.M):
                stand_in = root / program.lstrip("/")
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                stand_in.write_text("#!/bin/sh\n")
                stand_in.chmod(0o755)
        return subprocess.run([analyze, "verify", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in UNITS)],
                              capture_output=True, text=True, timeout=60)

    checked = verify(DEPLOY)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    # And it would notice a mistake.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in UNITS:
        (broken / name).write_text((DEPLOY / name).read_text().replace("ProtectSystem=", "ProtectSytem="))
    assert "Unknown key" in verify(broken).stderr
