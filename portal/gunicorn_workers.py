"""Tessera's gunicorn workers, chosen by the bundled settings (portal.gunicorn_config) from
WORKER_CLASS: gunicorn's own gthread and sync workers, with two changes.

- ThreadWorker never lets a slow client hold a thread or stall its event loop. A connection
  gets a thread only once its request has arrived (the head, and a body of known length up
  to REQUEST_WINDOW); until then it waits in the worker's event loop, as gunicorn keeps idle
  connections, and what arrives meanwhile is read and kept for gunicorn's parser (bytes left
  in the socket would wake the event loop again at once, and a half-sent request would keep
  the worker busy until it ends). After an answer that closes the connection, the wait for
  the client to close its side is in the event loop too (gunicorn waits there, up to 2 s,
  blocking every other connection of the worker meanwhile).
- ThreadWorker's quick shutdown (SIGQUIT, SIGINT) leaves its thread pool alone in the signal
  handler. gunicorn's shuts the pool down there, which takes a lock the worker's main thread
  holds while it hands a connection to the pool: a signal arriving at that moment left the
  worker stuck until the master killed it, `graceful_timeout` (30 s) later.
- Both answer the requests gunicorn refuses itself (400, 414, 431, ...) in Tessera's JSON
  error shape, instead of gunicorn's HTML page that quotes the refused line.

Both rest on gunicorn 27 details that no setting offers; tests/test_live.py checks them
against the installed gunicorn (docs/deployment.md).
"""

import json
import re
import socket
import time

from gunicorn.workers import base, gthread, sync

# The answer that sends a connection back to the event loop, to wait there for its next bytes
# (gunicorn 27). Were it missing, this module would not import and gunicorn would not start.
from gunicorn.workers.gthread import _DEFER as WAIT_IN_EVENT_LOOP

# How much of a request is looked at before it gets a thread. Larger requests (an upload,
# or a head gunicorn refuses for its size) get one once this much has arrived.
REQUEST_WINDOW = 64 * 1024
HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
# A body the client sends only when asked (Expect: 100-continue) or in chunks: read as it comes.
BODY_READ_AS_IT_COMES = re.compile(rb"\r\n(?:expect|transfer-encoding):", re.IGNORECASE)
# After an answer that ends the connection, how long what the client still sends is read
# (gunicorn's own wait); a client that sends nothing is closed after `keepalive` (5 s).
CLOSING_SECONDS = 2.0


def request_arrived(data: bytes) -> bool:
    """Whether `data`, the start of a connection's next request, is all of it (or as much as
    REQUEST_WINDOW): the head, and the body its one Content-Length announces."""
    head_end = data.find(HEAD_END)
    if head_end < 0:
        return len(data) >= REQUEST_WINDOW
    head = data[:head_end + 2]
    lengths = CONTENT_LENGTH.findall(head)
    if len(lengths) != 1 or BODY_READ_AS_IT_COMES.search(head):
        return True  # no body, or one gunicorn reads as it comes, or refuses
    return len(data) >= min(head_end + len(HEAD_END) + int(lengths[0]), REQUEST_WINDOW)


# gunicorn's answers to requests it refuses; others (400) are invalid_request.
ERROR_CODES = {403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
               431: "request_header_fields_too_large", 500: "server_error", 501: "not_implemented"}


class HeldAnswer:
    """Stands in for the client's socket while gunicorn writes its error answer: keeps it."""

    def __init__(self):
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str] | None:
        """The status code and reason of the answer's status line (`HTTP/1.1 414 URI Too Long`)."""
        match = re.match(rb"HTTP/\d\.\d (\d{3}) ([^\r\n]*)\r\n", self.data)
        return (int(match.group(1)), match.group(2).decode("latin-1")) if match else None


def json_error_answer(status: int, reason: str) -> bytes:
    """The whole answer. It quotes nothing of the request (gunicorn's page quotes the request
    line or header it refused, which may hold a token value); gunicorn's error log says more."""
    body = json.dumps({"error": ERROR_CODES.get(status, "invalid_request"), "message": reason})
    return (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode("latin-1")


class JsonErrorAnswers:
    """gunicorn's Worker.handle_error decides the status (and logs the request); the client
    gets it in JSON."""

    def handle_error(self, req, client, addr, exc):
        held = HeldAnswer()
        super().handle_error(req, held, addr, exc)
        status = held.status()
        if status is None:  # gunicorn could not answer either
            return
        try:
            client.sendall(json_error_answer(*status))
        except OSError:
            self.log.debug("Failed to send error message.")


class SyncWorker(JsonErrorAnswers, sync.SyncWorker):
    """One request at a time per worker: a client that trickles its request holds the whole
    worker. For use behind a proxy that buffers requests (nginx)."""


class ThreadWorker(JsonErrorAnswers, gthread.ThreadWorker):
    """gunicorn's threaded worker, for plain HTTP/1 (TLS served by gunicorn itself, HTTP/2 and
    uWSGI connections are handled as gunicorn does)."""

    def handle_quit(self, sig, frame):
        """Quick shutdown as gunicorn's base worker does it: the worker exits now. The pool's
        threads are stopped by Python on the way out, after what they are running, as
        gthread's own shutdown(wait=False) would leave them (module docstring)."""
        base.Worker.handle_quit(self, sig, frame)

    def handle(self, conn):
        """In a worker thread, whenever the connection has new bytes (or is new)."""
        if self.cfg.is_ssl or self.cfg.protocol != "http" or self.cfg.http2_cleartext != "off" or conn.is_http2:
            return super().handle(conn)
        if getattr(conn, "closing_since", None) is not None:
            return self.read_until_closed(conn)
        if not take_request(conn):
            return self.wait_for_request(conn)
        conn.request_deadline = None
        keep_alive = super().handle(conn)
        if keep_alive or conn.is_http2:
            return keep_alive
        return self.start_closing(conn)

    def wait_for_request(self, conn):
        """A request must arrive within gunicorn's `timeout` (30 s), with no pause longer than
        `keepalive` (5 s: gunicorn drops a waiting connection then); a late one is dropped."""
        if getattr(conn, "request_deadline", None) is None:
            conn.request_deadline = time.monotonic() + self.cfg.timeout
        elif time.monotonic() > conn.request_deadline:
            self.log.debug("Closing a connection whose request did not arrive in %s s.", self.cfg.timeout)
            return self.close_now(conn)
        return WAIT_IN_EVENT_LOOP

    def start_closing(self, conn):
        """The answer is sent; the connection ends: say so to the client (RFC 9112 9.6), then
        read what it still sends until it closes its side, waiting in the event loop."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # closed or reset already
            return False
        conn.closing_since = time.monotonic()
        return self.read_until_closed(conn)

    def read_until_closed(self, conn):
        """Drop what the client still sends; done when it closes, or after CLOSING_SECONDS."""
        try:
            if conn.sock.recv(REQUEST_WINDOW, socket.MSG_DONTWAIT) == b"":
                return False  # the client closed: gunicorn closes at once
        except BlockingIOError:
            pass
        except OSError:
            return False
        if time.monotonic() < conn.closing_since + CLOSING_SECONDS:
            return WAIT_IN_EVENT_LOOP
        return self.close_now(conn)

    @staticmethod
    def close_now(conn):
        """Have gunicorn close the connection without waiting for the client: once nothing
        more can be read from it, gunicorn's close finds the end at once."""
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return False


def take_request(conn) -> bool:
    """Read what the client has sent of its next request, and keep it on the connection.
    Once the request has arrived (or the client has closed), hand it to gunicorn's parser,
    which reads it before the socket, and say so."""
    arrived = getattr(conn, "arrived", b"")
    try:
        data = conn.sock.recv(REQUEST_WINDOW, socket.MSG_DONTWAIT)
        closed = not data
    except BlockingIOError:
        data, closed = b"", False
    except OSError:
        data, closed = b"", True  # gunicorn finds out
    arrived += data
    # gunicorn may hold the start of a pipelined request, read with the previous one.
    held = conn.parser.unreader.buf.getvalue() if conn.parser is not None else b""
    if not closed and not request_arrived(held + arrived):
        conn.arrived = arrived
        return False
    conn.arrived = b""
    conn.init()  # the parser; gunicorn's handle skips its own wait for data once this is done
    unreader = conn.parser.unreader
    unreader.unread(unreader.take_buffered() + arrived)
    return True
