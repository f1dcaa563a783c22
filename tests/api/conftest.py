"""API fixtures: tenants site1 and site2, an application, and tokens with chosen
permissions, all made through the token core."""

import pytest

from tests.factories import make_application, make_tenant, make_token


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def site1(app):
    return make_tenant("site1", "Site One")


@pytest.fixture
def site2(app):
    return make_tenant("site2", "Site Two")


@pytest.fixture
def application(app):
    return make_application("crafterengine")


@pytest.fixture
def token_for(application, site1, site2):
    """token_for(("site1", ["MANAGE_PROFILES"]), ("*", ["READ_TENANT"]), master=False) -> value"""

    def make(*entries, master=False, **overrides) -> str:
        permissions = [{"tenant": tenant, "actions": list(actions)} for tenant, actions in entries]
        return make_token(application=application, master=master, tenant_permissions=permissions,
                          **overrides).value

    return make


@pytest.fixture
def master(token_for) -> str:
    """A master token with every action on every tenant (as adminconsole)."""
    return token_for(("*", ["*"]), master=True)


@pytest.fixture
def plain(token_for) -> str:
    """A non-master token with every action on every tenant."""
    return token_for(("*", ["*"]))
