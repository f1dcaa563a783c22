"""Moving tokens, applications, tenants and users over from Crafter Profile (`crafter`) and
django-oauth-toolkit / GeoNode (`dot`): `portal import crafter FILE`, `portal import dot URL`.

Each importer walks its records once. Without `apply` it writes nothing and tells what it
would do; with `apply` it writes through the rule modules (tenants, applications, users)
and the token core. What is here already (same token value, application name or client
id, username, tenant) is left as it is, so a second run creates nothing.
"""

from collections import Counter
from datetime import UTC, datetime


from portal import applications, audit
from portal.extensions import db
from portal.tokens.errors import DuplicateValueError, TokenError
from portal.tokens.imported import import_token

IMPORT_ACTOR = "portal import"  # how the audit log names an import
CREATED, PRESENT, EXPIRED, REFUSED = OUTCOMES = "created", "present", "expired", "refused"


class SourceError(Exception):
    """The file or database to import from cannot be read as what it should be."""


class Summary:
    """What an import did, or would do: counts per kind of record, and why each refused
    record was refused (never a token value: tokens are named by their hint)."""

    def __init__(self, source: str, apply: bool, kinds: tuple[str, ...]):
        self.source, self.apply = source, apply
        self.counts: dict[str, Counter] = {kind: Counter() for kind in kinds}
        self.refusals: list[str] = []
        self.notes: list[str] = []

    def count(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    def refuse(self, kind: str, label: str, reason: str) -> None:
        self.count(kind, REFUSED)
        self.refusals.append(f"{kind[:-1]} {label}: {reason}")

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
        head = (f"Imported from {self.source}:" if self.apply
                else f"Dry run from {self.source}: nothing written (add --apply to import).")
        out = [head]
        for kind, counts in self.counts.items():
            parts = [f"{counts[CREATED]} {made}", f"{counts[PRESENT]} already present"]
            if counts[EXPIRED]:
                parts.append(f"{counts[EXPIRED]} expired (skipped)")
            parts.append(f"{counts[REFUSED]} refused")
            out.append(f"  {kind}: {', '.join(parts)}")
        if self.refusals:
            out.append("Refused:")
            out += [f"  {line}" for line in self.refusals]
        if self.notes:
            out.append("Notes:")
            out += [f"  {line}" for line in self.notes]
        return out

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
