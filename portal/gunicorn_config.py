"""gunicorn settings: `gunicorn -c python:portal.gunicorn_config wsgi:app` (see docs/deployment.md).

Tessera's own gunicorn workers (portal.gunicorn_workers): the threaded one gives a connection
a thread only once its request has arrived, so clients that trickle their requests hold no
thread. Behind nginx (deploy/) the proxy buffers whole requests first, so gunicorn never sees
a slow client at all.

Every setting is checked here, in the master, before it binds or starts a worker: a bad one
stops the server with one line naming it (docs/operations.md: A bad setting).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def prepare_metrics_folder() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, where each worker keeps its counts for /metrics
    (portal.web.metrics): emptied if the operator set it, else a new private folder (returned,
    to be removed at exit). Set before anything imports prometheus_client, which reads it once:
    here rather than in a server hook, so that it holds with --preload too."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):  # counts of an earlier server
            stale.unlink()
        return None
    folder = tempfile.mkdtemp(prefix="tessera-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


created_metrics_folder = prepare_metrics_folder()
MASTER_PID = os.getpid()

from portal.config import ConfigError, log_format, server_threads, server_worker_class, server_workers  # noqa: E402
from portal.web.logging import ACCESS_LOG_FORMAT  # noqa: E402


@atexit.register
def remove_metrics_folder() -> None:
    """At the master's exit. Workers, forked from it, run exit handlers too: they leave it."""
    if created_metrics_folder and os.getpid() == MASTER_PID:
        shutil.rmtree(created_metrics_folder, ignore_errors=True)


WORKER_CLASS_PATHS = {"gthread": "portal.gunicorn_workers.ThreadWorker", "sync": "portal.gunicorn_workers.SyncWorker"}


def stop(error: ConfigError):
    raise SystemExit(f"Tessera cannot start: {error}") from None


try:
    workers = server_workers()
    # Threads (portal.db.connections keeps a connection per thread): gevent or eventlet would
    # share one thread's connection between greenlets, so only gthread or sync, as Tessera's
    # subclasses (they answer gunicorn's own errors in JSON; the threaded one reads requests
    # in its event loop).
    worker_class = WORKER_CLASS_PATHS[server_worker_class()]
    threads = server_threads()  # sync: one
    log_format()  # read by the logger (portal.web.logging.RedactingLogger) before any hook runs
except ConfigError as error:
    stop(error)


def on_starting(server):
    """In the master, before it binds or starts a worker: make the application once, as each
    worker will, so that every setting is read and checked the same way (no connection is
    opened); a bad one stops the server here with one line, not worker after worker."""
    from portal import create_app
    from portal.extensions import db

    try:
        if server.cfg.worker_class_str not in WORKER_CLASS_PATHS.values():
            raise ConfigError(f"the worker class is set by WORKER_CLASS (gthread or sync), not by gunicorn's "
                              f"--worker-class ({server.cfg.worker_class_str!r})")
        app = create_app(migrations=False)
    except ConfigError as error:
        if server.pidfile is not None:  # written just before this hook
            server.pidfile.unlink()
        stop(error)
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


bind = os.environ.get("BIND", "127.0.0.1:8000")
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
# Token values in URLs (?access_token=, accessTokenId) are replaced by [REDACTED]; LOG_FORMAT=json
# makes the access and error logs JSON lines.
logger_class = "portal.web.logging.RedactingLogger"
access_log_format = ACCESS_LOG_FORMAT


def child_exit(server, worker):
    """A worker is gone: prometheus_client drops its live gauges; its counts stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
