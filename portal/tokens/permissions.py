"""Tenant permissions and how they resolve (DESIGN.md, "Tenant permission").

An entry for the named tenant wins over a `*` entry, whatever their order; entries are
never merged; no matching entry means denied. Global actions (and listing all tenants)
look only at the `*` entry.
"""

from collections.abc import Iterable
from dataclasses import dataclass

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
DEFAULT_ROW_ACTIONS = ("READ_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS")


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


def normalize(entries: Iterable) -> list[Permission]:
    """Check and normalise entries given as Permission, dict or (tenant, actions) pairs."""
    result: list[Permission] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        field = f"tenant_permissions[{index}]"
        if isinstance(entry, Permission):
            tenant, actions = entry.tenant, entry.actions
        elif isinstance(entry, dict):
            tenant, actions = entry.get("tenant"), entry.get("actions", [])
        else:
            tenant, actions = entry
        if not isinstance(tenant, str) or not tenant.strip():
            raise TokenError("each entry needs a tenant name or *", f"{field}.tenant")
        tenant = tenant.strip()
        if isinstance(actions, str):
            actions = actions.replace(",", " ").split()
        if not isinstance(actions, (list, tuple, set, frozenset)) or not all(isinstance(a, str) for a in actions):
            raise TokenError("actions must be a list of action names", f"{field}.actions")
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


def parse_cli_spec(spec: str) -> Permission:
    """Parse `site1=READ_TENANT,MANAGE_PROFILES` (the CLI's --tenant form)."""
    tenant, sep, actions = spec.partition("=")
    if not sep:
        raise TokenError(f"{spec!r}: expected TENANT=ACTION[,ACTION...]", "tenant")
    return normalize([{"tenant": tenant, "actions": actions}])[0]
