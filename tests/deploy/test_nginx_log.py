"""deploy/nginx.conf's access log, on its own: nginx as shipped (TLS, both servers) in
front of a small upstream that records what it receives. Every way a client can put a
token in a URL is sent with a fresh value; the value must not reach the log, in any
spelling, and the line must show where it was. Quick (no wheel, no database); the full
deployment (test_production.py) checks its logs for every secret too."""

import http.client
import re
import secrets
import ssl
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.deploy.conftest import (find_program, make_certificate, render_nginx, secrets_in, skip_or_fail,
                                   start_nginx, stop_process, wait_until_up)

pytestmark = pytest.mark.deploy

CRAFTER = "/crafter-profile/api/1/access_token"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


class Recorder(BaseHTTPRequestHandler):
    """Answers 200 to anything and keeps (path, X-Request-ID) of each request."""

    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.path, self.headers.get("X-Request-ID")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, *args):  # quiet
        pass


@dataclass
class Proxy:
    https_port: int
    http_port: int
    cert: Path
    log: Path  # deploy/nginx.conf's access log
    http_level_log: Path  # the main config's combined-format log
    seen: list = field(default_factory=list)  # what the upstream received

    def send(self, method: str, target: str, *, tls: bool = True, headers: dict | None = None) -> tuple[int, str]:
        """The request with its target exactly as written; returns the status and the log
        lines it added."""
        before = self.log.stat().st_size if self.log.exists() else 0
        if tls:
            connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=10,
                                                     context=ssl.create_default_context(cafile=self.cert))
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            connection.request(method, target, headers=headers or {})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        # nginx writes a line after its answer has gone out: wait for this request's. The
        # start-up probe's line (GET /readyz) may land after `before` was read: not ours.
        deadline = time.monotonic() + 5
        while True:
            with open(self.log, errors="replace") as log:
                log.seek(before)
                written = log.read()
            lines = "".join(line for line in written.splitlines(keepends=True) if '"GET /readyz ' not in line)
            if (lines and written.endswith("\n")) or time.monotonic() > deadline:
                return response.status, lines
            time.sleep(0.01)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    for program in ("nginx", "openssl"):
        if not find_program(program, f"/usr/sbin/{program}"):
            skip_or_fail(f"{program} is not installed: the nginx log test is skipped")
    folder = tmp_path_factory.mktemp("nginx-log")
    with ExitStack() as cleanup:
        upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        upstream.seen = []
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        cleanup.callback(upstream.server_close)
        cleanup.callback(upstream.shutdown)
        cert, key = make_certificate(folder)
        https_port, http_port = free_port(), free_port()
        config = render_nginx(folder, https_port=https_port, http_port=http_port,
                              upstream=f"127.0.0.1:{upstream.server_address[1]}", cert=cert, key=key)
        nginx = start_nginx(folder, config)
        cleanup.callback(stop_process, nginx)
        wait_until_up(f"https://127.0.0.1:{https_port}", nginx, folder / "error.log", verify=str(cert), seconds=20)
        yield Proxy(https_port=https_port, http_port=http_port, cert=cert, log=folder / "tessera.access.log",
                    http_level_log=folder / "access.log", seen=upstream.seen)


def token_value() -> str:
    return "tsr_" + secrets.token_urlsafe(32)


# (method, target with {v} for a token value, the request as the log must show it)
URL_TOKENS = [
    ("GET", "/userinfo?access_token={v}", "GET /userinfo?[REDACTED]"),
    ("GET", "/userinfo/?access_token={v}", "GET /userinfo/?[REDACTED]"),
    ("GET", "/api/v1/tenants?accessTokenId={v}", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?%61ccess_token={v}", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?access%5Ftoken={v}&x=1", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?x=1&access_token={v}&access_token={v}", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?access_token=%74{tail}", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?{v}", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", "/api/v1/tenants?access_token={v}#x", "GET /api/v1/tenants?[REDACTED]"),
    ("GET", f"{CRAFTER}/{{v}}", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", f"{CRAFTER}/{{v}}?accessTokenId={{v}}", f"GET {CRAFTER}/[REDACTED]?[REDACTED]"),
    ("POST", f"{CRAFTER}/{{v}}/delete?accessTokenId={{v}}", f"POST {CRAFTER}/[REDACTED]/delete?[REDACTED]"),
    ("POST", f"{CRAFTER}/{{v}}/delete/", f"POST {CRAFTER}/[REDACTED]/delete"),
    ("GET", "/crafter-profile/api/1/access%5Ftoken/{v}", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", "/crafter%2Dprofile/api/1/access_token/{v}", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", f"{CRAFTER}/%74{{tail}}", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", f"/{CRAFTER}//{{v}}", f"GET {CRAFTER}/[REDACTED]"),
    ("POST", "//crafter-profile//api/1/access_token//{v}//delete", f"POST {CRAFTER}/[REDACTED]/delete"),
    ("GET", f"{CRAFTER}/x/../{{v}}", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", "/Crafter-Profile/API/1/Access_Token/{v}", "GET /Crafter-Profile/API/1/Access_Token/[REDACTED]"),
    ("GET", f"{CRAFTER}/{{v}}%0Aend", f"GET {CRAFTER}/[REDACTED]"),
    ("GET", f"{CRAFTER}/{{v}}%20x", f"GET {CRAFTER}/[REDACTED]"),
]


@pytest.mark.parametrize(("method", "target", "logged"), URL_TOKENS, ids=[case[1] for case in URL_TOKENS])
def test_a_token_in_the_url_is_not_logged(proxy, method, target, logged):
    value = token_value()
    status, lines = proxy.send(method, target.format(v=value, tail=value[1:]))
    assert status == 200
    assert not secrets_in(lines, {value}), lines
    assert f'"{logged} HTTP/1.1" 200 ' in lines, lines


def test_plain_http_redirect_logs_no_token(proxy):
    value = token_value()
    status, lines = proxy.send("GET", f"{CRAFTER}/{value}?accessTokenId={value}", tls=False)
    assert status == 301
    assert not secrets_in(lines, {value}), lines
    assert f'"GET {CRAFTER}/[REDACTED]?[REDACTED] HTTP/1.1" 301 ' in lines, lines


@pytest.mark.parametrize("name", ["create", "all", "create/", "all/"])
def test_crafter_names_that_are_not_tokens_are_logged(proxy, name):
    status, lines = proxy.send("GET", f"{CRAFTER}/{name}?accessTokenId={token_value()}")
    assert status == 200
    assert f'"GET {CRAFTER}/{name}?[REDACTED] HTTP/1.1" 200 ' in lines, lines


def test_the_line_has_time_status_bytes_duration_and_no_referer(proxy):
    referer = f"https://other.example/page?access_token={token_value()}"
    status, lines = proxy.send("GET", "/healthz", headers={"Referer": referer, "User-Agent": "probe/1"})
    assert status == 200
    match = re.fullmatch(r'127\.0\.0\.1 \[(\S+)\] "GET /healthz HTTP/1\.1" 200 2 (\d+\.\d{3}) "probe/1" (\S+)\n',
                         lines)
    assert match, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", match.group(1)), match.group(1)
    assert REQUEST_ID.fullmatch(match.group(3))
    assert "other.example" not in lines


def test_gunicorn_gets_the_request_id_nginx_logs(proxy):
    """X-Request-ID reaches the upstream, the same as in nginx's line; a client's own is replaced."""
    status, lines = proxy.send("GET", "/api/v1/tenants?request=1", headers={"X-Request-ID": "from-the-client"})
    assert status == 200
    logged = lines.split()[-1]
    assert REQUEST_ID.fullmatch(logged), lines
    assert proxy.seen[-1] == ("/api/v1/tenants?request=1", logged)


def test_the_http_level_log_stays_empty(proxy):
    """deploy/nginx.conf's servers replace the main config's combined-format log (Debian's
    nginx.conf has one) with their own."""
    proxy.send("GET", f"/userinfo?access_token={token_value()}")
    proxy.send("GET", f"/userinfo?access_token={token_value()}", tls=False)
    assert not proxy.http_level_log.exists() or proxy.http_level_log.stat().st_size == 0


def test_a_quote_in_a_field_cannot_forge_a_field(proxy):
    """nginx escapes quotes and backslashes in the user agent."""
    status, lines = proxy.send("GET", "/healthz", headers={"User-Agent": 'a" 200 "b\\'})
    assert status == 200
    assert '"a\\x22 200 \\x22b\\x5C"' in lines, lines
