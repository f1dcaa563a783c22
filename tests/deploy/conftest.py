"""The production shape, started once for tests/deploy and stopped at the end, even on
failure: a wheel built from this checkout and installed into a fresh virtual
environment, `portal init` on a throwaway PostgreSQL cluster, gunicorn with the bundled
settings (4 workers), and nginx terminating TLS in front with deploy/nginx.conf.
Nothing of it runs from the checkout: the server's working directory is a temp folder.

Without nginx, openssl or PostgreSQL's initdb these tests skip with the reason;
REQUIRE_DEPLOY=1 (set by CI) turns the skip into a failure. The browser check uses the
suite's Chromium (tests/conftest.py's `browser`)."""

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_DEPLOY = os.environ.get("REQUIRE_DEPLOY") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
WORKERS = 4
# Left out of the copy the wheel is built from: local state, caches, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "instance", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".hypothesis")


def skip_or_fail(reason: str):
    if REQUIRE_DEPLOY:
        pytest.fail(f"REQUIRE_DEPLOY=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def find_program(name: str, *places: str) -> str | None:
    return shutil.which(name) or next((p for p in places if os.access(p, os.X_OK)), None)


def postgres_bin() -> Path | None:
    """PG_BIN, or the newest Debian PostgreSQL, or initdb on PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    initdb = shutil.which("initdb")
    candidates.append(os.path.dirname(initdb) if initdb else "")
    return next((Path(c) for c in candidates if c and os.access(Path(c) / "initdb", os.X_OK)), None)


def missing_tools() -> str | None:
    if not find_program("nginx", "/usr/sbin/nginx"):
        return "nginx is not installed (apt-get install nginx): the deployment test is skipped"
    if not find_program("openssl"):
        return "openssl is not installed: the deployment test is skipped"
    if not postgres_bin():
        return "PostgreSQL's initdb was not found (apt-get install postgresql): the deployment test is skipped"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run initdb as: the deployment test is skipped"
    return None


def run(command: list, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} was not written)"


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process, wait a bounded time, then kill its whole process group."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): its workers too
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, *, verify=True, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(url + "/healthz", timeout=5, verify=verify).status_code == 200:
                return
        except requests.RequestException:  # still starting
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}/healthz did not answer 200 within {seconds} s:\n{tail(log)}")


class Postgres:
    """A throwaway cluster in its own folder, on its own port; run as the postgres user
    when we are root (initdb refuses root)."""

    def __init__(self, bin_dir: Path, port: int):
        self.bin_dir = bin_dir
        self.port = port
        # Not under pytest's temp folder: that one is private to root, and the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="tessera-deploy-pg-"))
        self.data = self.folder / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")

    def ctl(self, *args, timeout: float = 60) -> None:
        run([*self.as_postgres, self.bin_dir / "pg_ctl", "-D", self.data, *args], timeout=timeout,
            stdin=subprocess.DEVNULL)

    def init(self) -> None:
        run([*self.as_postgres, self.bin_dir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"], timeout=120)
        self.start()
        run([self.bin_dir / "createdb", "-h", self.folder, "-p", self.port, "-U", "postgres", "tessera"])

    def start(self) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-l", self.folder / "postgres.log", "-o", options, "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "-t", "60", "stop", timeout=90)

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except (AssertionError, subprocess.TimeoutExpired):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Deployment:
    url: str  # https through nginx: what users and clients use
    http_url: str  # nginx's plain-HTTP server (a redirect)
    gunicorn_url: str  # gunicorn directly, no proxy
    cert: Path  # the self-signed certificate: requests verify against it
    env: dict
    venv: Path
    workdir: Path
    postgres: Postgres
    logs: dict
    admin_password: str = ""
    default_tokens: dict = field(default_factory=dict)

    def portal(self, *args, input: str | None = None) -> str:
        """`portal ARGS` from the installed wheel; returns what it printed."""
        return run([self.venv / "bin" / "portal", *args], cwd=self.workdir, env=self.env, input=input).stdout

    def session(self) -> requests.Session:
        """A client that checks our certificate and sends the Origin a browser would."""
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE, if set, replaces session.verify
        session.verify = str(self.cert)
        session.headers["Origin"] = self.url
        return session

    def log(self, name: str) -> str:
        return tail(self.logs[name])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "tessera.pem", folder / "tessera.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", key, "-out", cert,
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    return cert, key


def render_nginx(folder: Path, *, https_port: int, http_port: int, upstream: str, cert: Path, key: Path) -> Path:
    """deploy/nginx.conf with our ports and certificate, wrapped in a minimal main config."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in (("listen 443 ", f"listen {https_port} "), ("listen 80;", f"listen {http_port};"),
                     ("127.0.0.1:8000", upstream), ("/etc/ssl/certs/tessera.pem", str(cert)),
                     ("/etc/ssl/private/tessera.key", str(key))):
        assert old in site, f"deploy/nginx.conf no longer contains {old!r}: update the test's substitutions"
        site = site.replace(old, new)
    (folder / "tessera.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text(f"""\
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/tessera.conf;
}}
""")
    return main


def build_venv(folder: Path) -> Path:
    """A wheel of the checkout (built from a clean copy), installed into a new venv."""
    source, dist, venv = folder / "source", folder / "dist", folder / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE, symlinks=True)
    pip = ["-m", "pip", "--disable-pip-version-check", "-q"]
    run([sys.executable, *pip, "wheel", "--no-deps", "-w", dist, source], timeout=300)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", *pip, "install", wheels[0]], timeout=600)
    return venv


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    reason = missing_tools()
    if reason:
        skip_or_fail(reason)
    folder = tmp_path_factory.mktemp("deploy")
    workdir = folder / "work"  # the operator's directory: not the checkout
    workdir.mkdir()
    timings = {}
    started = time.monotonic()

    def lap(name):
        nonlocal started
        timings[name] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    with ExitStack() as cleanup:
        for name in ("source", "dist", "venv"):  # big; the logs stay for a look afterwards
            cleanup.callback(shutil.rmtree, folder / name, ignore_errors=True)
        venv = build_venv(folder)
        lap("wheel + venv")

        postgres = Postgres(postgres_bin(), free_port())
        cleanup.callback(postgres.remove)
        postgres.init()
        lap("postgres")

        https_port, http_port, gunicorn_port = free_port(), free_port(), free_port()
        url = f"https://127.0.0.1:{https_port}"
        # The README's environment; PATH only reaches the venv and the system.
        env = {
            "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/tessera",
            "SECRET_KEY": secrets.token_hex(32), "ISSUER": url, "SESSION_COOKIE_SECURE": "true",
            "TRUSTED_PROXIES": "1",
        }
        init = run([venv / "bin" / "portal", "init"], cwd=workdir, env=env).stdout
        password = re.search(r"Created admin user 'admin' with password: (\S+)", init)
        assert password, f"portal init printed no admin password:\n{init}"
        tokens = dict(re.findall(r"^\s+(adminconsole|crafterengine|craftersocial)\s+(tsr_\S+)$", init, re.M))
        lap("portal init")

        logs = {"gunicorn": folder / "gunicorn.log", "nginx": folder / "nginx" / "error.log",
                "nginx-access": folder / "nginx" / "access.log", "postgres": postgres.folder / "postgres.log"}
        with open(logs["gunicorn"], "w") as log:  # the child keeps its own copy of the descriptor
            gunicorn = subprocess.Popen(
                [venv / "bin" / "gunicorn", "-c", "python:portal.gunicorn_config", "wsgi:app"],
                cwd=workdir, env={**env, "BIND": f"127.0.0.1:{gunicorn_port}", "WEB_CONCURRENCY": str(WORKERS)},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        cleanup.callback(stop_process, gunicorn, signal.SIGQUIT)  # gunicorn's quick shutdown
        gunicorn_url = f"http://127.0.0.1:{gunicorn_port}"
        wait_until_up(gunicorn_url, gunicorn, logs["gunicorn"])
        lap("gunicorn")

        nginx_dir = folder / "nginx"
        nginx_dir.mkdir()
        cert, key = make_certificate(nginx_dir)
        config = render_nginx(nginx_dir, https_port=https_port, http_port=http_port,
                              upstream=f"127.0.0.1:{gunicorn_port}", cert=cert, key=key)
        nginx_bin = find_program("nginx", "/usr/sbin/nginx")
        with open(nginx_dir / "stderr.log", "w") as log:
            nginx = subprocess.Popen(
                [nginx_bin, "-p", nginx_dir, "-e", logs["nginx"], "-c", config, "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        cleanup.callback(stop_process, nginx)
        wait_until_up(url, nginx, logs["nginx"], verify=str(cert), seconds=20)
        lap("nginx")
        print(f"deployment started: {timings}")

        yield Deployment(url=url, http_url=f"http://127.0.0.1:{http_port}", gunicorn_url=gunicorn_url, cert=cert,
                         env=env, venv=venv, workdir=workdir, postgres=postgres, logs=logs,
                         admin_password=password.group(1), default_tokens=tokens)
