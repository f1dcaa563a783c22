"""Real django-oauth-toolkit databases, made by Django's own migrations on SQLite and on
PostgreSQL (tests/importers/make_dot_database.py), once per test session."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import NO_POSTGRES, ROOT, TEST_DATABASE_URL, fresh_postgres_database


def build_dot_database(url: str, *scenario: str) -> dict:
    """Run Django's migrations and make GeoNode-like data in a subprocess (Django's settings
    are process-wide); returns what the script printed."""
    env = {**os.environ, "DOT_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.importers.django_settings"}
    done = subprocess.run([sys.executable, "-m", "tests.importers.make_dot_database", *scenario], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    facts["url"] = url
    return facts


def dot_database(request, tmp_path_factory, *scenario: str):
    if request.param == "sqlite":
        yield build_dot_database(f"sqlite:///{tmp_path_factory.mktemp('geonode') / 'geonode.db'}", *scenario)
        return
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database("geonode_dot") as url:
        yield build_dot_database(url, *scenario)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def geonode(request, tmp_path_factory):
    """A django-oauth-toolkit database as GeoNode has one, and what is in it."""
    yield from dot_database(request, tmp_path_factory)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def strangers_geonode(request, tmp_path_factory):
    """A django-oauth-toolkit database with users `Ops`, `carla` and `dave`
    (make_dot_database.build_strangers), and what is in it."""
    yield from dot_database(request, tmp_path_factory, "strangers")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def odd_geonode(request, tmp_path_factory):
    """A django-oauth-toolkit database with what an importer must not take on trust
    (make_dot_database.build_odd), and what is in it."""
    yield from dot_database(request, tmp_path_factory, "odd")
