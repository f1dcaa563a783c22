"""Earlier releases of Tessera installed from their own wheels, as their operators had them
(bench/releases.py builds and caches them; their dependencies are the checkout's where those
satisfy the release's ranges), and the current code as the checkout's wheel
(`checkout_wheel`, built once per run), for tests/upgrade. All of them build at once, in threads.

A release whose commit is not in the clone's history (a shallow clone) skips its tests
with the reason; REQUIRE_DEPLOY=1 (set by CI) turns the skip into a failure."""

import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import releases
from tests.conftest import built_once, free_port, portal_batch
from tests.deploy.conftest import run, stop_process, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
# v0.4.3 (456275f) is not listed: v0.4.4's application is v0.4.3's with only its version
# changed (`git diff v0.4.3 v0.4.4 -- portal migrations templates static wsgi.py`), so an
# upgrade from either runs the same code on the same schema.
RELEASES = {"8bdb08c": "v0.1.0", "f5026c5": "v0.2.0", "0f902d6": "v0.3.0", "3917c55": "v0.4.0", "32200f5": "v0.4.1",
            "fb9844c": "v0.4.2", "05f44e2": "v0.4.4"}


@dataclass
class Site:
    """One operator's installation: a working directory holding the instance folder (its
    generated secret_key, and the SQLite file unless `database_url` names another database).
    It outlives the upgrade: the old and the new code both run on it."""

    folder: Path
    database_url: str | None = None

    @property
    def instance(self) -> Path:
        return self.folder / "instance"

    @property
    def url(self) -> str:
        """The database, as the test process opens it."""
        return self.database_url or f"sqlite:///{self.instance / 'tessera.db'}"


@dataclass(frozen=True)
class Install:
    """One version of Tessera in its own venv; `source` is the tree it runs from when its
    wheel does not carry the whole application."""

    name: str
    venv: Path
    source: Path | None = None

    def env(self, site: Site) -> dict:
        """An operator's shell: this venv first on PATH, the instance folder and the database,
        nothing of the test's environment (PYTHONPATH would import the checkout)."""
        env = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": str(site.folder),
               "LANG": "C.UTF-8", "TESSERA_INSTANCE_PATH": str(site.instance)}
        if site.database_url:
            env["DATABASE_URL"] = site.database_url
        if self.source:
            env["PYTHONPATH"] = str(self.source)
        return env

    def portal(self, site: Site, *args: str, input: str | None = None) -> str:
        """`portal ARGS` of this version, from the site's folder; returns what it printed."""
        return run([self.venv / "bin" / "portal", *args], cwd=site.folder, env=self.env(site), input=input).stdout

    def portal_many(self, site: Site, *commands) -> list[str]:
        """Several `portal` commands of this version in one process (tests/portal_batch.py),
        from the site's folder; what each printed."""
        return portal_batch(self.venv / "bin" / "python", self.env(site), commands, cwd=site.folder)

    @contextmanager
    def serving(self, site: Site, workers: int = 2):
        """This version's gunicorn on the site (on its own port); yields its URL and stops it
        afterwards."""
        port = free_port()
        log = site.folder / f"gunicorn-{self.name}-{port}.log"
        config = str(self.source / "gunicorn.conf.py") if self.source else "python:portal.gunicorn_config"
        with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [self.venv / "bin" / "gunicorn", "-c", config, "wsgi:app"], cwd=site.folder,
                env={**self.env(site), "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)},
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            # /readyz came in 0.3.0
            wait_until_up(url, process, log, path="/readyz" if self.name == "current" else "/healthz")
            yield url
        finally:
            stop_process(process, signal.SIGQUIT)  # gunicorn's quick shutdown: no waiting on idle keep-alives


def unavailable(commit: str) -> str | None:
    """Why a release cannot be had (not in the cache, nor in this clone's history), or None."""
    reason = releases.unavailable(commit)
    return f"release {commit} ({RELEASES.get(commit, 'no tag')}): {reason}: its upgrade test cannot run" \
        if reason else None


def release_install(commit: str) -> Install:
    release = releases.install(commit)
    return Install(commit, release.venv, release.source)


def current_install(tmp_path_factory, wheel: Path) -> Install:
    """The checkout's wheel in a venv of its own, made once per run (the upgrade cases share it)."""
    folder = built_once(tmp_path_factory, "current-venv", lambda folder: releases.venv_with(wheel, folder / "venv"))
    venv = folder / "venv"
    assert releases.carries_application(venv), "the current wheel lacks wsgi.py or portal/migrations"
    return Install("current", venv)


def selected_releases(session) -> set[str]:
    """The releases the collected tests upgrade from (their `case` parameter)."""
    cases = (getattr(item, "callspec", None) for item in session.items)
    return {callspec.params["case"][0] for callspec in cases if callspec and "case" in callspec.params}


@pytest.fixture(scope="session")
def installs(request, tmp_path_factory, checkout_wheel) -> dict[str, Install]:
    """name → Install: "current" and each selected release that can be had, built in parallel."""
    wanted = {commit for commit in selected_releases(request.session) if not unavailable(commit)}
    with ThreadPoolExecutor(max_workers=len(wanted) + 1) as pool:
        builds = {commit: pool.submit(release_install, commit) for commit in wanted}
        builds["current"] = pool.submit(current_install, tmp_path_factory, checkout_wheel)
        return {name: future.result() for name, future in builds.items()}
