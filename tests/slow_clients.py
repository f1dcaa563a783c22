"""Clients that trickle their requests, for the slow-client tests (tests/test_live.py and
tests/deploy): some send a request head a byte at a time, others a POST's head whole and
then its body a byte at a time."""

import socket
import threading
import time

PAD = b"a" * 400  # long enough that no request ends while a test runs
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: " + PAD + b"\r\n\r\n"


def post(path: str, number: int) -> tuple[bytes, bytes]:
    """A form POST's head and body: an unknown client's credentials, each a client of its own."""
    body = f"grant_type=client_credentials&client_id=slow{number}&client_secret=".encode() + PAD
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode(), body


class Tricklers:
    """`heads` connections that trickle a GET's head and `bodies` that trickle the body of a
    POST to `post_to`, each sending one more byte every `interval` seconds (in a thread)
    until stop(); `finish()` sends the rest of every request and reads the answers."""

    def __init__(self, address: tuple[str, int], heads: int, bodies: int, post_to: str, interval: float = 0.2):
        self.interval = interval
        self.connections = []  # [socket, what is left to send]: the heads' first, then the bodies'
        for number in range(heads + bodies):
            sock = socket.create_connection(address, timeout=10)
            if number < heads:
                self.connections.append([sock, HEAD])
            else:
                head, body = post(post_to, number)
                sock.sendall(head)
                self.connections.append([sock, body])
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)
        self.thread.start()

    def trickle(self) -> None:
        while not self.stopped.wait(self.interval):
            for connection in self.connections:
                sock, rest = connection
                try:
                    sock.sendall(rest[:1])
                except OSError:  # the server closed it: the test reads that in finish()
                    continue
                connection[1] = rest[1:]

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def finish(self) -> list[bytes]:
        """Each answer (b"" from a connection the server closed), in the order of connections."""
        self.stop()
        for sock, rest in self.connections:
            try:
                sock.sendall(rest)
            except OSError:
                pass
        return [whole_answer(sock) for sock, _ in self.connections]

    def close(self) -> None:
        self.stop()
        for sock, _ in self.connections:
            sock.close()


def whole_answer(sock: socket.socket) -> bytes:
    """Up to the server's close (the requests say `Connection: close`)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:  # reset: what was read is the answer
        pass
    return answer


# A probe that waits this long is blocked: a trickler would hold its thread for ten seconds
# or more. A free thread answers well within it even on a busy two-core CI machine.
PATIENCE = 4.0


def timed_get(url: str, verify=True) -> tuple[int | str, float]:
    """A normal request's status (or the error, "ReadTimeout: ..." once it waited PATIENCE
    seconds) and how long its answer took."""
    import requests

    started = time.monotonic()
    try:
        status = requests.get(url + "/healthz", verify=verify, timeout=PATIENCE).status_code
    except requests.RequestException as error:
        status = f"{type(error).__name__}: {error}"
    return status, round(time.monotonic() - started, 2)

