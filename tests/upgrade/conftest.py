"""Earlier releases of Tessera installed the way their operators had them, and the current
code as a wheel, for tests/upgrade.

A release is taken from git history by its commit (`git archive`), built with
`pip wheel --no-deps` and installed with its dependencies into a virtual environment of
its own, cached in .cache/releases/<commit>-py311/ of the checkout; an entry is complete
once its `complete` marker exists, written last. The current code is built once per
session from a clean copy of the checkout. All of them build at once, in threads.

v0.1.0's wheel held neither its migrations, its templates nor wsgi.py: its operators ran
it from the release's source tree, so this test does too (PYTHONPATH, its gunicorn.conf.py).

A release whose commit is not in the clone's history (a shallow clone) skips its tests
with the reason; REQUIRE_DEPLOY=1 (set by CI) turns the skip into a failure."""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.deploy.conftest import run, stop_process, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
RELEASES = {"8bdb08c": "v0.1.0", "f5026c5": "v0.2.0"}
PYTHON_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
RELEASE_CACHE = ROOT / ".cache" / "releases"
WORKERS = 2
PIP = ["-m", "pip", "--disable-pip-version-check", "-q"]
# Left out of the copy the current wheel is built from: local state, caches, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".cache", "instance", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "node_modules")


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

    @contextmanager
    def serving(self, site: Site):
        """This version's gunicorn on the site (2 workers, its own port); yields its URL and
        stops it afterwards."""
        port = free_port()
        log = site.folder / f"gunicorn-{self.name}-{port}.log"
        config = str(self.source / "gunicorn.conf.py") if self.source else "python:portal.gunicorn_config"
        with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [self.venv / "bin" / "gunicorn", "-c", config, "wsgi:app"], cwd=site.folder,
                env={**self.env(site), "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(WORKERS)},
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, process, log)
            yield url
        finally:
            stop_process(process, signal.SIGQUIT)  # gunicorn's quick shutdown: no waiting on idle keep-alives


def wheel_into_venv(source: Path, folder: Path) -> Path:
    """`pip wheel --no-deps` of `source`, installed with its dependencies into folder/venv."""
    dist, venv = folder / "dist", folder / "venv"
    # Only the venv's own packages: not a checkout (nor its editable install's metadata) on PYTHONPATH.
    alone = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    run([sys.executable, *PIP, "wheel", "--no-deps", "-w", dist, source], timeout=300, env=alone)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    # No pip of its own (ensurepip costs seconds): the test's pip installs into it.
    run([sys.executable, "-m", "venv", "--without-pip", venv], env=alone)
    run([sys.executable, *PIP, "--python", venv / "bin" / "python", "install", wheels[0]], timeout=900, env=alone)
    shutil.rmtree(dist)
    return venv


def carries_application(venv: Path) -> bool:
    """Whether the installed wheel holds the whole application (wsgi.py, the migrations),
    as every release after v0.1.0 does."""
    return any((packages / "wsgi.py").exists() and (packages / "portal" / "migrations" / "env.py").exists()
               for packages in venv.glob("lib/python*/site-packages"))


def release_folder(commit: str) -> Path:
    return RELEASE_CACHE / f"{commit}-{PYTHON_TAG}"


def is_cached(commit: str) -> bool:
    """Whether the cache holds the release's complete venv, made in this very place (a venv
    works only where it was made: the marker holds that place)."""
    folder = release_folder(commit)
    marker, python = folder / "complete", folder / "venv" / "bin" / "python"
    return marker.exists() and marker.read_text() == str(folder.resolve()) and python.exists()


def unavailable(commit: str) -> str | None:
    """Why a release can be neither taken from the cache nor built from this clone, or None."""
    if is_cached(commit):
        return None
    found = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if found.returncode == 0:
        return None
    return (f"release {commit} ({RELEASES.get(commit, 'no tag')}) is not in this clone's git history "
            f"(a shallow clone? `git fetch --unshallow`): its upgrade test cannot run")


def release_install(commit: str) -> Install:
    """The release's venv from the cache, built first unless the cache has a complete entry."""
    folder = release_folder(commit)
    source, venv = folder / commit, folder / "venv"
    RELEASE_CACHE.mkdir(parents=True, exist_ok=True)
    with open(RELEASE_CACHE / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process building the same entry finishes first
        if not is_cached(commit):
            shutil.rmtree(folder, ignore_errors=True)
            source.mkdir(parents=True)
            archive = folder / "source.tar"
            run(["git", "-C", ROOT, "archive", "--format=tar", "-o", archive, commit])
            with tarfile.open(archive) as tar:
                tar.extractall(source, filter="data")
            archive.unlink()
            wheel_into_venv(source, folder)
            (folder / "complete").write_text(str(folder.resolve()))
    return Install(commit, venv, None if carries_application(venv) else source)


def current_install(folder: Path) -> Install:
    """A wheel of the checkout, built from a clean copy of it."""
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE, symlinks=True)
    venv = wheel_into_venv(source, folder)
    shutil.rmtree(source)
    assert carries_application(venv), "the current wheel lacks wsgi.py or portal/migrations"
    return Install("current", venv)


def selected_releases(session) -> set[str]:
    """The releases the collected tests upgrade from (their `case` parameter)."""
    cases = (getattr(item, "callspec", None) for item in session.items)
    return {callspec.params["case"][0] for callspec in cases if callspec and "case" in callspec.params}


@pytest.fixture(scope="session")
def installs(request, tmp_path_factory) -> dict[str, Install]:
    """name → Install: "current" and each selected release that can be had, built in parallel."""
    wanted = {commit for commit in selected_releases(request.session) if not unavailable(commit)}
    folder = tmp_path_factory.mktemp("current-wheel")
    with ThreadPoolExecutor(max_workers=len(wanted) + 1) as pool:
        builds = {commit: pool.submit(release_install, commit) for commit in wanted}
        builds["current"] = pool.submit(current_install, folder)
        return {name: future.result() for name, future in builds.items()}
