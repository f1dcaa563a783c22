"""Moving tokens, applications, tenants and users over from Crafter Profile (`crafter`) and
django-oauth-toolkit / GeoNode (`dot`): `portal import crafter FILE`, `portal import dot URL`.

Each importer walks its records once. Without `apply` it writes nothing and tells what it
would do; with `apply` it writes through the rule modules (tenants, applications, users)
and the token core, in one transaction (`one_transaction`): the records it refuses are
listed and left out, the rest land together, and an unexpected error leaves nothing
written. What is here already (same token value, application name or client id, a user an
earlier run made, tenant) is left as it is, so a second run creates nothing.
"""

import os
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import scoped_session, sessionmaker

from portal.domain import applications, audit
from portal.extensions import db
from portal.tokens.core import MAX_EXPIRES_IN, MAX_LIFETIME_WORDS
from portal.tokens.errors import DuplicateValueError, TokenError
from portal.tokens.imported import import_token

IMPORT_ACTOR = "portal import"  # how the audit log names an import
CREATED, PRESENT, MATCHED, EXPIRED, REFUSED = OUTCOMES = "created", "present", "matched", "expired", "refused"


class SourceError(Exception):
    """The file or database to import from cannot be read as what it should be."""


def read_text(path: str, max_bytes: int, hint: str = "") -> str:
    """A UTF-8 file of at most `max_bytes`, or SourceError saying what is wrong with it."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise SourceError(f"the file has {size:,} bytes, more than the {max_bytes:,} an import reads{hint}")
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise SourceError(f"cannot read the file: {error.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") from None


def visible(text: str) -> str:
    """`text` safe for a terminal: control, bidirectional and other invisible characters
    written as escapes (records are another system's data, names included)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def describe(error: BaseException) -> str:
    """One line about an unexpected error (a database error by the driver's own message)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    message = (str(error).strip().splitlines() or [""])[0][:300]
    return visible(f"{type(error).__name__}: {message}" if message else type(error).__name__)


@contextmanager
def one_transaction(apply: bool = True):
    """With `apply`, the database work inside is one transaction: committed when the block
    ends, rolled back whole if it raises (Ctrl-C included).

    The rule modules commit after each object they make and roll back one they refuse.
    Inside the block `db.session`, which they use, is a session bound to one connection
    whose transaction stays open, in SQLAlchemy's "create_savepoint" mode, so those commits
    and rollbacks only end savepoints; the caller's session is put back afterwards."""
    if not apply:
        yield
        return
    app_session = db.session  # the caller's session, left as it is and put back afterwards
    with db.engine.connect() as connection:
        transaction = connection.begin()
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 opens a transaction only before a write: the first SAVEPOINT
            # would open one of its own, and its RELEASE would commit it.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        db.session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
        try:
            yield
            transaction.commit()
        finally:
            db.session.remove()
            db.session = app_session
            if transaction.is_active:
                transaction.rollback()


class Summary:
    """What an import did, or would do: counts per kind of record, each match with an
    existing object and why, each refused record and why (never a token value: tokens are
    named by their hint)."""

    def __init__(self, source: str, apply: bool, kinds: tuple[str, ...]):
        self.source, self.apply = source, apply
        self.counts: dict[str, Counter] = {kind: Counter() for kind in kinds}
        self.matches: list[str] = []
        self.refusals: list[str] = []
        self.notes: list[str] = []

    def count(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    def refuse(self, kind: str, label: str, reason: str) -> None:
        self.count(kind, REFUSED)
        self.refusals.append(f"{kind[:-1]} {label}: {reason}")

    def match(self, kind: str, text: str) -> None:
        self.count(kind, MATCHED)
        self.matches.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def add_token(self, label: str, **token) -> None:
        """Store one token (`tokens.imported.import_token`) when applying, and count it."""
        if self.apply:
            try:
                import_token(**token)
            except DuplicateValueError:  # written by another run meanwhile
                self.count("tokens", PRESENT)
                return
            except TokenError as error:
                db.session.rollback()
                self.refuse("tokens", label, error.message)
                return
        self.count("tokens", CREATED)

    def lines(self) -> list[str]:
        made = "created" if self.apply else "to create"
        if self.apply:
            head = f"Imported from {self.source} in one transaction"
            head += ": the refused records below were left out." if self.refusals else "."
        else:
            head = f"Dry run from {self.source}: nothing written (add --apply to import)."
        out = [head]
        for kind, counts in self.counts.items():
            parts = [f"{counts[CREATED]} {made}", f"{counts[PRESENT]} already present"]
            if counts[MATCHED]:
                parts.append(f"{counts[MATCHED]} {'attached' if self.apply else 'to attach'} to existing users")
            if counts[EXPIRED]:
                parts.append(f"{counts[EXPIRED]} expired (skipped)")
            parts.append(f"{counts[REFUSED]} refused")
            out.append(f"  {kind}: {', '.join(parts)}")
        for title, items in (("Matched with existing Tessera users:", self.matches), ("Refused:", self.refusals),
                             ("Notes:", self.notes)):
            if items:
                out.append(title)
                out += [f"  {line}" for line in items]
        return [visible(line) for line in out]

    def record(self) -> None:
        """One audit event for an applied run (the objects it made have their own)."""
        if self.apply:
            audit.record("import.applied", actor=IMPORT_ACTOR, target_type="import", target_label=self.source,
                         counts={kind: {outcome: counts[outcome] for outcome in OUTCOMES}
                                 for kind, counts in self.counts.items()})
            db.session.commit()


def utc_naive(value: datetime) -> datetime:
    """A datetime as Tessera stores it: UTC without a zone (a naive one is taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def capped_expiry(expires_at: datetime, now: datetime, summary: Summary, label: str) -> datetime:
    """An imported expiry, at most ten years away as every other expiry (the cap is noted)."""
    limit = now + timedelta(seconds=MAX_EXPIRES_IN)
    if expires_at <= limit:
        return expires_at
    summary.note(f"token {label}: its expiry {expires_at:%Y-%m-%d} is more than {MAX_LIFETIME_WORDS} away: "
                 f"it expires {MAX_LIFETIME_WORDS} from now ({limit:%Y-%m-%d})")
    return limit


class ApplicationMaker:
    """The applications a run needs, by name: found, or made by `make` (with `apply`), or
    refused by the application rules."""

    def __init__(self, summary: Summary):
        self.summary = summary
        self.known: dict[str, bool] = {}

    def ensure(self, key: str, make, label: str | None = None) -> bool:
        """`make()` registers the application (it is called only with `apply`); it returns
        False when the application is here already, and raises ApplicationError to refuse."""
        if key not in self.known:
            self.known[key] = self._ensure(make, label or key)
        return self.known[key]

    def _ensure(self, make, label: str) -> bool:
        try:
            made = make()
        except applications.ApplicationError as error:
            db.session.rollback()
            self.summary.refuse("applications", repr(label), error.message)
            return False
        self.summary.count("applications", CREATED if made else PRESENT)
        return True
