"""End to end against a real gunicorn: `make run`, `portal init`, the access log."""

import http.client
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from tests.conftest import ROOT, csrf_token_from, free_port


def login_session(server, username="admin", password=None) -> requests.Session:
    session = requests.Session()
    token = csrf_token_from(session.get(server.url + "/login").text)
    response = session.post(server.url + "/login", allow_redirects=False,
                            data={"username": username, "password": password or server.admin_password,
                                  "csrf_token": token})
    assert response.status_code == 303, response.text
    return session


def test_init_prints_secrets_once_and_is_safe_to_run_again(live_server):
    assert live_server.admin_password
    assert set(live_server.default_tokens) == {"adminconsole", "crafterengine", "craftersocial"}
    again = live_server.cli("init")
    assert "password" not in again.stdout and "tsr_" not in again.stdout
    assert "Tessera is initialised." in again.stdout


def test_healthz_and_trailing_slashes(live_server):
    assert requests.get(live_server.url + "/healthz").json()["status"] == "ok"
    assert requests.get(live_server.url + "/healthz/").status_code == 200
    assert requests.get(live_server.url + "/login/").status_code == 200


def test_printed_admin_password_logs_in(live_server):
    session = login_session(live_server)
    page = session.get(live_server.url + "/admin")
    assert page.status_code == 200 and "Dashboard" in page.text


def test_access_log_never_shows_a_url_token(live_server):
    secret = "tsr_SECRET" + os.urandom(8).hex()
    with_semicolon = "legacy;value;" + os.urandom(8).hex()
    requests.get(live_server.url + f"/healthz?access_token={secret}")
    requests.get(live_server.url + f"/login?accessTokenId={secret}&x=1")
    # Names the application decodes before it reads them, and a value with `;` in it, sent
    # as typed (requests would normalise %61 to a).
    connection = http.client.HTTPConnection(live_server.url.removeprefix("http://"), timeout=10)
    for query in (f"%61ccess_token={secret}", f"access%5Ftoken={secret}", f"accessToken%49d={secret}",
                  f"x=1&access_token={with_semicolon}"):
        connection.request("GET", "/api/v1/tenants?" + query)
        response = connection.getresponse()
        # The application decoded the name and read the value as a token (an unknown one).
        assert response.status == 401 and b"invalid_token" in response.read()
    connection.close()
    time.sleep(0.5)
    log = live_server.log()
    assert "access_token=[REDACTED]" in log and "accessTokenId=[REDACTED]" in log
    assert "%61ccess_token=[REDACTED]" in log and "accessToken%49d=[REDACTED]" in log
    assert secret not in log and "value;" not in log


def test_errors_are_pages_or_json_never_tracebacks(live_server):
    html = requests.get(live_server.url + "/no-such-page", headers={"Accept": "text/html"})
    assert html.status_code == 404 and "<h1>404" in html.text and "Traceback" not in html.text
    api = requests.get(live_server.url + "/api/v1/no-such-resource")
    assert api.status_code in (401, 404) and api.headers["Content-Type"].startswith("application/json")
    assert "error" in api.json()


@pytest.fixture
def make_run(tmp_path):
    """`make run` as a user types it, on a fresh instance folder and a free port."""
    port = free_port()
    env = {**os.environ, "TESSERA_INSTANCE_PATH": str(tmp_path / "instance"), "BIND": f"127.0.0.1:{port}"}
    env.pop("DATABASE_URL", None)
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/readyz", timeout=3).status_code == 200:
                    break
            except requests.RequestException:  # not up yet, or slow to answer under load
                time.sleep(0.3)
        else:
            pytest.fail("make run did not serve in time:\n" + log_path.read_text())
        yield url, log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_make_run_serves_the_login_page_and_the_printed_password_logs_in_in_a_browser(make_run, page):
    url, log_path = make_run
    password = re.search(r"password: (\S+)", log_path.read_text()).group(1)
    page.goto(url + "/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.url.endswith("/admin")
    page.get_by_role("button", name="Log out admin").click()
    page.get_by_role("heading", name="Log in").wait_for()
    page.goto(url + "/admin")
    assert "/login" in page.url


def test_wrong_password_in_the_browser_gets_the_generic_message(live_server, page):
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Invalid username or password.").wait_for()


def test_slow_clients_do_not_stop_the_service(live_server_factory):
    """As many clients as workers trickle header lines; a normal request still answers at
    once (sync workers were each held until gunicorn's 30 s timeout)."""
    import socket
    from urllib.parse import urlsplit

    server = live_server_factory(workers=2)
    address = (urlsplit(server.url).hostname, urlsplit(server.url).port)
    slow = [socket.create_connection(address, timeout=5) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for sock in slow:
                sock.sendall(b"X-Trickle: 1\r\n")  # never ends its head
            started = time.monotonic()
            response = requests.get(server.url + "/healthz", timeout=5)
            assert response.status_code == 200 and time.monotonic() - started < 1.0
            time.sleep(1)
    finally:
        for sock in slow:
            sock.close()


def raw_request(server, request_head: bytes) -> tuple[int, dict]:
    """Send bytes as they are; return the status and the JSON body of the answer."""
    import json
    import socket
    from urllib.parse import urlsplit

    address = (urlsplit(server.url).hostname, urlsplit(server.url).port)
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request_head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head, head
    return int(head.split()[1]), json.loads(body)


def test_requests_gunicorn_refuses_itself_get_json_errors_and_no_secret_in_the_log(live_server):
    secret = "tsr_GUNI" + os.urandom(8).hex()
    status, body = raw_request(live_server, b"GET /healthz?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and body["error"] == "uri_too_long" and body["message"]
    status, body = raw_request(live_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
    assert status in (400, 431) and body["error"] in ("invalid_request", "request_header_fields_too_large")
    status, body = raw_request(live_server, f"GET /userinfo?access_token={secret} HTTP/9.9z\r\n\r\n".encode())
    assert status == 400 and body["error"] == "invalid_request" and secret not in body["message"]
    time.sleep(0.5)
    assert secret not in live_server.log()
