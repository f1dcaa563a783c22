"""Tessera's gunicorn workers (portal.gunicorn_workers), the parts that need no server; the
behaviour against a real gunicorn is in tests/test_live.py."""

import json
import os
import subprocess

import pytest

from portal.gunicorn_workers import REQUEST_WINDOW, HeldAnswer, json_error_answer, request_arrived
from tests.conftest import ROOT, VENV_BIN

GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST_HEAD = b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
UPLOAD_HEAD = POST_HEAD.replace(b"10", b"1000000")


@pytest.mark.parametrize("data, arrived", [
    (b"", False),
    (GET[:-1], False),
    (GET, True),
    (GET + b"GET /half", True),  # a pipelined request behind it: the first one is there
    (POST_HEAD, False),
    (POST_HEAD + b"123456789", False),
    (POST_HEAD + b"1234567890", True),
    (POST_HEAD.replace(b"Content-Length", b"content-LENGTH") + b"1234", False),
    # Bodies gunicorn reads as they come, or refuses: no waiting for them.
    (POST_HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"), True),
    (POST_HEAD.replace(b"Content-Length: 10", b"Transfer-Encoding: chunked"), True),
    (POST_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Length: 11\r\n\r\n"), True),
    (POST_HEAD.replace(b"10", b"1x"), True),
    # Large: a thread reads the rest, or gunicorn refuses the head.
    (b"GET /" + b"a" * REQUEST_WINDOW, True),
    (UPLOAD_HEAD + b"a" * (REQUEST_WINDOW - len(UPLOAD_HEAD) - 1), False),
    (UPLOAD_HEAD + b"a" * (REQUEST_WINDOW - len(UPLOAD_HEAD)), True),
], ids=lambda value: value[:60].decode() if isinstance(value, bytes) else None)
def test_a_request_has_arrived_when_its_head_and_its_announced_body_have(data, arrived):
    assert request_arrived(data) is arrived


def test_gunicorns_error_answer_becomes_json_without_the_request():
    held = HeldAnswer()
    held.sendall(b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n\r\n<html>GET /?access_token=tsr_x</html>")
    assert held.status() == (414, "URI Too Long")
    answer = json_error_answer(*held.status())
    head, body = answer.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n") and f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": "uri_too_long", "message": "URI Too Long"}
    assert json.loads(json_error_answer(400, "Bad Request").split(b"\r\n\r\n")[1])["error"] == "invalid_request"
    assert HeldAnswer().status() is None


QUIT_WHILE_HANDING_OVER = """
import signal, threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from portal.gunicorn_workers import ThreadWorker

worker = ThreadWorker.__new__(ThreadWorker)  # what handle_quit uses of a running worker
worker.alive, worker.tpool = True, ThreadPoolExecutor(max_workers=2)
worker.cfg = SimpleNamespace(worker_int=lambda worker: None)
worker.tpool.submit(lambda: None).result()  # a thread started, as in a busy worker
with worker.tpool._shutdown_lock:  # where the main thread is while it submits a connection
    try:
        worker.handle_quit(signal.SIGQUIT, None)
    except SystemExit as exit:
        print("exited", exit.code, worker.alive)
"""


def test_a_quick_shutdown_signal_stops_the_thread_worker_even_mid_hand_over():
    """SIGQUIT or SIGINT while the worker's main thread hands a connection to its thread pool
    (holding the pool's lock, in ThreadPoolExecutor.submit): the signal handler runs in that
    same thread. gunicorn's gthread handler shut the pool down there and waited for that lock
    for ever; the worker must exit at once."""
    try:
        result = subprocess.run([str(VENV_BIN / "python"), "-c", QUIT_WHILE_HANDING_OVER], cwd=ROOT,
                                capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker's quick shutdown waited for the thread pool's lock its own thread holds")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exited 0 False"


def test_the_worker_class_is_set_by_worker_class_not_by_gunicorns_option(tmp_path):
    """gunicorn's --worker-class would run gunicorn's own worker (no JSON error answers, slow
    clients holding threads): the bundled settings refuse it before listening."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update({"TESSERA_INSTANCE_PATH": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT)})
    result = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", "127.0.0.1:0",
                             "--worker-class", "gthread", "wsgi:app"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert ("Tessera cannot start: the worker class is set by WORKER_CLASS (gthread or sync), not by gunicorn's "
            "--worker-class ('gthread')\n") in output
    assert "Listening at" not in output and "Traceback" not in output
