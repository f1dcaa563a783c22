"""Login throttling counts in the application database by default, so a documented limit
holds across every worker and host that share it (issue: 18 tries instead of 5 with
per-worker memory counters)."""

import concurrent.futures

import pytest
import requests
from sqlalchemy import select

from portal import ratelimit
from portal.extensions import db
from portal.models import RateLimitCounter
from tests.conftest import csrf_token_from


@pytest.fixture
def storage(app):
    return ratelimit.DatabaseStorage("database://")


def test_counts_in_one_window_then_starts_a_new_one(storage, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1000.0)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") == 1060.0
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1060.0)
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1 and storage.get_expiry("k") == 1120.0


def test_keys_are_stored_as_hashes_and_can_be_cleared(storage):
    storage.incr("LIMITER/login:alice@example.org", 60)
    storage.incr("other", 60, amount=2)
    stored = db.session.scalars(select(RateLimitCounter.key_hash)).all()
    assert len(stored) == 2 and all(len(h) == 64 and "alice" not in h for h in stored)
    storage.clear("other")
    assert storage.get("other") == 0 and storage.get("LIMITER/login:alice@example.org") == 1
    assert storage.reset() == 1 and storage.check()


def test_concurrent_increments_are_not_lost(storage, app):
    def hit(_):
        with app.app_context():
            return storage.incr("shared", 60)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(hit, range(20)))
    assert results == list(range(1, 21))


def test_purge_expired_removes_finished_windows(storage, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1000.0)
    storage.incr("old", 10)
    storage.incr("live", 600)
    assert ratelimit.purge_expired(now=1500.0) == 1
    assert storage.get("live") == 1


def failed_login(server, username: str) -> int:
    """One wrong password on a new connection (so the tries spread over the workers)."""
    with requests.Session() as session:
        token = csrf_token_from(session.get(server.url + "/login", timeout=10).text)
        return session.post(server.url + "/login", timeout=10, allow_redirects=False,
                            data={"username": username, "password": "wrong password", "csrf_token": token}).status_code


def test_the_documented_limits_hold_across_four_workers(live_server_factory):
    """Default settings (no RATELIMIT_STORAGE_URI): 5 failures per account, 30 per address."""
    server = live_server_factory(workers=4)
    assert [failed_login(server, "admin") for _ in range(6)] == [200] * 5 + [429]
    # 5 failures are already counted for this address; 25 more with other usernames, then 429.
    statuses = [failed_login(server, f"nobody{i}") for i in range(26)]
    assert statuses == [200] * 25 + [429]
