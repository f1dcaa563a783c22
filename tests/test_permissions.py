"""Tenant-permission resolution, exactly as DESIGN.md words it."""

import pytest

from portal.tokens import TokenError
from portal.tokens.permissions import Permission, allows, normalize, parse_cli_spec


def entries(*pairs):
    return normalize([{"tenant": tenant, "actions": actions} for tenant, actions in pairs])


def stored(*pairs):
    """Entries as read from the database, where an entry without actions may be kept from
    before every entry needed one."""
    return [Permission(tenant, frozenset(actions)) for tenant, actions in pairs]


def test_specific_tenant_entry_allows_its_actions():
    permissions = entries(("site1", ["READ_TENANT", "MANAGE_PROFILES"]))
    assert allows(permissions, "READ_TENANT", "site1")
    assert allows(permissions, "MANAGE_PROFILES", "site1")
    assert not allows(permissions, "DELETE_TENANT", "site1")


def test_no_matching_entry_means_denied():
    permissions = entries(("site1", ["*"]))
    assert not allows(permissions, "READ_TENANT", "site2")
    assert not allows([], "READ_TENANT", "site1")


def test_wildcard_tenant_covers_any_tenant():
    permissions = entries(("*", ["READ_TENANT"]))
    assert allows(permissions, "READ_TENANT", "site1")
    assert allows(permissions, "READ_TENANT", "anything")
    assert not allows(permissions, "UPDATE_TENANT", "site1")


@pytest.mark.parametrize("order", ["specific-first", "wildcard-first"])
def test_specific_entry_beats_wildcard_whatever_the_order(order):
    pairs = [("site1", ["READ_TENANT"]), ("*", ["*"])]
    if order == "wildcard-first":
        pairs.reverse()
    permissions = entries(*pairs)
    assert allows(permissions, "READ_TENANT", "site1")
    # Not merged: the * entry's actions do not leak into site1.
    assert not allows(permissions, "MANAGE_PROFILES", "site1")
    assert allows(permissions, "MANAGE_PROFILES", "site2")


def test_a_stored_entry_with_no_actions_denies_that_tenant():
    permissions = stored(("*", ["*"]), ("site2", []))
    assert not allows(permissions, "READ_TENANT", "site2")
    assert allows(permissions, "READ_TENANT", "site3")


def test_star_action_means_every_action():
    permissions = entries(("site1", ["*"]))
    for action in ("READ_TENANT", "UPDATE_TENANT", "DELETE_TENANT", "MANAGE_PROFILES", "MANAGE_TICKETS"):
        assert allows(permissions, action, "site1")


def test_global_action_needs_a_wildcard_entry():
    assert not allows(entries(("site1", ["*"])), "CREATE_TENANT", "site1")
    assert not allows(entries(("site1", ["CREATE_TENANT"])), "CREATE_TENANT")
    assert allows(entries(("*", ["CREATE_TENANT"])), "CREATE_TENANT")
    assert allows(entries(("*", ["*"])), "CREATE_TENANT")


def test_listing_all_tenants_reads_only_the_wildcard_entry():
    assert allows(entries(("*", ["READ_TENANT"])), "READ_TENANT", "*")
    assert not allows(entries(("site1", ["READ_TENANT"])), "READ_TENANT", "*")
    # A specific entry does not shadow the * entry for an across-tenants question.
    assert allows(stored(("site1", []), ("*", ["READ_TENANT"])), "READ_TENANT", "*")


def test_star_action_is_stored_alone():
    (permission,) = entries(("site1", ["READ_TENANT", "*"]))
    assert permission.actions == frozenset({"*"})


@pytest.mark.parametrize(
    "raw, field",
    [
        ([{"tenant": "site1", "actions": ["READ_TENANT", "FLY"]}], "tenant_permissions[0].actions"),
        ([{"tenant": "", "actions": []}], "tenant_permissions[0].tenant"),
        ([{"tenant": "site1", "actions": [1]}], "tenant_permissions[0].actions"),
        ([{"tenant": "site1", "actions": ["*"]}, {"tenant": "site1", "actions": ["*"]}],
         "tenant_permissions[1].tenant"),
        ([{"tenant": "site1", "actions": []}], "tenant_permissions[0].actions"),
        ([{"tenant": "site1"}], "tenant_permissions[0].actions"),
        ([{"tenant": "site1", "actions": "READ_TENANT"}], "tenant_permissions[0].actions"),
        ([{"tenant": f"t{i}", "actions": ["*"]} for i in range(101)], "tenant_permissions"),
        ([{"actions": ["READ_TENANT"]}], "tenant_permissions[0].tenant"),
    ],
)
def test_bad_entries_are_refused_with_the_field_named(raw, field):
    with pytest.raises(TokenError) as caught:
        normalize(raw)
    assert caught.value.field == field


def test_cli_spec():
    assert parse_cli_spec("site1=READ_TENANT,MANAGE_PROFILES") == Permission(
        "site1", frozenset({"READ_TENANT", "MANAGE_PROFILES"})
    )
    assert parse_cli_spec("*=*") == Permission("*", frozenset({"*"}))
    for spec in ("site1", "site1=", "site1=,", "site1=FLY"):
        with pytest.raises(TokenError) as caught:
            parse_cli_spec(spec)
        assert caught.value.field == "tenant" and repr(spec) in caught.value.message
