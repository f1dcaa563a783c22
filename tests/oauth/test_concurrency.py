"""Two simultaneous redemptions of one code, or of one refresh token: exactly one wins.

Each thread sends its request through its own app context, so each has its own database
session and connection, as two gunicorn workers would (run on PostgreSQL with
TEST_DATABASE_URL; on SQLite too)."""

import threading

import pytest

from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI

# Issues access tokens and uses them: each test runs once per access-token format (tests/conftest.py).
pytestmark = [pytest.mark.token_format, pytest.mark.both_databases]  # simultaneous claims: each database's locking

RACERS = 4


def race(app, data: dict) -> list:
    barrier = threading.Barrier(RACERS)
    results = [None] * RACERS

    def run(index):
        client = app.test_client()
        barrier.wait()
        response = client.post("/token", data=data)
        results[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def outcome(results):
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (RACERS - 1), results
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    return next(body for status, body in results if status == 200)


@pytest.mark.postgres
def test_one_code_redeemed_at_once_by_several_requests(app, logged_in):
    code = logged_in.code()
    won = outcome(race(app, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                             "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    # A code used more than once ends what it produced (RFC 6749 §4.1.2).
    assert logged_in.userinfo(won["access_token"]).status_code == 401


@pytest.mark.postgres
def test_one_refresh_token_redeemed_at_once_by_several_requests(app, logged_in):
    issued = logged_in.tokens()
    won = outcome(race(app, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
                             "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    # Reuse of a refresh token ends the family, the winner's new tokens included.
    assert logged_in.userinfo(won["access_token"]).status_code == 401
    assert logged_in.refresh(won["refresh_token"]).get_json()["error"] == "invalid_grant"
