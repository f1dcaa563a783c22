"""`portal import crafter FILE`: Crafter Profile's `accessToken` collection, as `mongoexport`
writes it (JSON lines, or a JSON array with --jsonArray), in MongoDB Extended JSON.

A record is Crafter's AccessToken: `_id` (the value clients send as `accessTokenId`),
`application`, `master`, `tenantPermissions: [{tenant, allowedActions}]`, `expiresOn`.
Each token keeps its value (stored as its hash), application, master flag, permissions and
expiry (at most ten years away, as every expiry); missing applications and tenants are
made; expired tokens are skipped. A document with a wrong type is refused with the reason;
a file that is not JSON, not UTF-8, too big, nested too deeply or with a key given twice in
a document is refused whole.
"""

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.domain import applications, clock, tenants
from portal.extensions import db
from portal.importers import (CREATED, EXPIRED, IMPORT_ACTOR, PRESENT, ApplicationMaker, SourceError, Summary,
                              capped_expiry, one_transaction, read_text, utc_naive)
from portal.models import Application, Tenant
from portal.tokens import permissions as perms
from portal.tokens.core import MAX_EXPIRES_IN
from portal.tokens.errors import TokenError
from portal.tokens.imported import check_imported_value, value_present
from portal.tokens.values import hint_for

SOURCE = "admin"  # Crafter's tokens were made by its admin console or its REST API
MAX_EXPORT_BYTES = 512 * 1024 * 1024  # read whole into memory; mongoexport --skip/--limit splits a bigger one


def read_export_file(path: str) -> list[dict]:
    """The records of the export at `path`, or SourceError saying what is wrong with the file."""
    return read_export(read_text(path, MAX_EXPORT_BYTES, ": split the export (mongoexport --skip and --limit) "
                                                        "and import each part"))


def unique_keys(pairs: list[tuple]) -> dict:
    """A JSON object whose keys are each given once (json keeps the last of a repeated key
    silently: `"master": false, "master": true` would be read as true)."""
    repeated = [key for key, times in Counter(key for key, _ in pairs).items() if times > 1]
    if repeated:
        raise SourceError(f"a document has the key {repeated[0]!r} more than once")
    return dict(pairs)


def parse_json(text: str, line: int | None = None):
    """One document of a JSON-lines file (`line`), or the whole of a JSON array."""
    where = f"line {line}" if line else "the JSON array"
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise SourceError(f"line {line} is not JSON: {error}" if line else f"not a JSON array: {error}") from None
    except RecursionError:
        raise SourceError(f"{where} is nested too deeply to be accessToken documents") from None
    except SourceError as error:
        raise SourceError(f"{where}: {error}") from None


def read_export(text: str) -> list[dict]:
    """The records of a mongoexport file: a JSON array, or one JSON document per line."""
    if text.lstrip().startswith("["):
        records = parse_json(text)
    else:
        records = [parse_json(line, number) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SourceError("expected accessToken documents (JSON objects)")
    return records


def extended_value(value):
    """A MongoDB Extended JSON wrapper's content ({"$oid": ...}, {"$numberLong": ...})."""
    while isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key not in ("$oid", "$numberLong", "$numberInt", "$date"):
            break
        value = value[key]
    return value


def parse_date(value) -> datetime | None:
    """`expiresOn` as mongoexport writes it: {"$date": "<ISO 8601>"}, {"$date": {"$numberLong":
    "<ms>"}}, {"$date": <ms>} or plain epoch milliseconds; None when it has none."""
    value = extended_value(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"a {type(value).__name__}")
    if isinstance(value, (int, float)) or value.lstrip("-").isdigit():
        return datetime(1970, 1, 1) + timedelta(milliseconds=int(value))
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return utc_naive(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


class TenantMaker:
    """The tenants a run needs: found, made (with `apply`), or refused by the tenant rules."""

    def __init__(self, summary: Summary):
        self.summary = summary
        self.known: dict[str, bool] = {}  # name -> usable (present, made, or would be made)

    def ensure(self, name: str) -> bool:
        if name == perms.ANY:
            return True
        if name not in self.known:
            self.known[name] = self._ensure(name)
        return self.known[name]

    def _ensure(self, name: str) -> bool:
        if db.session.scalar(select(Tenant.id).where(Tenant.name == name)):
            self.summary.count("tenants", PRESENT)
            return True
        try:
            tenants.check_name(name)
            if self.summary.apply:
                tenants.create_tenant(name, actor=IMPORT_ACTOR)
        except tenants.TenantError as error:
            db.session.rollback()
            self.summary.refuse("tenants", repr(name), error.message)
            return False
        self.summary.count("tenants", CREATED)
        return True


def permissions_of(record: dict) -> list[dict]:
    entries = record.get("tenantPermissions") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TokenError("tenantPermissions is not a list of {tenant, allowedActions}", "tenant_permissions")
    return [{"tenant": e.get("tenant"), "actions": e.get("allowedActions") or []} for e in entries]


def register(name: str, apply: bool) -> bool:
    """A Crafter application is a name; here it becomes an application that owns tokens
    (as `portal init` makes crafterengine and craftersocial)."""
    if db.session.scalar(select(Application.id).where(Application.name == name)):
        return False
    applications.check_name(name)
    if apply:
        client_id = name if applications.CLIENT_ID_PATTERN.match(name) and not db.session.scalar(
            select(Application.id).where(Application.client_id == name)) else None
        applications.register_application(name=name, client_id=client_id, actor=IMPORT_ACTOR,
                                          description="Imported from Crafter Profile")
    return True


def run(records: list[dict], *, apply: bool, advance: Callable[[int], None] = lambda n: None) -> Summary:
    """Import the records (one transaction with `apply`); refused ones are listed."""
    summary = Summary("Crafter Profile", apply, ("tenants", "applications", "tokens"))
    with one_transaction(apply):
        tenant_maker, application_maker = TenantMaker(summary), ApplicationMaker(summary)
        seen: set[str] = set()
        now = clock.now()
        for number, record in enumerate(records, start=1):
            import_one(record, number, now, summary, tenant_maker, application_maker, seen)
            advance(1)
        summary.record()
    return summary


def import_one(record: dict, number: int, now: datetime, summary: Summary, tenant_maker: TenantMaker,
               application_maker: ApplicationMaker, seen: set[str]) -> None:
    value = extended_value(record.get("_id"))
    label = f"#{number}" + (f" ({hint_for(value)}…)" if isinstance(value, str) and value else "")
    name, master = record.get("application"), record.get("master")
    master = False if master is None else master
    if not isinstance(value, str):
        summary.refuse("tokens", label, "_id is not a string")
        return
    try:
        value = check_imported_value(value)
        permission_list = perms.normalize(permissions_of(record))
        expires_at = parse_date(record.get("expiresOn"))
    except TokenError as error:
        summary.refuse("tokens", label, error.message)
        return
    except (ValueError, OverflowError) as error:
        summary.refuse("tokens", label, f"expiresOn is not a date ({error})")
        return
    if not isinstance(name, str) or not name.strip():
        summary.refuse("tokens", label, "application is not a name")
        return
    if not isinstance(master, bool):
        summary.refuse("tokens", label, "master is neither true nor false")
        return
    if expires_at is not None and expires_at <= now:
        summary.count("tokens", EXPIRED)
        return
    if value in seen or value_present(value):
        summary.count("tokens", PRESENT)
        return
    seen.add(value)
    if not application_maker.ensure(name, lambda: register(name, summary.apply)):
        summary.refuse("tokens", label, f"application {name!r} refused")
        return
    refused = [p.tenant for p in permission_list if not tenant_maker.ensure(p.tenant)]
    if refused:
        summary.refuse("tokens", label, f"tenant {', '.join(map(repr, refused))} refused")
        return
    if expires_at is None:
        expires_at = now + timedelta(seconds=MAX_EXPIRES_IN)
        summary.note(f"token {label} had no expiry: it expires in ten years")
    summary.add_token(label, application=db.session.scalar(select(Application).where(Application.name == name)),
                      source=SOURCE, value=value, expires_at=capped_expiry(expires_at, now, summary, label),
                      master=master, tenant_permissions=permission_list)
