"""Prepare a database, start gunicorn on loopback with a fixed configuration, drive each
scenario from a second process, and stop every process it started.

The gunicorn configuration is the project's own gunicorn.conf.py with fixed settings:
2 workers, `sync` (one request at a time per worker) or `gthread` (4 threads each). The
ceiling (bench.ceiling:app, a bare Flask JSON route) is served by the same configuration
in the same run, so every figure can be read as a fraction of what this machine can do.
"""

import atexit
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import requests

from bench.load import RequestSpec, run_load

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Runtime:
    """Which Tessera runs: its `portal` and `gunicorn`, its gunicorn settings, the directory
    they run in, and the source tree to import when the installed package lacks the
    application (v0.1.0). The working tree by default; an earlier release installed by
    bench/releases.py in the baseline mode."""

    bin_dir: Path = VENV_BIN
    cwd: Path = ROOT
    gunicorn_config: str = str(ROOT / "gunicorn.conf.py")
    pythonpath: str | None = None

    def program(self, name: str) -> str:
        return str(self.bin_dir / name) if (self.bin_dir / name).exists() else name

    def environment(self, env: dict) -> dict:
        return dict(env, PYTHONPATH=self.pythonpath) if self.pythonpath else env


TREE = Runtime()

WORKERS = 2
VARIANTS = {
    # name: (WORKER_CLASS, THREADS)
    "sync": ("sync", 1),
    "gthread": ("gthread", 4),
}
TENANT = "site1"
BENCH_USER = "benchuser"
BENCH_PASSWORD = "bench-password-" + "x" * 8


class EndpointNotAvailable(Exception):
    """The route answers 404: the feature has not landed yet."""


class ScenarioFailed(Exception):
    """The route exists but the probe request did not succeed."""


# --- processes ------------------------------------------------------------------------------

_running: list[subprocess.Popen] = []


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process in _running:
        _running.remove(process)


def stop_all() -> None:
    for process in list(_running):
        stop_process(process)


atexit.register(stop_all)


def _on_signal(signum, frame):
    stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(master_pid: int) -> set[int]:
    """The gunicorn workers: the processes the master has started (none once it has exited)."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    except OSError:
        return set()
    return {int(pid) for pid in children.split()}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def workers_cpu_seconds(master_pid: int) -> float:
    """User plus system CPU time a gunicorn master's workers have used so far."""
    return sum(cpu_seconds(pid) for pid in worker_pids(master_pid))


@dataclass
class Server:
    """A gunicorn master on loopback; `stop()` ends it and its workers."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def worker_rss(self) -> dict[int, float]:
        return {pid: rss for pid in worker_pids(self.process.pid) if (rss := rss_mb(pid)) is not None}

    def worker_cpu_seconds(self) -> float:
        return workers_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)


def start_gunicorn(app_path: str, env: dict, variant: str, log_dir: Path, health_path: str,
                   runtime: Runtime = TREE) -> Server:
    worker_class, threads = VARIANTS[variant]
    port = free_port()
    env = dict(env, BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(WORKERS), WORKER_CLASS=worker_class,
               THREADS=str(threads), ACCESS_LOG=str(log_dir / f"access-{app_path.split(':')[0]}-{variant}.log"))
    log_path = log_dir / f"gunicorn-{app_path.split(':')[0]}-{variant}-{port}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([runtime.program("gunicorn"), "-c", runtime.gunicorn_config, app_path],
                                   cwd=runtime.cwd, env=runtime.environment(env), stdout=log_file,
                                   stderr=subprocess.STDOUT)
    _running.append(process)
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _running.remove(process)
            raise RuntimeError(f"gunicorn {app_path} exited:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(server.url + health_path, timeout=2).status_code == 200:
                # Every worker must be up before we measure.
                if len(worker_pids(process.pid)) >= WORKERS:
                    return server
        except requests.RequestException:  # not listening yet, or a worker still booting
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn {app_path} did not answer in time:\n{log_path.read_text()[-3000:]}")


# --- the prepared database ----------------------------------------------------------------------

@dataclass
class Prepared:
    """What the scenarios need: the database, its environment and the secrets made for them."""

    database_url: str
    env: dict
    workdir: Path
    client_id: str = ""
    client_secret: str = ""
    admin_username: str = "admin"
    admin_password: str = ""
    tokens: dict = field(default_factory=dict)  # (purpose, format) -> value
    notes: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.database_url.startswith("postgresql") else "SQLite"


def portal_env(database_url: str, instance: Path, token_format: str = "opaque") -> dict:
    """A deployment's settings (the database-backed throttle included), with our database."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "SECRET_KEY", "RATELIMIT_", "PYTHONPATH"))}
    env.update(DATABASE_URL=database_url, TESSERA_INSTANCE_PATH=str(instance), SECRET_KEY="bench-" + "k" * 32,
               ACCESS_TOKEN_FORMAT=token_format)
    return env


def cli(env: dict, *args, input=None, allow_exists=False, runtime: Runtime = TREE) -> str:
    result = subprocess.run([runtime.program("portal"), *args], env=runtime.environment(env), input=input,
                            capture_output=True, text=True, timeout=300, cwd=runtime.cwd)
    if result.returncode != 0:
        if allow_exists and "already exists" in (result.stderr + result.stdout):
            return ""
        raise RuntimeError(f"portal {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def prepare(database_url: str | None, workdir: Path, formats: list[str], runtime: Runtime = TREE) -> Prepared:
    """`portal init`, then an application, a tenant, a user and tokens through the CLI."""
    instance = workdir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    if not database_url:
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    env = portal_env(database_url, instance)
    prepared = Prepared(database_url=database_url, env=env, workdir=workdir)
    portal = partial(cli, runtime=runtime)
    output = portal(env, "init")
    match = re.search(r"password: (\S+)", output)
    if match:
        prepared.admin_password = match.group(1)
    else:
        # A database prepared by an earlier run: make our own admin.
        username = "bench-admin-" + secrets.token_hex(3)
        prepared.admin_password = BENCH_PASSWORD
        portal(env, "create-admin", username, "--password-stdin", input=BENCH_PASSWORD + "\n")
        prepared.notes.append(f"reused database: logged in as {username}")
    prepared.admin_username = "admin" if match else username

    # The benchmark client: confidential, client_credentials, client_secret_post (the
    # default for confidential clients). A database from an earlier run already has
    # "bench": then a fresh "bench-xxxxxx".
    secret = secrets.token_urlsafe(24)  # 32 characters
    application = "bench"
    for attempt in range(2):
        result = subprocess.run([runtime.program("portal"), "create-application", application, "--client-id",
                                 application, "--client-secret", secret, "--grant-type", "client_credentials",
                                 "--scope", "api"],
                                env=runtime.environment(env), capture_output=True, text=True, timeout=120,
                                cwd=runtime.cwd)
        if result.returncode == 0:
            break
        if attempt or not re.search(r"already exists|taken", result.stderr + result.stdout):
            raise RuntimeError(f"portal create-application failed:\n{result.stderr}{result.stdout}")
        application = "bench-" + secrets.token_hex(3)
    prepared.client_id = application
    prepared.client_secret = secret

    portal(env, "create-tenant", TENANT, allow_exists=True)
    portal(env, "create-user", BENCH_USER, "--email", "bench@example.org", "--tenant", TENANT, "--password-stdin",
           input=BENCH_PASSWORD + "\n", allow_exists=True)
    for token_format in formats:
        format_env = dict(env, ACCESS_TOKEN_FORMAT=token_format)
        prepared.tokens[("api", token_format)] = portal(
            format_env, "create-token", "--application", application, "--tenant", f"{TENANT}=READ_TENANT",
            "--scope", "api").strip()
        prepared.tokens[("userinfo", token_format)] = portal(
            format_env, "create-token", "--application", application, "--user", BENCH_USER,
            "--scope", "openid profile email").strip()
    return prepared


# --- scenarios --------------------------------------------------------------------------------

def form(data: dict) -> str:
    return urlencode(data)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + b64encode(f"{client_id}:{secret}".encode()).decode()}


def spec_token(base: str, p: Prepared, token_format: str) -> RequestSpec:
    body = form({"grant_type": "client_credentials", "scope": "api", "client_id": p.client_id,
                 "client_secret": p.client_secret})
    return RequestSpec("POST", base + "/token", dict(FORM), body)


def spec_api_read(base: str, p: Prepared, token_format: str) -> RequestSpec:
    return RequestSpec("GET", f"{base}/api/v1/tenants/{TENANT}",
                       {"Authorization": "Bearer " + p.tokens[("api", token_format)]})


def spec_introspect(base: str, p: Prepared, token_format: str) -> RequestSpec:
    headers = dict(FORM, **basic(p.client_id, p.client_secret))
    return RequestSpec("POST", base + "/introspect", headers, form({"token": p.tokens[("api", token_format)]}))


def spec_userinfo(base: str, p: Prepared, token_format: str) -> RequestSpec:
    return RequestSpec("GET", base + "/userinfo", {"Authorization": "Bearer " + p.tokens[("userinfo", token_format)]})


@dataclass
class Scenario:
    name: str
    label: str
    build: object  # (base_url, Prepared, token_format) -> RequestSpec
    per_format: bool = True  # depends on the access-token format


SCENARIOS = [
    Scenario("token", "POST /token client_credentials", spec_token),
    Scenario("api", "GET /api/v1/tenants/<name> (bearer)", spec_api_read),
    Scenario("introspect", "POST /introspect", spec_introspect),
    Scenario("userinfo", "GET /userinfo (bearer)", spec_userinfo),
]
ADMIN_SCENARIOS = ("admin-list", "admin-search")
ALL_SCENARIO_NAMES = ["ceiling"] + [s.name for s in SCENARIOS] + list(ADMIN_SCENARIOS) + ["purge"]


def probe(spec: RequestSpec) -> None:
    """One request before the load: a 404 means the endpoint has not landed yet."""
    response = requests.request(spec.method, spec.url, headers=spec.headers, data=spec.body or None, timeout=30,
                                allow_redirects=False)
    if response.status_code == 404:
        raise EndpointNotAvailable(f"{spec.method} {spec.url.split('/', 3)[-1]}: 404")
    if response.status_code >= 300:
        raise ScenarioFailed(f"HTTP {response.status_code}: {response.text[:160].strip()}")


@dataclass
class Result:
    variant: str
    scenario: str
    label: str
    token_format: str = ""
    figures: dict | None = None  # rps, p50_ms, p99_ms, requests, errors, generator
    status: str = "ok"  # ok | not available | failed | pending | skipped
    note: str = ""
    ceiling_rps: float | None = None  # the ceiling measured just before this scenario


def measure(spec: RequestSpec, connections: int, duration: float, generator: str) -> dict:
    warmup = min(2.0, max(1.0, duration / 5))
    run_load(spec, connections, warmup, generator)
    return run_load(spec, connections, duration, generator)


def run_scenario(variant: str, name: str, label: str, spec_factory, connections: int, duration: float,
                 generator: str, token_format: str = "") -> Result:
    result = Result(variant, name, label, token_format)
    try:
        spec = spec_factory()
        probe(spec)
        result.figures = measure(spec, connections, duration, generator)
        if result.figures["errors"]:
            result.note = f"{result.figures['errors']} errors"
    except EndpointNotAvailable as error:
        result.status, result.note = "not available", f"endpoint not available ({error})"
    except (ScenarioFailed, RuntimeError, requests.RequestException) as error:
        result.status, result.note = "failed", str(error).splitlines()[0][:200]
    return result


def measure_ceiling(variant: str, server: Server, connections: int, duration: float, generator: str) -> Result:
    return run_scenario(variant, "ceiling", "bare Flask JSON route (ceiling)",
                        lambda: RequestSpec("GET", server.url + "/ping"), connections, duration, generator)


# --- the admin pages at 1,000,000 tokens --------------------------------------------------------

ADMIN_PAGES = {
    # name: (label, path); the search finds one user's tokens among the seeded rows.
    "admin-list": ("GET /admin/tokens (list, logged in)", "/admin/tokens"),
    "admin-search": ("GET /admin/tokens?q=<user> (search)", "/admin/tokens?q=bench-user-123"),
}


def admin_scenarios(server: Server, prepared: Prepared, variant: str, wanted: list[str], duration: float,
                    generator: str) -> list[Result]:
    """The admin token list and a filtered search, logged in through the real form (the
    login helpers are bench/admin_list.py's). Two connections, one per worker: the goal
    is the page's own answer time, not time queued behind other requests."""
    try:
        from bench import admin_list  # noqa: PLC0415 - written with the admin portal
    except ImportError:
        return [Result(variant, name, ADMIN_PAGES[name][0], status="pending",
                       note="pending: bench/admin_list.py not there yet") for name in wanted]
    try:
        session = admin_list.log_in(server.url, admin_list.admin_password(prepared.env))
    except (SystemExit, requests.RequestException, AttributeError) as error:
        return [Result(variant, name, ADMIN_PAGES[name][0], status="failed", note=f"admin login failed: {error}")
                for name in wanted]
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    results = []
    for name in wanted:
        label, path = ADMIN_PAGES[name]
        results.append(run_scenario(variant, name, label,
                                    lambda path=path: RequestSpec("GET", server.url + path, {"Cookie": cookie}),
                                    WORKERS, duration, generator))
    return results


def seed_million(prepared: Prepared, count: int) -> str:
    """Fill the token table with bench/seed_tokens.py (bulk inserts), in a child process."""
    if not (ROOT / "bench" / "seed_tokens.py").exists():
        return "pending: bench/seed_tokens.py not there yet"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench.seed_tokens", "--tokens", str(count)], env=prepared.env,
                            cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"bench.seed_tokens failed:\n{result.stderr[-2000:]}")
    return f"{result.stdout.strip().splitlines()[-1]} (seeded in {time.perf_counter() - started:.0f} s)"


# --- one run ------------------------------------------------------------------------------------

def paired_rounds(rounds: int, variant: str, ceiling_server: Server | None, measure_scenario, connections: int,
                  duration: float, generator: str) -> Result:
    """The ceiling, then the scenario, `rounds` times; the round with the median ratio is
    kept (its own figures and ceiling) and the note lists every round's ratio. On a machine
    whose speed drifts, one pair can land on a slow or fast stretch; the median of several
    pairs is steadier."""
    measured = []
    for _ in range(max(1, rounds)):
        paired = measure_ceiling(variant, ceiling_server, connections, duration, generator) if ceiling_server else None
        result = measure_scenario()
        result.ceiling_rps = paired.figures["rps"] if paired and paired.figures else None
        measured.append(result)
        if result.status != "ok":
            return result
    if len(measured) == 1 or not all(r.figures and r.ceiling_rps for r in measured):
        return measured[-1]

    def ratio(result: Result) -> float:
        return result.figures["rps"] / result.ceiling_rps

    measured.sort(key=ratio)
    median = measured[len(measured) // 2]
    ratios = ", ".join(f"{ratio(r):.2f}" for r in measured)
    median.note = "  ".join(x for x in (median.note, f"median of {len(measured)} rounds ({ratios})") if x)
    return median


def run(*, database_url: str | None, duration: float, scenarios: list[str], variants: list[str],
        formats: list[str], connections: int, generator: str, skip_million: bool, million: int,
        keep: bool = False, rounds: int = 1) -> tuple[Prepared, list[Result], dict]:
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    prepared = prepare(database_url, workdir, formats)
    wanted_admin = [s for s in ADMIN_SCENARIOS if s in scenarios]
    if wanted_admin and not skip_million:
        prepared.notes.append(seed_million(prepared, million))
    elif wanted_admin:
        prepared.notes.append("--skip-million: admin pages measured on the small table")
    results: list[Result] = []
    memory: dict = {}
    try:
        for variant in variants:
            ceiling_server = None
            if "ceiling" in scenarios:
                # Kept up for the whole variant: measured again just before each hot scenario,
                # so a machine whose speed drifts (shared cores) skews both sides of a ratio alike.
                ceiling_server = start_gunicorn("bench.ceiling:app", prepared.env, variant, workdir, "/ping")
            try:
                if ceiling_server:
                    results.append(measure_ceiling(variant, ceiling_server, connections, duration, generator))
                for token_format in formats:
                    env = dict(prepared.env, ACCESS_TOKEN_FORMAT=token_format)
                    server = start_gunicorn("wsgi:app", env, variant, workdir, "/readyz")
                    try:
                        for scenario in SCENARIOS:
                            if scenario.name not in scenarios:
                                continue
                            results.append(paired_rounds(
                                rounds, variant, ceiling_server,
                                lambda scenario=scenario: run_scenario(
                                    variant, scenario.name, scenario.label,
                                    lambda: scenario.build(server.url, prepared, token_format),
                                    connections, duration, generator, token_format),
                                connections, duration, generator))
                        if wanted_admin and token_format == formats[0]:
                            results.extend(admin_scenarios(server, prepared, variant, wanted_admin, duration,
                                                           generator))
                        memory[(variant, f"portal/{token_format}")] = server.worker_rss()
                    finally:
                        server.stop()
            finally:
                if ceiling_server:
                    memory[(variant, "ceiling")] = ceiling_server.worker_rss()
                    ceiling_server.stop()
    finally:
        stop_all()
        if not keep and prepared.kind == "SQLite":
            for path in sorted(workdir.rglob("*"), reverse=True):
                if path.name.endswith((".db", ".db-wal", ".db-shm")):
                    path.unlink(missing_ok=True)
    return prepared, results, memory


def results_json(prepared: Prepared, results: list[Result], memory: dict) -> str:
    return json.dumps({
        "cores": os.cpu_count(),
        "database": prepared.kind,
        "notes": prepared.notes,
        "results": [r.__dict__ for r in results],
        "worker_rss_mb": {f"{k[0]} {k[1]}": v for k, v in memory.items()},
    }, indent=2, default=str)
