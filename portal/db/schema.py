"""Which schema revision the database is at, and which one the code expects.

Read without Alembic (about 11 MB that a serving worker never loads otherwise): the
revisions are the `revision` / `down_revision` assignments of the files in migrations/,
and the database's is the row Alembic keeps in `alembic_version`.
`tests/test_schema_revisions.py` holds this reading against Alembic's own."""

import ast
import functools
from pathlib import Path

from sqlalchemy import inspect, text


def migrations_directory() -> str:
    """migrations/ of a checkout, or the copy inside an installed package."""
    from portal import bundled

    return bundled("migrations")


def _assignments(path: Path) -> dict:
    """The module-level `revision` and `down_revision` of one migration file."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("revision", "down_revision"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


@functools.cache
def revisions(directory: str | None = None) -> dict[str, tuple[str, ...]]:
    """Every revision of the migrations in `directory`, with the revisions it follows."""
    chain = {}
    for path in sorted((Path(directory or migrations_directory()) / "versions").glob("*.py")):
        found = _assignments(path)
        if "revision" not in found:
            continue
        down = found.get("down_revision")
        chain[found["revision"]] = tuple(down) if isinstance(down, (tuple, list)) else ((down,) if down else ())
    return chain


def heads(directory: str | None = None) -> tuple[str, ...]:
    """The revisions no other revision follows: one, unless the history has branched."""
    chain = revisions(directory)
    followed = {down for downs in chain.values() for down in downs}
    return tuple(sorted(revision for revision in chain if revision not in followed))


def head(directory: str | None = None) -> str:
    """The latest revision; a branched history is a packaging mistake, said plainly."""
    found = heads(directory)
    if len(found) != 1:
        raise RuntimeError(f"the migrations in {directory or migrations_directory()} have {len(found)} heads: "
                           f"{', '.join(found)}")
    return found[0]


def database_revision(connection) -> str | None:
    """The revision the database is at, or None for a database Tessera never migrated."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def steps_between(start: str | None, end: str, directory: str | None = None) -> int:
    """How many migrations lead from `start` (None: an empty database) to `end`."""
    chain, count, revision = revisions(directory), 0, end
    while revision is not None and revision != start:
        downs = chain.get(revision, ())
        count += 1
        revision = downs[0] if downs else None
    return count
