"""Error pages for people, JSON for machines; never a stack trace."""

import pytest


@pytest.fixture
def failing_app(app):
    @app.route("/boom")
    def boom():
        raise RuntimeError("database exploded: secret detail")

    @app.route("/api/v1/boom")
    def api_boom():
        raise RuntimeError("secret detail")

    return app


def test_404_is_an_html_page(client):
    response = client.get("/nowhere", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "We could not find that page." in response.get_data(as_text=True)


def test_404_under_the_api_is_json(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found" and response.get_json()["message"]


def test_405_keeps_the_allow_header(client):
    response = client.get("/logout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_500_hides_the_details(failing_app):
    client = failing_app.test_client()
    response = client.get("/boom", headers={"Accept": "text/html"})
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret detail" not in body and "Traceback" not in body
    response = client.get("/api/v1/boom")
    assert response.status_code == 500 and response.get_json()["error"] == "server_error"
    assert "secret detail" not in response.get_data(as_text=True)


def test_csrf_failure_is_a_clear_400_page(client):
    response = client.post("/login", data={"username": "a", "password": "b"})
    assert response.status_code == 400
    assert "CSRF token is missing" in response.get_data(as_text=True)


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


@pytest.mark.parametrize("line, expected", [
    ("GET /x?access_token=abc HTTP/1.1", "GET /x?access_token=[REDACTED] HTTP/1.1"),
    ("GET /x?%61ccess_token=abc&y=2 HTTP/1.1", "GET /x?%61ccess_token=[REDACTED]&y=2 HTTP/1.1"),
    ("GET /x?access%5Ftoken=abc HTTP/1.1", "GET /x?access%5Ftoken=[REDACTED] HTTP/1.1"),
    ("GET /x?accessToken%49d=abc HTTP/1.1", "GET /x?accessToken%49d=[REDACTED] HTTP/1.1"),
    ("GET /x?y=1&access_token=a;b;c HTTP/1.1", "GET /x?y=1&access_token=[REDACTED] HTTP/1.1"),
    ("access_token=abc&code=xyz", "access_token=[REDACTED]&code=[REDACTED]"),
    ("GET /x?codes=1&state=s HTTP/1.1", "GET /x?codes=1&state=s HTTP/1.1"),
    # a path with its query, as the JSON access log's `path` field has it
    ("/x?access_token=abc&y=2", "/x?access_token=[REDACTED]&y=2"),
])
def test_redact_decodes_names_and_takes_the_whole_value(line, expected):
    from portal.web.logging import redact

    assert redact(line) == expected
