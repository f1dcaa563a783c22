"""The production shape, started once for tests/deploy and stopped at the end, even on
failure, following docs/deployment.md: a wheel built from this checkout and installed
into a fresh virtual environment; a throwaway PostgreSQL cluster with a `tessera` role
that logs in with a password and owns the `tessera` database; the settings in an env
file (mode 0600) that every command reads; `portal init`; gunicorn with the bundled
settings (4 workers); nginx terminating TLS in front with deploy/nginx.conf. Nothing of
it runs from the checkout: the server's working directory is a temp folder. When the
tests run as root, Tessera runs as an unprivileged user, as under systemd. The units in
deploy/ themselves are checked by tests/test_deploy_files.py.

Without nginx, openssl, PostgreSQL's initdb or Debian's python3-venv these tests skip with
the reason; REQUIRE_DEPLOY=1 (set by CI) turns the skip into a failure. The browser check
uses the suite's Chromium (tests/conftest.py's `browser`)."""

import glob
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_DEPLOY = os.environ.get("REQUIRE_DEPLOY") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
WORKERS = 4
# Where deploy/nginx.conf writes its access log; the tests write it in their own folder.
NGINX_ACCESS_LOG = "/var/log/nginx/tessera.access.log"
# docs/deployment.md's way to run a command with the env file's settings: `set -a` exports
# every assignment the file makes (the file is sh syntax as well as systemd's EnvironmentFile).
WITH_ENV_FILE = 'set -a; . "$0"; set +a; exec "$@"'
# The database role and name, as in docs/deployment.md.
DATABASE_ROLE = "tessera"
# When the tests run as root, Tessera's commands run as this unprivileged user (docs/deployment.md's
# `runuser -u tessera`; nobody, so that the test adds no user to the machine).
SERVICE_USER = "nobody"
# docs/deployment.md installs with Debian's python3 (python3-venv), which every user may run.
SYSTEM_PYTHON = os.environ.get("DEPLOY_PYTHON", "/usr/bin/python3")


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
    if not os.access(SYSTEM_PYTHON, os.X_OK) or \
            subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, venv"], capture_output=True).returncode != 0:
        return f"{SYSTEM_PYTHON} cannot make a venv (apt-get install python3-venv): the deployment test is skipped"
    if os.geteuid() == 0:
        for user, needed_for in (("postgres", "initdb"), (SERVICE_USER, "Tessera")):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return (f"running as root, and there is no {user} user to run {needed_for} as: "
                        "the deployment test is skipped")
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


def wait_until_up(url: str, process: subprocess.Popen, log: Path, *, verify=True, seconds: float = 90,
                  path: str = "/readyz") -> None:
    """Wait for `path` to answer 200 (releases before 0.3.0 have no /readyz: they pass /healthz)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(url + path, timeout=5, verify=verify).status_code == 200:
                return
        except requests.RequestException:  # still starting
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}{path} did not answer 200 within {seconds} s:\n{tail(log)}")


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

    def init(self, role: str, password: str) -> None:
        """A cluster where only the local socket is trusted (for the postgres superuser) and a
        TCP connection must give its password; then docs/deployment.md's role and database."""
        run([*self.as_postgres, self.bin_dir / "initdb", "-D", self.data, "--auth-local=trust",
             "--auth-host=scram-sha-256", "-U", "postgres", "-E", "UTF8", "--no-sync"], timeout=120)
        self.start()
        # What `createuser --pwprompt tessera` and `createdb --owner tessera tessera` do.
        self.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}';\nCREATE DATABASE {role} OWNER {role};\n")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """SQL as the postgres superuser, over the local socket; rows unaligned, without headers."""
        return run([self.bin_dir / "psql", "-h", self.folder, "-p", self.port, "-U", "postgres", "-d", database,
                    "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql).stdout

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


def write_env_file(path: Path, settings: dict) -> None:
    """docs/deployment.md's env file: KEY=value lines, readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in settings.items())


def with_env_file(env_file: Path, *command, server: bool = False) -> list:
    """The command with the env file's settings, as the service user when we are root: a
    `portal` command as docs/deployment.md runs it (`(set -a; . /etc/tessera/tessera.env; set +a; exec
    runuser -u tessera -- ...)`); the server as systemd starts it, the user changed in place
    (runuser would stay as its parent and turn signals into TERM)."""
    as_user = []
    if os.geteuid() == 0:
        group = grp.getgrgid(pwd.getpwnam(SERVICE_USER).pw_gid).gr_name
        as_user = (["setpriv", f"--reuid={SERVICE_USER}", f"--regid={group}", "--init-groups", "--"] if server
                   else ["runuser", "-u", SERVICE_USER, "--"])
    return ["sh", "-c", WITH_ENV_FILE, env_file, *as_user, *command]


def secret_spellings(value: str) -> set[str]:
    """How a secret could show in a log: as it is, URL-encoded, or (for a long one) its last
    16 characters, which is what remains when a client percent-encodes its first ones."""
    spellings = {value, quote(value, safe=""), quote_plus(value)}
    if len(value) >= 32:
        spellings.add(value[-16:])
    return spellings


def secrets_in(text: str, values: set[str]) -> list[str]:
    """The secrets (shortened) that appear in text in any spelling."""
    return sorted(f"{value[:8]}..." for value in values
                  if any(spelling in text for spelling in secret_spellings(value)))


@dataclass
class Deployment:
    url: str  # https through nginx: what users and clients use
    http_url: str  # nginx's plain-HTTP server (a redirect)
    gunicorn_url: str  # gunicorn directly, no proxy
    cert: Path  # the self-signed certificate: requests verify against it
    env: dict  # the environment commands start with; the settings come from env_file
    env_file: Path
    venv: Path
    workdir: Path
    postgres: Postgres
    database_url: str
    logs: dict
    gunicorn: subprocess.Popen  # the master process itself
    ready_notice: str  # what gunicorn told systemd's notify socket (the unit is Type=notify)
    admin_password: str = ""
    # The admin's recovery codes, saved by the test that sets up their passkey; a client without
    # a passkey (requests) signs in as the admin with one of them.
    admin_recovery_codes: list = field(default_factory=list)
    default_tokens: dict = field(default_factory=dict)
    # Every secret the tests sent or received: none of them may be in a log (test_no_secret_in_any_log).
    secret_values: set = field(default_factory=set)

    def remember_secret(self, *values: str) -> None:
        for value in values:
            # Recovery codes are the shortest: 11 characters.
            assert isinstance(value, str) and len(value) >= 11, f"not a secret worth looking for: {value!r}"
            self.secret_values.add(value)

    def portal(self, *args, input: str | None = None) -> str:
        """`portal ARGS` from the installed wheel, with the env file's settings; returns what it printed."""
        return run(with_env_file(self.env_file, self.venv / "bin" / "portal", *args), cwd=self.workdir,
                   env=self.env, input=input).stdout

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
    """deploy/nginx.conf with our ports, certificate and log folder, included in a minimal
    main config that, like Debian's, sets an http-level access log in the combined format
    (folder/access.log): deploy/nginx.conf's servers must not write to it."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in (("listen 443 ", f"listen {https_port} "), ("listen 80;", f"listen {http_port};"),
                     ("127.0.0.1:8000", upstream), ("/etc/ssl/certs/tessera.pem", str(cert)),
                     ("/etc/ssl/private/tessera.key", str(key)),
                     (NGINX_ACCESS_LOG, str(folder / "tessera.access.log"))):
        assert old in site, f"deploy/nginx.conf no longer contains {old!r}: update the test's substitutions"
        site = site.replace(old, new)
    (folder / "tessera.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text(f"""\
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;  # level error, as in Debian
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


def start_nginx(folder: Path, config: Path) -> subprocess.Popen:
    """nginx in the foreground, in its own process group; its error log is folder/error.log."""
    with open(folder / "stderr.log", "w") as log:
        return subprocess.Popen(
            [find_program("nginx", "/usr/sbin/nginx"), "-p", folder, "-e", folder / "error.log", "-c", config,
             "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def build_venv(wheel: Path, venv: Path) -> None:
    """docs/deployment.md's venv, made by Debian's python3, with the checkout's wheel installed."""
    run([SYSTEM_PYTHON, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q", "install", wheel], timeout=600)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, checkout_wheel):
    reason = missing_tools()
    if reason:
        skip_or_fail(reason)
    folder = tmp_path_factory.mktemp("deploy")  # root's: the env file, the logs
    timings = {}
    started = time.monotonic()

    def lap(name):
        nonlocal started
        timings[name] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    with ExitStack() as cleanup:
        # docs/deployment.md's /opt/tessera and /var/lib/tessera, where the service user can reach them
        # (pytest's temp folder is private to us).
        installed = Path(tempfile.mkdtemp(prefix="tessera-deploy-opt-"))
        cleanup.callback(shutil.rmtree, installed, ignore_errors=True)
        installed.chmod(0o755)
        venv, state = installed / "venv", installed / "state"
        build_venv(checkout_wheel, venv)
        state.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(state, SERVICE_USER)
        workdir = state  # tessera.service's WorkingDirectory: not the checkout
        lap("wheel + venv")

        postgres = Postgres(postgres_bin(), free_port())
        cleanup.callback(postgres.remove)
        database_password = secrets.token_hex(24)
        postgres.init(DATABASE_ROLE, database_password)
        lap("postgres")

        https_port, http_port, gunicorn_port = free_port(), free_port(), free_port()
        # A host name, as users open it: passkeys are bound to ISSUER's host, and WebAuthn takes no address.
        url = f"https://localhost:{https_port}"
        # docs/deployment.md's env file, with the test's ports; the commands start with nothing else but
        # PATH (the venv and the system), HOME and LANG.
        database_url = (f"postgresql+psycopg://{DATABASE_ROLE}:{database_password}@127.0.0.1:{postgres.port}/"
                        f"{DATABASE_ROLE}")
        settings = {
            "DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(32), "ISSUER": url,
            "SESSION_COOKIE_SECURE": "true", "TRUSTED_PROXIES": "1", "TESSERA_INSTANCE_PATH": state,
            "BIND": f"127.0.0.1:{gunicorn_port}", "WEB_CONCURRENCY": WORKERS,
            "ADMIN_SECOND_FACTOR": "required",  # as deploy/tessera.env.example
        }
        env_file = folder / "tessera.env"
        write_env_file(env_file, settings)
        env = {"PATH": f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(state),
               "LANG": "C.UTF-8"}
        init = run(with_env_file(env_file, venv / "bin" / "portal", "init"), cwd=workdir, env=env).stdout
        password = re.search(r"Created admin user 'admin' with password: (\S+)", init)
        assert password, f"portal init printed no admin password:\n{init}"
        tokens = dict(re.findall(r"^\s+(adminconsole|crafterengine|craftersocial)\s+(tsr_\S+)$", init, re.M))
        lap("portal init")

        logs = {"gunicorn": folder / "gunicorn.log", "nginx": folder / "nginx" / "error.log",
                "nginx-access": folder / "nginx" / "tessera.access.log",
                "nginx-http-level": folder / "nginx" / "access.log", "postgres": postgres.folder / "postgres.log"}
        # systemd's side of Type=notify (deploy/tessera.service): a datagram socket gunicorn reports to.
        notify_path = installed / "notify"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cleanup.callback(notify.close)
        notify.bind(str(notify_path))
        notify_path.chmod(0o666)  # the service user sends to it
        with open(logs["gunicorn"], "w") as log:  # the child keeps its own copy of the descriptor
            gunicorn = subprocess.Popen(
                with_env_file(env_file, venv / "bin" / "gunicorn", "-c", "python:portal.gunicorn_config", "wsgi:app",
                              server=True),
                cwd=workdir, env={**env, "NOTIFY_SOCKET": str(notify_path)},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        cleanup.callback(stop_process, gunicorn, signal.SIGQUIT)  # gunicorn's quick shutdown
        gunicorn_url = f"http://127.0.0.1:{gunicorn_port}"
        wait_until_up(gunicorn_url, gunicorn, logs["gunicorn"])
        notify.settimeout(5)
        try:
            ready_notice = notify.recv(4096).decode()
        except TimeoutError:
            ready_notice = ""
        lap("gunicorn")

        nginx_dir = folder / "nginx"
        nginx_dir.mkdir()
        cert, key = make_certificate(nginx_dir)
        config = render_nginx(nginx_dir, https_port=https_port, http_port=http_port,
                              upstream=f"127.0.0.1:{gunicorn_port}", cert=cert, key=key)
        nginx = start_nginx(nginx_dir, config)
        cleanup.callback(stop_process, nginx)
        wait_until_up(url, nginx, logs["nginx"], verify=str(cert), seconds=20)
        lap("nginx")
        print(f"deployment started: {timings}")

        deployment = Deployment(url=url, http_url=f"http://localhost:{http_port}", gunicorn_url=gunicorn_url,
                                cert=cert, env=env, env_file=env_file, venv=venv, workdir=workdir, postgres=postgres,
                                database_url=database_url, logs=logs, gunicorn=gunicorn, ready_notice=ready_notice,
                                admin_password=password.group(1), default_tokens=tokens)
        deployment.remember_secret(database_password, settings["SECRET_KEY"], password.group(1), *tokens.values())
        yield deployment
