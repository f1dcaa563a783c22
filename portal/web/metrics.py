"""Prometheus metrics (`/metrics`, docs/operations.md), for every gunicorn worker at once.

Under gunicorn the bundled settings (portal.gunicorn_config) set PROMETHEUS_MULTIPROC_DIR
before anything imports prometheus_client: each worker then writes its counts to its own
file in that folder and a scrape, answered by any worker, adds up every file, those of
workers that have exited too. Without it (tests, `flask run`) the counts are this
process's. Only counters: one increment per request, no statement."""

import os

from flask import request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client import disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # the same series with or without gunicorn (multiprocess mode has no _created)

# A request no route matched (404, or 405 for a path that exists with other methods): one
# label value, never the path, so the series stay few whatever clients send.
UNMATCHED = "unmatched"

REQUESTS = Counter("tessera_http_requests", "Requests answered, by Flask endpoint and HTTP status",
                   ["endpoint", "status"])
TOKENS_ISSUED = Counter("tessera_tokens_issued", "Access tokens issued, by source (admin, api, session, or the "
                        "OAuth grant)", ["source"])
AUTHENTICATION_FAILURES = Counter("tessera_authentication_failures", "Failed authentications, by kind: password "
                                  "(login form), client (OAuth client credentials), bearer (access tokens)", ["kind"])
THROTTLED = Counter("tessera_throttled_requests", "Requests refused with 429 by the throttle (portal.web.throttle), by "
                    "kind: password, client, bearer", ["kind"])
DATABASE_ERRORS = Counter("tessera_database_errors", "Requests answered 503 because the database could not answer, "
                          "by error", ["error"])

# Series that exist from the start at 0, so rates and alerts work before the first event.
for _kind in ("password", "client", "bearer"):
    AUTHENTICATION_FAILURES.labels(_kind)
    THROTTLED.labels(_kind)
for _source in ("admin", "api", "session", "authorization_code", "refresh_token", "client_credentials"):
    TOKENS_ISSUED.labels(_source)


# Each (endpoint, status) series, looked up once: labels() costs more than the increment.
_request_series: dict = {}


def count_request(response):
    """after_request: one count per answer, by endpoint and status."""
    key = (request.endpoint or UNMATCHED, response.status_code)
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = REQUESTS.labels(*key)
    series.inc()
    return response


def token_issued(source: str) -> None:
    TOKENS_ISSUED.labels(source).inc()


def authentication_failed(kind: str) -> None:
    AUTHENTICATION_FAILURES.labels(kind).inc()


def throttled(kind: str) -> None:
    THROTTLED.labels(kind).inc()


def database_error(error: Exception) -> None:
    DATABASE_ERRORS.labels(type(error).__name__).inc()


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every worker (multiprocess mode), or of this process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
