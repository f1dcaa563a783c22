"""The README's deployment, for real: the installed wheel on PostgreSQL, gunicorn with 4
workers, nginx with TLS in front (see conftest.py). Everything goes through nginx's
https URL unless a test says otherwise. The tests run in file order; the outage is last."""

import base64
import hashlib
import html
import json
import re
import secrets
import socket
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.conftest import csrf_token_from, free_port
from tests.deploy.conftest import WORKERS, run

pytestmark = pytest.mark.deploy

SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                    "Strict-Transport-Security")
CONSENT_FORM = re.compile(r'<form method="post" action="([^"]+)" class="consent-form">')
INVALID_LOGIN = "Invalid username or password."


def login(deployment, username: str, password: str) -> requests.Session:
    """A client logged in through the real form (CSRF token and Origin, as a browser sends)."""
    session = deployment.session()
    form = session.get(deployment.url + "/login", timeout=10)
    response = session.post(deployment.url + "/login", allow_redirects=False, timeout=10,
                            data={"username": username, "password": password, "csrf_token": csrf_token_from(form.text)})
    assert response.status_code == 303, f"login as {username}: {response.status_code} {response.text[:500]}"
    return session


def create_user(deployment, username: str) -> tuple[str, str]:
    """A user made with the CLI; returns (password, sub)."""
    password = secrets.token_urlsafe(16)
    printed = deployment.portal("create-user", username, "--email", f"{username}@example.org", "--password-stdin",
                                input=password + "\n")
    return password, re.search(r"\(sub (\S+)\)", printed).group(1)


def create_application(deployment, name: str, *args: str) -> dict:
    return json.loads(deployment.portal("create-application", name, *args))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --- the front door ------------------------------------------------------------------------

def test_the_installed_wheel_serves_https_through_nginx(deployment):
    where = run([deployment.venv / "bin" / "python", "-c", "import portal, wsgi; print(portal.__file__, wsgi.__file__)"],
                cwd=deployment.workdir, env=deployment.env).stdout
    for path in where.split():
        assert path.startswith(str(deployment.venv)), f"imported from outside the venv: {path}"

    health = requests.get(deployment.url + "/healthz", verify=str(deployment.cert), timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["Strict-Transport-Security"].startswith("max-age=")

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
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://127.0.0.1")
    assert redirect.headers["Location"].endswith("/login?x=1")

    too_big = requests.post(deployment.url + "/token", data={"grant_type": "x" * (2 * 1024 * 1024)},
                            verify=str(deployment.cert), timeout=10)
    assert too_big.status_code == 413


# --- a) Chromium: portal login, then an authorization with consent -------------------------

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
    # The code is real: the relying party exchanges it (secret in the form body, PKCE verifier).
    issued = requests.post(deployment.url + "/token", verify=str(deployment.cert), timeout=10, data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": callback,
        "code_verifier": verifier, "client_id": client["client_id"], "client_secret": client["client_secret"]})
    assert issued.status_code == 200, issued.text
    assert issued.json()["id_token"]


# --- b) requests-oauthlib: code flow with HTTP Basic, refresh, userinfo --------------------

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

    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=redirect,
                              client_secret=client["client_secret"], include_client_id=False, timeout=10)
    assert token["access_token"] and token["refresh_token"] and token["id_token"]
    assert sent[-1].headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in sent[-1].body and "code_verifier=" in sent[-1].body

    refreshed = oauth.refresh_token(discovery["token_endpoint"], timeout=10,
                                    auth=HTTPBasicAuth(client["client_id"], client["client_secret"]))
    assert sent[-1].headers["Authorization"].startswith("Basic ")
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotated
    assert refreshed["access_token"] != token["access_token"]

    userinfo = oauth.get(discovery["userinfo_endpoint"], timeout=10)  # the new access token, as Bearer
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == sub


# --- c) the login throttle across workers ------------------------------------------------

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


# --- d) slow clients ---------------------------------------------------------------------

def timed_get(url: str, verify) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        status = requests.get(url + "/healthz", verify=verify, timeout=1.5).status_code
    except requests.RequestException as error:
        status = type(error).__name__
    return status, round(time.monotonic() - started, 2)


def test_slow_clients_do_not_block_normal_requests(deployment):
    """As many slow clients as workers, straight to gunicorn (its bundled settings, no
    proxy), each sending a header line every 2 s; meanwhile normal requests, straight to
    gunicorn and through nginx, must answer within a second. Three rounds of new slow
    connections, since which worker accepts which connection is up to the kernel."""
    port = int(deployment.gunicorn_url.rsplit(":", 1)[1])
    probes = []
    for attempt in range(3):
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(WORKERS)]
        try:
            for sock in slow:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.3)  # let gunicorn take them all before we probe
            end, next_line = time.monotonic() + 3.5, time.monotonic() + 2
            while time.monotonic() < end:
                if time.monotonic() >= next_line:
                    for sock in slow:
                        try:
                            sock.sendall(f"X-Slow: {attempt}\r\n".encode())
                        except OSError:  # the server gave up on it: allowed
                            pass
                    next_line += 2
                probes.append((attempt, "gunicorn", *timed_get(deployment.gunicorn_url, True)))
                probes.append((attempt, "nginx", *timed_get(deployment.url, str(deployment.cert))))
                time.sleep(0.2)
        finally:
            for sock in slow:
                sock.close()
    bad = [probe for probe in probes if probe[2] != 200 or probe[3] >= 1.0]
    assert not bad, f"{len(bad)} of {len(probes)} probes slow or failed while {WORKERS} clients trickled: {bad}"


# --- e) a database outage: 503, then recovery ---------------------------------------------

def test_database_outage_answers_503_then_recovers(deployment):
    service = create_application(deployment, "service", "--grant-type", "client_credentials", "--scope", "api")
    admin = login(deployment, "admin", deployment.admin_password)
    cert = str(deployment.cert)
    master = deployment.default_tokens["adminconsole"]

    def api():
        return requests.get(deployment.url + "/api/v1/tenants", headers={"Authorization": f"Bearer {master}"},
                            verify=cert, timeout=15)

    def token():
        return requests.post(deployment.url + "/token", data={"grant_type": "client_credentials"}, verify=cert,
                             auth=(service["client_id"], service["client_secret"]), timeout=15)

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
