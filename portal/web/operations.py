"""What an operator's tools call (docs/operations.md): liveness, readiness, metrics."""

from flask import Blueprint, Response
from sqlalchemy.exc import SQLAlchemyError

from portal.web import addresses, metrics
from portal.db import schema
from portal.web.errors import RETRY_AFTER_SECONDS, json_error
from portal.extensions import db

bp = Blueprint("operations", __name__)


@bp.route("/healthz")
def healthz():
    """200 while the process answers: no database query (a load balancer or an orchestrator
    must not restart a healthy process because the database is away)."""
    return {"status": "ok"}


def unavailable(**reason):
    return {"status": "unavailable", **reason}, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@bp.route("/readyz")
def readyz():
    """200 when the database answers and is at the schema revision this code expects."""
    try:
        with db.engine.connect() as connection:
            revision = schema.database_revision(connection)
    except SQLAlchemyError:
        return unavailable(database="unreachable")
    expected = schema.head()
    if revision != expected:
        # A revision this code does not know comes from a newer release.
        known = revision is None or revision in schema.revisions()
        return unavailable(schema="behind" if known else "unknown", database_revision=revision, expected=expected)
    return {"status": "ok", "database": "ok", "schema": revision}


@bp.route("/metrics")
def prometheus_metrics():
    if not addresses.client_allowed("METRICS_ALLOW"):
        return json_error(403, "Metrics are served only to the addresses in METRICS_ALLOW.")
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
