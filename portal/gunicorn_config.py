"""gunicorn settings: `gunicorn -c python:portal.gunicorn_config wsgi:app` (see README: Deployment).

Threaded workers: a client that trickles its request keeps one thread busy, not a whole
worker, so as many slow clients as there are workers cannot stop the service. Behind nginx (deploy/)
the proxy buffers whole requests first, so gunicorn never sees a slow client at all.
"""

import os

from portal.config import server_threads, server_workers
from portal.logging import use_json_error_pages

use_json_error_pages()  # gunicorn's own 400/414/431 answers in Tessera's JSON error shape

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = server_workers()
# Threads (portal.connections keeps a connection per thread): gevent or eventlet would
# share one thread's connection between greenlets.
worker_class = os.environ.get("WORKER_CLASS", "gthread")
if worker_class not in ("gthread", "sync"):
    raise SystemExit(f"WORKER_CLASS must be gthread or sync, not {worker_class!r}")
# More threads than workers: the kernel may hand every slow client to one worker, and that
# worker must still have a thread free. Above 1, gunicorn runs gthread whatever WORKER_CLASS says.
threads = server_threads()
timeout = 30
keepalive = 5
# Bounded request heads: longer lines or more or bigger header fields are refused (400/431).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# No gunicornc control socket: every instance would share $HOME/.gunicorn/gunicorn.ctl, and
# signals (HUP, TERM, TTIN/TTOU) already manage the server.
control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
# Token values in URLs (?access_token=, accessTokenId) are replaced by [REDACTED].
logger_class = "portal.logging.RedactingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
