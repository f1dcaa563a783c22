"""A database outage: 503 with Retry-After, the usual body and headers, and recovery
without a restart. (tests/deploy stops a real PostgreSQL; here the engine's connect
refuses, which is what a stopped server looks like to the application.)"""

import logging
import sqlite3

import psycopg
import pytest
from sqlalchemy import event

from portal.db.connections import release_idle_connection
from portal.extensions import db
from tests.api.conftest import bearer
from tests.factories import make_application, make_tenant, make_token

# On SQLite and PostgreSQL (tests/conftest.py): each driver's connection errors.
pytestmark = pytest.mark.both_databases

LEAK = "-".join(["leaked", "value"])  # never written whole in a source line a traceback quotes
SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                    "Strict-Transport-Security")


@pytest.fixture
def outage(app):
    """outage(True) stops new connections (and drops the pooled ones); outage(False) ends it."""
    error = psycopg.OperationalError if db.engine.dialect.name == "postgresql" else sqlite3.OperationalError

    def refuse(dialect, connection_record, cargs, cparams):
        raise error(f"connection refused; DETAIL: Key (email)=({LEAK})")

    def set_down(down: bool):
        release_idle_connection()
        db.session.close()  # the test's own session gives its connection back before the pool goes
        db.engine.dispose()
        if down:
            event.listen(db.engine, "do_connect", refuse)
        elif event.contains(db.engine, "do_connect", refuse):
            event.remove(db.engine, "do_connect", refuse)

    yield set_down
    set_down(False)


def assert_unavailable(response, mimetype):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5" and response.mimetype == mimetype
    for header in SECURITY_HEADERS:
        assert header in response.headers
    assert "Traceback" not in response.get_data(as_text=True)


def test_every_kind_of_endpoint_answers_503_then_recovers(app, admin_client, outage, caplog, schema_at_head):
    make_tenant("site1")
    application = make_application(name="svc", grant_types=["client_credentials"], scope="api")
    value = make_token(application=application, tenant_permissions=[{"tenant": "*", "actions": ["*"]}],
                       master=True).value
    token_form = {"grant_type": "client_credentials", "client_id": application.client_id,
                  "client_secret": application.test_secret}

    outage(True)
    with caplog.at_level(logging.ERROR):
        api = admin_client.get("/api/v1/tenants/site1", headers=bearer(value))
        token = admin_client.post("/token", data=token_form)
        page = admin_client.get("/admin", headers={"Accept": "text/html"})
        login = admin_client.get("/login")
    assert_unavailable(api, "application/json")
    assert api.get_json()["error"] == "temporarily_unavailable" and api.get_json()["message"]
    assert_unavailable(token, "application/json")
    assert_unavailable(page, "text/html")
    assert "The database is not answering" in page.get_data(as_text=True)
    assert_unavailable(login, "text/html")
    ready = admin_client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    assert ready.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert admin_client.get("/healthz").status_code == 200  # alive: the process answers without the database
    assert "database unavailable on GET /admin" in caplog.text and LEAK not in caplog.text

    outage(False)
    assert admin_client.get("/readyz").status_code == 200
    assert admin_client.get("/api/v1/tenants/site1", headers=bearer(value)).status_code == 200
    assert admin_client.post("/token", data=token_form).status_code == 200
    assert admin_client.get("/admin").status_code == 200  # still logged in: the session outlived the outage


def test_a_database_error_never_logs_values(app, client, caplog):
    """hide_parameters, and only the error's kind in our log line: no email or hash."""
    @app.get("/_duplicate")
    def duplicate():
        from tests.factories import make_user

        email = f"{LEAK}@example.org"
        make_user(username="dup", email=email)
        make_user(username="dup", email=email)  # a unique username: IntegrityError

    with caplog.at_level(logging.ERROR):
        response = client.get("/_duplicate", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "IntegrityError" in caplog.text or "UniqueViolation" in caplog.text
    assert LEAK not in caplog.text and "scrypt" not in caplog.text
