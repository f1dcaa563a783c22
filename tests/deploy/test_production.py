"""docs/deployment.md, for real: the installed wheel on PostgreSQL, gunicorn with 4
workers, nginx with TLS in front (see conftest.py). Everything goes through nginx's
https URL unless a test says otherwise. The tests run in file order: every secret they
send or receive is remembered, and the last test looks for each in every log."""

import base64
import hashlib
import html
import http.client
import json
import os
import pwd
import re
import secrets
import signal
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from bench.harness import worker_pids
from tests.conftest import CHROMIUM_ARGS, csrf_token_from, free_port
from tests.deploy.conftest import CHROMIUM, DATABASE_ROLE, SERVICE_USER, WORKERS, run, secrets_in
from tests.second_factor import add_authenticator
from tests.slow_clients import PATIENCE, Tricklers, timed_get

pytestmark = pytest.mark.deploy

SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                    "Strict-Transport-Security")
CONSENT_FORM = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')
INVALID_LOGIN = "Invalid username or password."
CRAFTER = "/crafter-profile/api/1/access_token"


def login(deployment, username: str, password: str) -> requests.Session:
    """A client logged in through the real form (CSRF token and Origin, as a browser sends)."""
    session = deployment.session()
    form = session.get(deployment.url + "/login", timeout=10)
    response = session.post(deployment.url + "/login", allow_redirects=False, timeout=10,
                            data={"username": username, "password": password, "csrf_token": csrf_token_from(form.text)})
    assert response.status_code == 303, f"login as {username}: {response.status_code} {response.text[:500]}"
    deployment.remember_secret(password)
    return session


def create_user(deployment, username: str) -> tuple[str, str]:
    """A user made with the CLI; returns (password, sub)."""
    password = secrets.token_urlsafe(16)
    deployment.remember_secret(password)
    printed = deployment.portal("create-user", username, "--email", f"{username}@example.org", "--password-stdin",
                                input=password + "\n")
    return password, re.search(r"\(sub (\S+)\)", printed).group(1)


def create_application(deployment, name: str, *args: str) -> dict:
    application = json.loads(deployment.portal("create-application", name, *args))
    deployment.remember_secret(application["client_secret"])
    return application


def remember_token_response(deployment, answer: dict) -> None:
    deployment.remember_secret(*(answer[name] for name in ("access_token", "refresh_token", "id_token")
                                 if name in answer))


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --- the front door ------------------------------------------------------------------------

def test_the_installed_wheel_serves_https_through_nginx(deployment):
    where = run([deployment.venv / "bin" / "python", "-c",
                 "import portal, wsgi; print(portal.__file__, wsgi.__file__)"],
                cwd=deployment.workdir, env=deployment.env).stdout
    for path in where.split():
        assert path.startswith(str(deployment.venv)), f"imported from outside the venv: {path}"
    assert stat.S_IMODE(deployment.env_file.stat().st_mode) == 0o600
    # Type=notify in deploy/tessera.service: gunicorn tells systemd it is ready.
    assert "READY=1" in deployment.ready_notice.split("\n"), deployment.ready_notice
    if os.geteuid() == 0:  # the server and the instance folder belong to the unprivileged user
        service_uid = pwd.getpwnam(SERVICE_USER).pw_uid
        for pid in (deployment.gunicorn.pid, *worker_pids(deployment.gunicorn.pid)):
            assert process_uid(pid) == service_uid, f"process {pid} does not run as {SERVICE_USER}"
        owners = {path: path.stat().st_uid for path in (deployment.workdir, *deployment.workdir.rglob("*"))}
        assert set(owners.values()) == {service_uid}, owners

    health = requests.get(deployment.url + "/healthz", verify=str(deployment.cert), timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["Strict-Transport-Security"].startswith("max-age=")
    ready = requests.get(deployment.url + "/readyz", verify=str(deployment.cert), timeout=10)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"

    discovery = requests.get(deployment.url + "/.well-known/openid-configuration", verify=str(deployment.cert),
                             timeout=10).json()
    assert discovery["issuer"] == deployment.url
    assert discovery["token_endpoint"] == deployment.url + "/token"

    # The app sees https (X-Forwarded-Proto): the session cookie is Secure and __Host- prefixed.
    page = requests.get(deployment.url + "/login", verify=str(deployment.cert), timeout=10)
    assert page.status_code == 200
    cookie = page.headers.get("Set-Cookie", "")
    assert cookie.startswith("__Host-") and "Secure" in cookie, cookie

    redirect = requests.get(deployment.http_url + "/login?x=1", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://localhost")
    assert redirect.headers["Location"].endswith("/login?x=1")

    too_big = requests.post(deployment.url + "/token", data={"grant_type": "x" * (2 * 1024 * 1024)},
                            verify=str(deployment.cert), timeout=10)
    assert too_big.status_code == 413


def test_tessera_connects_as_its_own_role_with_a_password(deployment):
    """docs/deployment.md's database: a `tessera` role (not a superuser) that owns the database and
    every table `portal init` made; TCP connections need the role's password."""
    psql = [deployment.postgres.bin_dir / "psql", "-X", "-w", "-A", "-t"]
    wrong = deployment.database_url.replace("postgresql+psycopg://", "postgresql://").replace(
        f"{DATABASE_ROLE}:", f"{DATABASE_ROLE}:not-{secrets.token_hex(4)}", 1)
    refused = subprocess.run([*psql, wrong, "-c", "select 1"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused
    url = deployment.database_url.replace("postgresql+psycopg://", "postgresql://")
    answer = run([*psql, url, "-c", "select current_user, rolsuper, pg_get_userbyid(datdba), "
                  "(select count(*) from pg_tables where schemaname = 'public' and tableowner <> current_user), "
                  "(select count(*) from pg_tables where schemaname = 'public') "
                  "from pg_roles, pg_database where rolname = current_user and datname = current_database()"]).stdout
    role, superuser, owner, foreign_tables, tables = answer.strip().split("|")
    assert (role, superuser, owner, foreign_tables) == (DATABASE_ROLE, "f", DATABASE_ROLE, "0"), answer
    assert int(tables) > 5, answer


# --- a) the first administrator sign-in sets up a passkey (ADMIN_SECOND_FACTOR=required) -----

def spki_hash(cert: Path) -> str:
    """The base64 SHA-256 of the certificate's public key, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    public_key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    return base64.b64encode(hashlib.sha256(public_key.public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()).decode()


def test_the_first_admin_sign_in_sets_up_a_passkey_then_signs_in_without_the_password(deployment, browser):
    """docs/deployment.md's first sign-in: the password `portal init` printed leads to the
    Security page and nowhere else; a passkey is added there and its recovery codes shown
    once; the next sign-in is the passkey alone. As in production, ISSUER is a host name (a
    passkey is bound to it; WebAuthn takes no address) and the page has no certificate error:
    this Chromium trusts our certificate by its key rather than ignoring errors."""
    trusting = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(deployment.cert)}"])
    try:
        page = trusting.new_page()
        page.set_default_timeout(15000)
        add_authenticator(page)
        page.goto(deployment.url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(deployment.admin_password)
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        where = urlsplit(page.url)
        assert (where.path, parse_qs(where.query)) == ("/account/security", {"next": ["/admin"]}), page.url
        expect(page.get_by_role("alert")).to_contain_text("Administrators here sign in with a second factor")
        page.goto(deployment.url + "/admin/tokens")  # nothing else until a factor is set up
        assert urlsplit(page.url).path == "/account/security", page.url

        page.get_by_label("Name of the new passkey").fill("deployment key")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_text("The passkey “deployment key” was added.")).to_be_visible()
        codes = page.locator("#recovery-codes li").all_inner_texts()
        assert len(codes) == 10, codes
        deployment.admin_recovery_codes[:] = codes
        deployment.remember_secret(*codes)
        page.get_by_role("button", name="I saved them: continue").click()
        page.wait_for_url("**/admin/tokens")

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url("**/admin")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    finally:
        trusting.close()

    stored = deployment.postgres.psql(
        "SELECT p.name, p.sign_count > 0 FROM passkeys p JOIN users u ON u.id = p.user_id WHERE u.username = 'admin';"
        "SELECT details FROM audit_events WHERE action = 'login' AND actor = 'admin' ORDER BY id DESC LIMIT 1;",
        database=DATABASE_ROLE).splitlines()
    assert stored[0] == "deployment key|t", stored
    assert json.loads(stored[1])["amr"] in ("hwk mfa", "swk mfa"), stored  # passwordless: the passkey alone


def admin_second_step(deployment, session: requests.Session) -> None:
    """The admin's second step for a client that has no passkey: one of their recovery codes."""
    step = session.get(deployment.url + "/login/second-factor", timeout=10)
    answer = session.post(deployment.url + "/login/second-factor", allow_redirects=False, timeout=10, data={
        "method": "recovery", "code": deployment.admin_recovery_codes.pop(),
        "csrf_token": csrf_token_from(step.text)})
    assert answer.status_code == 303, f"the admin's recovery code: {answer.status_code} {answer.text[:500]}"


# --- b) Chromium: portal login, then an authorization with consent -------------------------

def test_chromium_logs_in_and_completes_an_authorization(deployment, browser):
    # The relying party's address: a loopback port where nothing listens (no DNS, no network).
    callback = f"https://127.0.0.1:{free_port()}/cb"
    client = create_application(deployment, "rp", "--redirect-uri", callback, "--scope", "openid email profile")
    verifier, challenge = pkce_pair()
    context = browser.new_context(ignore_https_errors=True)  # our self-signed certificate
    context.set_default_timeout(15000)
    try:
        page = context.new_page()
        page.goto(deployment.url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(deployment.admin_password)
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        assert urlsplit(page.url).path == "/login/second-factor", f"{page.url}\n{page.content()[:1500]}"
        page.get_by_text("Use a recovery code").click()  # this browser has no passkey
        page.get_by_label("Recovery code").fill(deployment.admin_recovery_codes.pop())
        with page.expect_navigation():
            page.get_by_role("button", name="Use recovery code").click()
        assert urlsplit(page.url).path == "/admin", f"{page.url}\n{page.content()[:1500]}"
        assert page.get_by_role("heading", name="Dashboard").is_visible()

        page.goto(deployment.url + "/authorize?" + urlencode({
            "client_id": client["client_id"], "redirect_uri": callback, "response_type": "code",
            "scope": "openid", "state": "S", "code_challenge": challenge, "code_challenge_method": "S256"}))
        # page.route cannot answer a redirect's target, so we watch the browser's request to
        # the relying party instead (its connection is then refused).
        try:
            with page.expect_request(lambda request: request.url.startswith(callback)) as redirected:
                page.get_by_role("button", name="Allow").click()
        except PlaywrightTimeout:
            pytest.fail(f"no redirect to {callback} after Allow; the browser shows {page.url}:\n"
                        f"{page.content()[:1500]}")
        arrived = redirected.value
        assert urlsplit(arrived.redirected_from.url).path == "/authorize"
    finally:
        context.close()

    query = parse_qs(urlsplit(arrived.url).query)
    assert query["state"] == ["S"] and query["iss"] == [deployment.url] and query["code"][0]
    deployment.remember_secret(query["code"][0])
    # The code is real: the relying party exchanges it (secret in the form body, PKCE verifier).
    issued = requests.post(deployment.url + "/token", verify=str(deployment.cert), timeout=10, data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": callback,
        "code_verifier": verifier, "client_id": client["client_id"], "client_secret": client["client_secret"]})
    assert issued.status_code == 200, issued.text
    assert issued.json()["id_token"]
    remember_token_response(deployment, issued.json())


# --- c) requests-oauthlib: code flow with HTTP Basic, refresh, userinfo --------------------

def test_requests_oauthlib_code_flow_with_http_basic_refresh_and_userinfo(deployment):
    password, sub = create_user(deployment, "alice")
    callback = "https://rp.example/oauthlib"  # never visited: the code is read from the Location header
    client = create_application(deployment, "oauthlib-rp", "--redirect-uri", callback,
                                "--scope", "openid email profile")
    discovery = requests.get(deployment.url + "/.well-known/openid-configuration", verify=str(deployment.cert),
                             timeout=10).json()

    oauth = OAuth2Session(client["client_id"], redirect_uri=callback, scope=["openid", "email", "profile"],
                          pkce="S256")
    oauth.trust_env = False  # see Deployment.session
    oauth.verify = str(deployment.cert)
    sent = []  # the token requests as they went out
    oauth.hooks["response"].append(lambda response, **kwargs: sent.append(response.request))
    authorization_url, _state = oauth.authorization_url(discovery["authorization_endpoint"])

    browser = login(deployment, "alice", password)
    consent = browser.get(authorization_url, timeout=10)
    assert consent.status_code == 200 and 'name="decision" value="allow"' in consent.text, consent.text[:500]
    action = urljoin(deployment.url, html.unescape(CONSENT_FORM.search(consent.text).group(1)))
    allowed = browser.post(action, allow_redirects=False, timeout=10,
                           data={"csrf_token": csrf_token_from(consent.text), "decision": "allow"})
    assert allowed.status_code == 302, f"{allowed.status_code} {allowed.text[:500]}"
    redirect = allowed.headers["Location"]
    assert redirect.startswith(callback + "?"), redirect
    assert parse_qs(urlsplit(redirect).query)["iss"] == [deployment.url]
    deployment.remember_secret(parse_qs(urlsplit(redirect).query)["code"][0])

    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=redirect,
                              client_secret=client["client_secret"], include_client_id=False, timeout=10)
    assert token["access_token"] and token["refresh_token"] and token["id_token"]
    remember_token_response(deployment, token)
    assert sent[-1].headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in sent[-1].body and "code_verifier=" in sent[-1].body

    refreshed = oauth.refresh_token(discovery["token_endpoint"], timeout=10,
                                    auth=HTTPBasicAuth(client["client_id"], client["client_secret"]))
    assert sent[-1].headers["Authorization"].startswith("Basic ")
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotated
    assert refreshed["access_token"] != token["access_token"]
    remember_token_response(deployment, refreshed)

    userinfo = oauth.get(discovery["userinfo_endpoint"], timeout=10)  # the new access token, as Bearer
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == sub

    # The same token in the URL, as GeoNode and GeoServer clients send it.
    in_query = requests.get(f"{deployment.url}/userinfo/?access_token={refreshed['access_token']}",
                            verify=str(deployment.cert), timeout=10)
    assert in_query.status_code == 200 and in_query.json()["sub"] == sub, in_query.text
    geonode = requests.get(f"{deployment.url}/api/o/v4/userinfo?access_token={refreshed['access_token']}",
                           verify=str(deployment.cert), timeout=10)
    assert geonode.status_code == 200 and geonode.json()["sub"] == sub, geonode.text


# --- tokens in URLs, through nginx (their values must reach no log: the last test) --------

def send(deployment, method: str, target: str, json_body=None, base: str = "") -> tuple[int, object]:
    """One request with its target sent exactly as written (requests would turn %61 into a,
    %5F into _): the status and the JSON answer (None when there is none)."""
    parts = urlsplit(base or deployment.url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10,
                                                 context=ssl.create_default_context(cafile=deployment.cert))
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body, headers = (json.dumps(json_body), {"Content-Type": "application/json"}) if json_body else (None, {})
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    try:
        return response.status, json.loads(text) if text else None
    except ValueError:
        return response.status, text[:300]


def test_tokens_in_urls_work_through_nginx(deployment):
    """Every way a client may put a token in a URL: ?access_token=, ?accessTokenId= (a
    master token), a percent-encoded name, a repeated parameter, and Crafter's path forms,
    also spelled with %5F, a percent-encoded value and doubled slashes, and over plain HTTP
    (nginx redirects)."""
    master = deployment.default_tokens["adminconsole"]
    for target in (f"/api/v1/tenants?access_token={master}", f"/api/v1/tenants?accessTokenId={master}",
                   f"/api/v1/tenants?%61ccess_token={master}", f"/api/v1/access-tokens?access%5Ftoken={master}",
                   f"{CRAFTER}/all?accessTokenId={master}"):
        status, answer = send(deployment, "GET", target)
        assert status == 200, f"{target[:40]}: {status} {answer}"
    status, answer = send(deployment, "GET", f"/api/v1/tenants?access_token={master}&access_token={master}")
    assert (status, answer["error"]) == (400, "invalid_request"), answer

    status, created = send(deployment, "POST", f"{CRAFTER}/create?accessTokenId={master}",
                           {"application": "crafterengine", "master": False})
    assert status == 200, created
    value = created["id"]
    deployment.remember_secret(value)
    encoded = f"%{ord(value[0]):02X}{value[1:]}"  # %74sr_...
    for path in (f"{CRAFTER}/{value}", f"/crafter-profile/api/1/access%5Ftoken/{value}", f"{CRAFTER}/{encoded}"):
        status, answer = send(deployment, "GET", f"{path}?accessTokenId={master}")
        assert status == 200 and answer["application"] == "crafterengine", f"{path[:45]}: {status} {answer}"
    status, answer = send(deployment, "GET", f"//crafter-profile//api/1/access_token//{value}?accessTokenId={master}")
    assert status < 500, answer
    status, _ = send(deployment, "GET", f"{CRAFTER}/{value}?accessTokenId={master}", base=deployment.http_url)
    assert status == 301

    status, answer = send(deployment, "POST", f"{CRAFTER}/{value}/delete?accessTokenId={master}")
    assert status == 200, answer
    status, answer = send(deployment, "GET", f"{CRAFTER}/{value}?accessTokenId={master}")
    assert (status, answer) == (200, None)
    status, answer = send(deployment, "POST", f"{CRAFTER}//{value}/delete/?accessTokenId={master}")
    assert status < 500, answer


# --- d) the login throttle across workers ------------------------------------------------

def test_login_throttle_allows_exactly_five_failures_across_workers(deployment):
    create_user(deployment, "throttled")
    answers = []
    for _ in range(6):
        with deployment.session() as session:  # a new client each time: spread over the workers
            form = session.get(deployment.url + "/login", timeout=10)
            answer = session.post(deployment.url + "/login", allow_redirects=False, timeout=10, data={
                "username": "throttled", "password": "not the password", "csrf_token": csrf_token_from(form.text)})
            answers.append((answer.status_code, INVALID_LOGIN in answer.text))
    assert answers == [(200, True)] * 5 + [(429, False)], answers


# --- e) slow clients ---------------------------------------------------------------------

# The bundled default for WEB_CONCURRENCY workers (portal.config.server_threads).
THREADS = WORKERS + 1


def test_slow_clients_do_not_block_normal_requests(deployment):
    """As many slow clients as gunicorn has threads (workers x threads), straight to gunicorn
    (its bundled settings, no proxy), trickling request heads a byte every 0.2 s, as many
    trickling POST bodies (to /healthz: no client authentication, whose failures would be
    throttled); and clients that never close a connection after its answer, ten a second.
    Meanwhile normal requests, straight to gunicorn and through nginx, must answer without
    waiting for a trickler (PATIENCE); and each trickled request, once complete, is
    answered. Two rounds of new slow connections, since which worker accepts which
    connection is up to the kernel."""
    port = int(deployment.gunicorn_url.rsplit(":", 1)[1])
    lingering_request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    probes, answers, lingering = [], [], []
    try:
        for attempt in range(2):
            slow = Tricklers(("127.0.0.1", port), heads=WORKERS * THREADS, bodies=WORKERS * THREADS, post_to="/healthz")
            try:
                time.sleep(0.3)  # let gunicorn take them all before we probe
                end = time.monotonic() + 3.5
                while time.monotonic() < end:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.sendall(lingering_request)
                    lingering.append(sock)
                    probes.append((attempt, "gunicorn", *timed_get(deployment.gunicorn_url)))
                    probes.append((attempt, "nginx", *timed_get(deployment.url, str(deployment.cert))))
                    time.sleep(0.1)
                answers += slow.finish()
            finally:
                slow.close()
    finally:
        for sock in lingering:
            sock.close()
    bad = [probe for probe in probes if probe[2] != 200 or probe[3] >= PATIENCE]
    assert not bad, f"{len(bad)} of {len(probes)} probes slow or failed with slow clients: {bad}"
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    answered = [b"HTTP/1.1 200 OK"] * WORKERS * THREADS + [b"HTTP/1.1 405 METHOD NOT ALLOWED"] * WORKERS * THREADS
    assert statuses == answered * 2, statuses


# --- the purge timer's command ------------------------------------------------------------

def test_purge_expired_runs_with_the_env_file(deployment):
    """What deploy/tessera-purge.service runs: an expired token is purged."""
    value = deployment.portal("create-token", "--application", "crafterengine", "--expires-in", "1").strip()
    deployment.remember_secret(value)
    time.sleep(1.5)
    expired = requests.get(f"{deployment.url}/api/v1/tenants?access_token={value}", verify=str(deployment.cert),
                           timeout=10)
    assert expired.status_code == 401, expired.text
    printed = deployment.portal("purge-expired")
    purged = re.search(r"Purged (\d+) tokens", printed)
    assert purged and int(purged.group(1)) >= 1, printed


# --- systemctl reload: HUP --------------------------------------------------------------------

def test_hup_replaces_every_worker_without_a_failed_request(deployment):
    """tessera.service's ExecReload: gunicorn starts new workers and lets the old ones
    finish. The old ones stop accepting at once, so a request meanwhile waits in the listen
    queue until a new worker has loaded the app (a second or two; longer on a busy
    machine), and is answered: none fails."""
    master = deployment.gunicorn.pid
    old = worker_pids(master)
    assert len(old) == WORKERS, old
    session = deployment.session()
    os.kill(master, signal.SIGHUP)
    answers, deadline = [], time.monotonic() + 90
    while time.monotonic() < deadline:
        started = time.monotonic()
        status = session.get(deployment.url + "/healthz", timeout=60).status_code  # nginx's proxy_read_timeout
        answers.append((status, round(time.monotonic() - started, 1)))
        current = worker_pids(master)
        if len(current) == WORKERS and not current & old:
            break
        time.sleep(0.05)
    assert len(current) == WORKERS and not current & old, f"workers before {old}, now {current}"
    assert {status for status, _seconds in answers} == {200}, answers
    assert deployment.gunicorn.poll() is None


# --- f) a database outage: 503, then recovery ---------------------------------------------

def test_database_outage_answers_503_then_recovers(deployment):
    service = create_application(deployment, "service", "--grant-type", "client_credentials", "--scope", "api")
    admin = login(deployment, "admin", deployment.admin_password)
    admin_second_step(deployment, admin)
    cert = str(deployment.cert)
    master = deployment.default_tokens["adminconsole"]

    def api():
        return requests.get(deployment.url + "/api/v1/tenants", headers={"Authorization": f"Bearer {master}"},
                            verify=cert, timeout=15)

    def token():
        answer = requests.post(deployment.url + "/token", data={"grant_type": "client_credentials"}, verify=cert,
                               auth=(service["client_id"], service["client_secret"]), timeout=15)
        if answer.status_code == 200:
            remember_token_response(deployment, answer.json())
        return answer

    def portal_page():
        return admin.get(deployment.url + "/admin", allow_redirects=False, timeout=15)

    checks = {"GET /api/v1/tenants": (api, "json"), "POST /token": (token, "json"), "GET /admin": (portal_page, "html")}
    for name, (call, _kind) in checks.items():
        answer = call()
        assert answer.status_code == 200, f"{name} before the outage: {answer.status_code} {answer.text[:300]}"

    problems = []
    deployment.postgres.stop("fast")
    try:
        for name, (call, kind) in checks.items():
            problems += outage_problems(name, kind, call())
    finally:
        deployment.postgres.start()

    deadline = time.monotonic() + 30
    while True:
        statuses = {name: call().status_code for name, (call, _kind) in checks.items()}
        if set(statuses.values()) == {200} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if set(statuses.values()) != {200}:
        problems.append(f"not recovered 30 s after PostgreSQL came back: {statuses}")
    assert not problems, "\n".join(problems) + "\n--- gunicorn's log:\n" + deployment.log("gunicorn")


def outage_problems(name: str, kind: str, answer: requests.Response) -> list[str]:
    """What is wrong with an answer given while the database is down."""
    summary = f"{name} during the outage: {answer.status_code} {answer.headers.get('Content-Type')} " \
              f"{answer.text[:120]!r}"
    problems = []
    if answer.status_code != 503:
        problems.append(f"{summary}: not 503")
    if not answer.headers.get("Retry-After"):
        problems.append(f"{summary}: no Retry-After")
    missing = [header for header in SECURITY_HEADERS if header not in answer.headers]
    if missing:
        problems.append(f"{summary}: missing {', '.join(missing)}")
    if kind == "json":
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and body.get("error") and body.get("message")):
            problems.append(f"{summary}: not a JSON body with error and message")
    elif not (answer.headers.get("Content-Type", "").startswith("text/html") and "<html" in answer.text):
        problems.append(f"{summary}: not an HTML page")
    return problems


# --- last: no secret in any log ----------------------------------------------------------

def test_no_secret_in_any_log(deployment):
    """Every secret the tests above sent or received — the default tokens, tokens made by
    the CLI and the APIs, OAuth codes, access, refresh and ID tokens, client secrets,
    passwords, SECRET_KEY, the database password — in none of the logs (nginx's access and
    error logs, gunicorn's, PostgreSQL's), in any spelling. The nginx log shows where the
    tokens were, redacted, with a request id on every line."""
    assert len(deployment.secret_values) >= 10, "the tests above ran (run the whole module)"
    leaks = {name: secrets_in(path.read_text(errors="replace"), deployment.secret_values)
             for name, path in deployment.logs.items() if path.exists()}
    assert not any(leaks.values()), f"secrets in logs: {leaks}"

    access = deployment.logs["nginx-access"].read_text()
    assert f'"GET {CRAFTER}/[REDACTED]?[REDACTED] HTTP/1.1" 200 ' in access, access[-3000:]
    assert f'"POST {CRAFTER}/[REDACTED]/delete?[REDACTED] HTTP/1.1" 200 ' in access
    assert f'"POST {CRAFTER}/create?[REDACTED] HTTP/1.1" 200 ' in access
    assert f'"GET {CRAFTER}/all?[REDACTED] HTTP/1.1" 200 ' in access
    assert f'"GET {CRAFTER}/[REDACTED]?[REDACTED] HTTP/1.1" 301 ' in access  # the plain-HTTP redirect
    assert '"GET /userinfo/?[REDACTED] HTTP/1.1" 200 ' in access
    without_id = [line for line in access.splitlines() if not re.search(r" [0-9a-f]{32}$", line)]
    assert not without_id, without_id
    # The http-level log (combined format, as in Debian's nginx.conf) is not used by Tessera's servers.
    http_level = deployment.logs["nginx-http-level"]
    assert not http_level.exists() or http_level.stat().st_size == 0, http_level.read_text()[:1000]
