"""End to end against a real gunicorn: `make run`, `portal init`, the access log."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests

from bench.harness import workers_cpu_seconds
from tests.conftest import ROOT, csrf_token_from, free_port
from tests.slow_clients import PATIENCE, Tricklers, timed_get, whole_answer


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


def server_address(server) -> tuple[str, int]:
    return urlsplit(server.url).hostname, urlsplit(server.url).port


def test_slow_clients_do_not_stop_the_service(live_server_factory):
    """As many clients as the server has threads (workers x threads) trickle their request
    heads, and as many others their bodies; normal requests still answer without waiting.
    Each trickled request, once complete, is answered too. (With gunicorn's own worker each
    held a thread while it trickled, and normal requests waited whenever the kernel gave one
    worker more of them than it had threads.)"""
    server = live_server_factory(workers=2, extra_env={"THREADS": "3"})
    slow = Tricklers(server_address(server), heads=2 * 3, bodies=2 * 3, post_to="/token")
    try:
        time.sleep(0.5)  # every slow connection accepted and started
        probes = []
        for _ in range(15):
            probes.append(timed_get(server.url))
            time.sleep(0.2)
        answers = slow.finish()
    finally:
        slow.close()
    assert [probe for probe in probes if probe[0] != 200 or probe[1] >= PATIENCE] == [], probes
    # The GETs' answers, and the POSTs': their bodies were read (the clients they name do not exist).
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == ([b"HTTP/1.1 200 OK"] * 6
                                                                    + [b"HTTP/1.1 400 BAD REQUEST"] * 6), answers
    assert all(b'"invalid_client"' in answer for answer in answers[6:]), answers


def test_a_half_sent_request_keeps_no_worker_busy_while_it_waits(live_server_factory):
    """Clients that send half a request head, then nothing for a while: the workers wait for
    the rest without working, and answer each request once it is complete. (Up to 0.4.1 the
    bytes that had arrived stayed in the socket, so the worker's event loop woke again at
    once, and again: four such clients kept both workers busy, about two CPU seconds a
    second.) CPU time, not wall time: a busy machine does not change it."""
    server = live_server_factory(workers=2)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    clients = [socket.create_connection(server_address(server), timeout=10) for _ in range(4)]
    try:
        for sock in clients:
            sock.sendall(head)
        time.sleep(0.5)  # each accepted and waiting
        before = workers_cpu_seconds(server.process.pid)
        time.sleep(2)
        busy = workers_cpu_seconds(server.process.pid) - before
        for sock in clients:
            sock.sendall(b"Connection: close\r\n\r\n")
        answers = [whole_answer(sock) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    assert busy < 0.5, f"the workers used {busy:.2f} CPU seconds in 2 s waiting for four requests"
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers), answers


def test_a_request_that_does_not_arrive_in_time_is_dropped(live_server_factory):
    """gunicorn's `timeout` (30 s; 3 here) bounds how long a request may take to arrive: then
    the connection is closed without an answer."""
    server = live_server_factory(workers=1, extra_env={"GUNICORN_CMD_ARGS": "--timeout 3"})
    slow = Tricklers(server_address(server), heads=1, bodies=1, post_to="/token")
    try:
        time.sleep(5)
        assert slow.finish() == [b"", b""]
    finally:
        slow.close()


def test_clients_that_keep_their_connection_open_after_the_answer_stall_nothing(live_server_factory):
    """Clients that read an answer that ends the connection and never close their side. gunicorn
    27 waits up to 2 s for each to close, in the worker's event loop (10 such clients stalled
    one worker for 20 s): Tessera's worker waits in the event loop's poller instead."""
    server = live_server_factory(workers=1)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    lingering = []
    try:
        for _ in range(10):
            sock = socket.create_connection(server_address(server), timeout=5)
            sock.sendall(request)
            lingering.append(sock)
        probes = [timed_get(server.url) for _ in range(5)]
        answers = [b"".join(iter(lambda sock=sock: sock.recv(65536), b"")) for sock in lingering]
    finally:
        for sock in lingering:
            sock.close()
    assert [probe for probe in probes if probe[0] != 200 or probe[1] >= PATIENCE] == [], probes
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers), answers


def test_pipelined_and_kept_alive_requests_are_answered(live_server):
    """Requests that arrive together (a client that pipelines) or one after the other on one
    connection: each is answered, none waits for bytes that gunicorn has already read."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(server_address(live_server), timeout=5) as sock:
        sock.sendall(request * 2 + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer
    with requests.Session() as session:
        assert [session.get(live_server.url + "/healthz", timeout=5).status_code for _ in range(3)] == [200] * 3


def raw_request(server, request_head: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are; return the status, the JSON body and the whole answer."""
    with socket.create_connection(server_address(server), timeout=10) as sock:
        sock.sendall(request_head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head and f"Content-Length: {len(body)}".encode() in head, answer
    return int(head.split()[1]), json.loads(body), answer


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_requests_gunicorn_refuses_itself_get_json_errors_and_no_secret_in_the_log(live_server, live_server_factory,
                                                                                     worker_class):
    """gunicorn answers these before the application sees them; Tessera's workers answer in
    JSON, quoting nothing of the request (gunicorn's HTML page quotes the refused line). This
    also guards the workers' use of gunicorn's Worker.handle_error against a gunicorn upgrade."""
    server = live_server if worker_class == "gthread" else live_server_factory(workers=1,
                                                                                extra_env={"WORKER_CLASS": "sync"})
    secret = "tsr_GUNI" + os.urandom(8).hex()
    status, body, _ = raw_request(server, b"GET /healthz?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (414, {"error": "uri_too_long", "message": "URI Too Long"})
    status, body, _ = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
    assert (status, body) == (431, {"error": "request_header_fields_too_large",
                                    "message": "Request Header Fields Too Large"})
    for refused in (f"GET /userinfo?access_token={secret} HTTP/9.9z\r\n\r\n",
                    f"GET /userinfo HTTP/1.1\r\nHost: x\r\nBearer {secret}\r\n\r\n"):
        status, body, answer = raw_request(server, refused.encode())
        assert (status, body) == (400, {"error": "invalid_request", "message": "Bad Request"})
        assert secret.encode() not in answer
    time.sleep(0.5)
    assert "Invalid HTTP Version" in server.log() and f"access_token={secret}" not in server.log()
