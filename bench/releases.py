"""Earlier revisions of Tessera, each in its own environment: the revision's tree exported
with `git archive` and installed (editable, as `make run` installs a checkout) into its own
venv with the dependencies that revision asks for. The benchmark's baseline mode runs them
beside the working tree.

Built once per revision and Python version under .cache/releases/ (a revision never
changes); a build is complete only when its marker file exists."""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "releases"
PYTHON_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"


class RevisionMissing(RuntimeError):
    """The revision is not in this clone's history (a shallow clone?)."""


@dataclass
class Release:
    name: str  # as asked for: a tag or a commit
    commit: str
    source: Path  # the exported tree: gunicorn.conf.py and wsgi.py are run from here
    bin_dir: Path  # its venv's portal and gunicorn

    @property
    def label(self) -> str:
        short = self.commit[:7]
        return self.name if self.name.startswith(short) else f"{self.name} ({short})"


def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RevisionMissing(result.stderr.strip() or f"git {' '.join(args)} failed")
    return result.stdout.strip()


def resolve(revision: str) -> str:
    """The full commit a tag or abbreviated hash names."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except RevisionMissing:
        raise RevisionMissing(f"{revision} is not in this clone's history (fetch the tags, or clone without "
                              "--depth)") from None


def last_release() -> str:
    """The newest release tag (v0.2.0 sorts after v0.1.0)."""
    tags = git("tag", "--list", "v*", "--sort=-v:refname").split()
    if not tags:
        raise RevisionMissing("no release tag (v*) in this clone")
    return tags[0]


def run(command: list, **kwargs) -> None:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def build(revision: str) -> Release:
    """The revision's tree and venv, built now unless the cache has them."""
    commit = resolve(revision)
    folder = CACHE / f"{commit[:12]}-{PYTHON_TAG}"
    release = Release(name=revision, commit=commit, source=folder / "src", bin_dir=folder / "venv" / "bin")
    marker = folder / "complete"
    if marker.exists():
        return release
    shutil.rmtree(folder, ignore_errors=True)
    release.source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, timeout=120,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(release.source)], input=archive, check=True, timeout=120)
    run([sys.executable, "-m", "venv", folder / "venv"], timeout=120)
    run([release.bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
         release.source], timeout=900)
    marker.write_text(commit + "\n")
    return release
