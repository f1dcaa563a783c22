"""Earlier releases of Tessera, installed the way their operators had them, for the
benchmark's baseline mode (bench/compare.py) and the upgrade tests (tests/upgrade).

A release is taken from git history by its commit (`git archive`), built with
`pip wheel --no-deps` and installed into a virtual environment of its own, cached in
.cache/releases/<commit>-py311/ of the checkout (a commit never changes); an entry is
complete once its `complete` marker exists, written last, and a lock keeps two processes
from building the same entry at once.

Its dependencies are those of the environment running this code (the checkout's .venv)
wherever they satisfy the release's own ranges: a .pth file puts that environment's
site-packages after the venv's own, and pip installs only what is missing or out of range
(as a fresh install would, it resolves the release's requirements; it finds most of them
met). Installing each release's dependencies afresh cost ten seconds of CPU per venv, and
the benchmark compares Tessera's code, not two versions of Flask. The marker records which
packages that environment held: when they change, the entry is built again.

v0.1.0's wheel held neither its migrations, its templates nor wsgi.py: its operators ran
it from the release's source tree, and so does whatever runs it here (`source`: put it on
PYTHONPATH and use its gunicorn.conf.py)."""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from importlib.metadata import version
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "releases"
PYTHON_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
PIP = ["-m", "pip", "--disable-pip-version-check", "-q"]
# The site-packages whose packages a release's venv borrows (module docstring).
SHARED_PACKAGES = Path(sysconfig.get_paths()["purelib"])


class RevisionMissing(RuntimeError):
    """The revision is not in this clone's history (a shallow clone?)."""


@dataclass(frozen=True)
class Release:
    name: str  # as asked for: a tag or a commit
    commit: str
    venv: Path
    source: Path | None = None  # the tree it runs from, when its wheel lacks the application

    @property
    def label(self) -> str:
        short = self.commit[:7]
        return self.name if self.name.startswith(short) else f"{self.name} ({short})"

    @property
    def gunicorn_config(self) -> str:
        return str(self.source / "gunicorn.conf.py") if self.source else "python:portal.gunicorn_config"


def run(command: list, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout,
                            **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {result.returncode}:\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RevisionMissing(result.stderr.strip() or f"git {' '.join(args)} failed")
    return result.stdout.strip()


def resolve(revision: str) -> str:
    """The full commit a tag or an abbreviated commit names."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except RevisionMissing:
        raise RevisionMissing(f"{revision} is not in this clone's git history (a shallow clone? "
                              "`git fetch --unshallow --tags`)") from None


def last_release() -> str:
    """The newest release tag (v0.10.0 sorts after v0.9.0)."""
    tags = git("tag", "--list", "v*", "--sort=-v:refname").split()
    if not tags:
        raise RevisionMissing("no release tag (v*) in this clone")
    return tags[0]


def folder_of(commit: str) -> Path:
    return CACHE / f"{commit[:7]}-{PYTHON_TAG}"


def shared_packages_fingerprint() -> str:
    """Which packages, at which versions, SHARED_PACKAGES holds."""
    names = sorted(path.name for path in SHARED_PACKAGES.glob("*.dist-info"))
    return hashlib.sha256("\n".join([str(SHARED_PACKAGES), *names]).encode()).hexdigest()


def marker_text(folder: Path) -> str:
    """What a complete entry's marker holds: its place (a venv works only where it was made)
    and the packages it borrows."""
    return f"{folder.resolve()}\n{shared_packages_fingerprint()}"


def is_cached(commit: str) -> bool:
    """Whether the cache holds the release's complete venv, made in this very place and
    borrowing the packages SHARED_PACKAGES holds now."""
    folder = folder_of(commit)
    marker, python = folder / "complete", folder / "venv" / "bin" / "python"
    return marker.exists() and marker.read_text() == marker_text(folder) and python.exists()


def unavailable(revision: str) -> str | None:
    """Why a release can be neither taken from the cache nor built from this clone, or None."""
    if is_cached(revision):
        return None
    try:
        resolve(revision)
    except RevisionMissing as error:
        return str(error)
    return None


def build_wheel(source: Path, dist: Path) -> Path:
    """`pip wheel --no-deps` of the project at `source`, into `dist`; returns the wheel. The
    build backend is this environment's setuptools (the dev extra), not one pip would fetch
    from an index into a throwaway environment for every build: no network, no such
    environment to make."""
    run([sys.executable, *PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source],
        env=without_pythonpath())
    wheels = list(Path(dist).glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def wheel_into_venv(source: Path, folder: Path) -> Path:
    """`source` built into a wheel, installed with its dependencies into folder/venv."""
    dist = folder / "dist"
    venv = venv_with(build_wheel(source, dist), folder / "venv")
    shutil.rmtree(dist)
    return venv


def without_pythonpath() -> dict:
    """Only a venv's own packages: not a checkout (nor its editable install's metadata) on PYTHONPATH."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def venv_with(wheel: Path, venv: Path) -> Path:
    """A new venv with `wheel` installed, its dependencies borrowed from SHARED_PACKAGES
    where they satisfy its ranges and installed into the venv where not."""
    # No pip of its own (ensurepip costs seconds): this Python's pip installs into it.
    run([sys.executable, "-m", "venv", "--without-pip", venv], env=without_pythonpath())
    # A path in a .pth file is added after the venv's own site-packages; the .pth files
    # found there are not run, so the checkout's editable install stays out.
    for packages in venv.glob("lib/python*/site-packages"):
        (packages / "_borrowed_dependencies.pth").write_text(f"{SHARED_PACKAGES}\n")
    run([sys.executable, *PIP, "--python", venv / "bin" / "python", "install", wheel], timeout=900,
        env=without_pythonpath())
    # A borrowed package brings no script into the venv's bin: gunicorn, which an operator
    # runs by its script, is installed into the venv itself (the borrowed version, unless
    # the wheel's range made pip install another already).
    if not (venv / "bin" / "gunicorn").exists():
        run([sys.executable, *PIP, "--python", venv / "bin" / "python", "install", "--no-deps", "--ignore-installed",
             f"gunicorn=={version('gunicorn')}"], env=without_pythonpath())
    return venv


def carries_application(venv: Path) -> bool:
    """Whether the installed wheel holds the whole application (wsgi.py, the migrations),
    as every release after v0.1.0 does."""
    return any((packages / "wsgi.py").exists() and (packages / "portal" / "migrations" / "env.py").exists()
               for packages in venv.glob("lib/python*/site-packages"))


def install(revision: str) -> Release:
    """The release's venv from the cache, built first unless the cache has a complete entry."""
    commit = resolve(revision) if not is_cached(revision) else revision
    folder = folder_of(commit)
    source, venv = folder / "src", folder / "venv"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process building the same entry finishes first
        if not is_cached(commit):
            shutil.rmtree(folder, ignore_errors=True)
            source.mkdir(parents=True)
            archive = folder / "source.tar"
            run(["git", "-C", ROOT, "archive", "--format=tar", "-o", archive, commit])
            with tarfile.open(archive) as tar:
                tar.extractall(source, filter="data")
            archive.unlink()
            wheel_into_venv(source, folder)
            (folder / "complete").write_text(marker_text(folder))
    return Release(revision, commit, venv, None if carries_application(venv) else source)
