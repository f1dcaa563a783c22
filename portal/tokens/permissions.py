"""Tenant permissions and how they resolve (DESIGN.md, "Tenant permission").

An entry for the named tenant wins over a `*` entry, whatever their order; entries are
never merged; no matching entry means denied. Global actions (and listing all tenants)
look only at the `*` entry.

One set of permissions is *within* another when everything the first allows, on any
tenant, the second allows too. A master token may create, see and delete only tokens
within its own permissions (`beyond`; `beyond_clause` is the same rule as SQL, for lists).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, literal, not_, or_
from sqlalchemy.orm import aliased

from portal.models import AccessToken, TokenPermission
from portal.tokens.errors import TokenError

ANY = "*"
ACTIONS = (
    "CREATE_TENANT",
    "READ_TENANT",
    "UPDATE_TENANT",
    "DELETE_TENANT",
    "MANAGE_PROFILES",
    "MANAGE_TICKETS",
)
GLOBAL_ACTIONS = frozenset({"CREATE_TENANT"})
TENANT_ACTIONS = tuple(a for a in ACTIONS if a not in GLOBAL_ACTIONS)
DEFAULT_ROW_ACTIONS = ("READ_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS")
# What a new row of the admin's permission editor starts with: the least, and all of it in sight.
NEW_ROW_ACTIONS = ("READ_TENANT",)
MAX_ENTRIES = 100  # tenant permission entries on one token


@dataclass(frozen=True)
class Permission:
    tenant: str
    actions: frozenset[str]

    def allows(self, action: str) -> bool:
        return ANY in self.actions or action in self.actions

    def as_dict(self) -> dict:
        return {"tenant": self.tenant, "actions": sorted_actions(self.actions)}


def sorted_actions(actions: Iterable[str]) -> list[str]:
    actions = set(actions)
    if ANY in actions:
        return [ANY]
    return [a for a in ACTIONS if a in actions]


def grantable(tenant: str) -> tuple[str, ...]:
    """The actions an entry for `tenant` can grant, as `allows` reads it: a global action
    counts only on the `*` entry. The admin's editor offers these, the token page marks
    the others as not applying, and new tokens may name no other (`check_grantable`)."""
    return ACTIONS if tenant == ANY else TENANT_ACTIONS


def check_grantable(entries: Iterable[Permission]) -> None:
    """Refuse an entry naming an action it cannot grant (CREATE_TENANT on a named tenant):
    the token would show a permission the API never honours. Every door that makes tokens
    from what a person typed calls it (the admin form, the API, Crafter's API, the CLI);
    imported rows and older tokens may still hold such an entry, which grants nothing."""
    for index, entry in enumerate(entries):
        wasted = sorted_actions(entry.actions - {ANY} - set(grantable(entry.tenant)))
        if wasted:
            raise TokenError(f"{', '.join(wasted)} is a global action: grant it on the * tenant, not on "
                             f"{entry.tenant}", f"tenant_permissions[{index}].actions")


def normalize(entries: Iterable) -> list[Permission]:
    """Check and normalise permission entries, as every door takes them (the API, Crafter's
    API, the admin form, the CLI, the importers): each a Permission, a dict
    `{"tenant", "actions"}` or a (tenant, actions) pair, where actions is a list of names.
    At most MAX_ENTRIES entries, each with a tenant of its own and at least one action."""
    entries = list(entries)
    if len(entries) > MAX_ENTRIES:
        raise TokenError(f"at most {MAX_ENTRIES} tenant permission entries", "tenant_permissions")
    result: list[Permission] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        field = f"tenant_permissions[{index}]"
        if isinstance(entry, Permission):
            tenant, actions = entry.tenant, entry.actions
        elif isinstance(entry, dict):
            tenant, actions = entry.get("tenant"), entry.get("actions")
        else:
            tenant, actions = entry
        if not isinstance(tenant, str) or not tenant.strip():
            raise TokenError("each entry needs a tenant name or *", f"{field}.tenant")
        tenant = tenant.strip()
        if not isinstance(actions, (list, tuple, set, frozenset)) or not all(isinstance(a, str) for a in actions):
            raise TokenError("actions must be a list of action names", f"{field}.actions")
        if not actions:
            raise TokenError(f"the entry for {tenant} needs at least one action (or remove the entry)",
                             f"{field}.actions")
        unknown = sorted(set(actions) - set(ACTIONS) - {ANY})
        if unknown:
            raise TokenError(
                f"unknown action {', '.join(unknown)}; use {', '.join(ACTIONS)} or *", f"{field}.actions"
            )
        if tenant in seen:
            raise TokenError(f"tenant {tenant} appears twice; give each tenant one entry", f"{field}.tenant")
        seen.add(tenant)
        result.append(Permission(tenant, frozenset(sorted_actions(actions))))
    return result


def entry_for(permissions: Iterable[Permission], tenant: str) -> Permission | None:
    """The entry that governs `tenant`: its own entry if any, else the `*` entry."""
    wildcard = None
    for permission in permissions:
        if permission.tenant == tenant:
            return permission
        if permission.tenant == ANY:
            wildcard = permission
    return wildcard


def allows(permissions: Iterable[Permission], action: str, tenant: str = ANY) -> bool:
    """May a holder of `permissions` do `action` on `tenant` (`*` = across all tenants)?"""
    permissions = list(permissions)
    if action in GLOBAL_ACTIONS or tenant == ANY:
        entry = next((p for p in permissions if p.tenant == ANY), None)
    else:
        entry = entry_for(permissions, tenant)
    return entry is not None and entry.allows(action)


@dataclass(frozen=True)
class TenantReach:
    """The tenants on which one action is allowed: every tenant but `tenants` when
    `anywhere`, else only `tenants`."""

    anywhere: bool
    tenants: frozenset[str]


def reach(permissions: Iterable[Permission], action: str) -> TenantReach:
    """Where a holder of `permissions` may do `action`, by the resolution rule: the `*`
    entry covers every tenant that has no entry of its own."""
    permissions = list(permissions)
    anywhere = allows(permissions, action, ANY)
    if action in GLOBAL_ACTIONS:
        return TenantReach(anywhere, frozenset())
    named = [p for p in permissions if p.tenant != ANY]
    if anywhere:
        return TenantReach(True, frozenset(p.tenant for p in named if not p.allows(action)))
    return TenantReach(False, frozenset(p.tenant for p in named if p.allows(action)))


def beyond(held: Iterable[Permission], granted: Iterable[Permission]) -> str | None:
    """The first thing `granted` allows that `held` does not ("ACTION on TENANT"), or None
    when `granted` is within `held`.

    Both are read by the resolution rule. A tenant that neither names resolves to the `*`
    entries on both sides, so checking `*` and every tenant either names covers them all;
    this is also how a `*` entry is kept from reaching past a narrower entry of `held`.
    """
    held, granted = list(held), list(granted)
    named = [p.tenant for p in granted + held if p.tenant != ANY]
    for tenant in [ANY, *dict.fromkeys(named)]:
        for action in ACTIONS:
            if allows(granted, action, tenant) and not allows(held, action, tenant):
                return f"{action} on {tenant}"
    return None


# --- the same rule as SQL, for lists -----------------------------------------------------

def grants_any(row, actions: list[str]) -> ColumnElement[bool]:
    """SQL: a stored permission row (actions space-separated, or `*`) grants one of `actions`."""
    padded = literal(" ").concat(row.actions).concat(" ")
    return or_(row.actions == ANY, *(padded.contains(f" {a} ", autoescape=True) for a in actions))


def not_allowed(entry: Permission | None, actions: Iterable[str]) -> list[str]:
    """The `actions` that `entry` (None: no entry) does not allow."""
    return [a for a in actions if entry is None or not entry.allows(a)]


def beyond_clause(held: Iterable[Permission]) -> ColumnElement[bool]:
    """SQL, for a query over AccessToken: the token's permissions are not within `held`
    (what `beyond` says, read row by row).

    A row of the token is a witness when it allows, on a tenant it governs, an action
    `held` does not allow there: the `*` row on `*` (every action) and on each tenant
    `held` names that the token does not name itself (tenant actions); any other row on
    its own tenant (tenant actions: global ones resolve to the `*` row only).
    """
    held = list(held)
    wildcard = next((p for p in held if p.tenant == ANY), None)
    named = {p.tenant: p for p in held if p.tenant != ANY}
    row, other = aliased(TokenPermission), aliased(TokenPermission)
    witnesses = []
    if missing := not_allowed(wildcard, ACTIONS):
        witnesses.append(and_(row.tenant == ANY, grants_any(row, missing)))
    for tenant, entry in named.items():
        if missing := not_allowed(entry, TENANT_ACTIONS):
            token_names_it = exists().where(other.token_id == row.token_id, other.tenant == tenant)
            witnesses.append(and_(row.tenant == ANY, grants_any(row, missing), not_(token_names_it)))
            witnesses.append(and_(row.tenant == tenant, grants_any(row, missing)))
    if missing := not_allowed(wildcard, TENANT_ACTIONS):
        witnesses.append(and_(row.tenant.not_in([ANY, *named]), grants_any(row, missing)))
    if not witnesses:
        return false()  # `held` allows everything everywhere
    return exists().where(row.token_id == AccessToken.id, or_(*witnesses))


def within_clause(held: Iterable[Permission]) -> ColumnElement[bool]:
    """SQL: the token's permissions are within `held`."""
    return not_(beyond_clause(held))


def parse_cli_spec(spec: str) -> Permission:
    """Parse `site1=READ_TENANT,MANAGE_PROFILES` (the CLI's --tenant form)."""
    tenant, sep, actions = spec.partition("=")
    if not sep:
        raise TokenError(f"{spec!r}: expected TENANT=ACTION[,ACTION...]", "tenant")
    try:
        entries = normalize([{"tenant": tenant, "actions": actions.replace(",", " ").split()}])
        check_grantable(entries)
        return entries[0]
    except TokenError as error:
        raise TokenError(f"{spec!r}: {error.message}", "tenant") from None
