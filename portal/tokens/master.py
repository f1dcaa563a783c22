"""What a master token may do with other tokens: which it sees (lists, reads, deletes),
which users it may bind a new token to, and what it may grant. The JSON API
(/api/v1/access-tokens) and Crafter's access-token API call these and only translate the
answers into their own shapes.

- A master token reaches only tokens within its own permissions (portal.tokens.permissions:
  everything the other token allows, on any tenant, it allows too), and grants only that.
- A token that grants no tenant action is within every set, so that rule alone would show
  it to every master token: it is visible only to master tokens of its own application and
  to master tokens that allow every action on every tenant (`*`/`*`).
- Login-session tokens and tokens of administrators are never visible. A token bound to a
  user is visible only with MANAGE_PROFILES on that user's tenant (the `*` entry for a user
  without one), which creating such a token needs as well.
"""

from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, or_, select

from portal.domain import audit, users
from portal.extensions import db
from portal.models import AccessToken, Application, Tenant, TokenPermission, User
from portal.tokens import permissions as perms
from portal.tokens.core import IssuedToken, create_token
from portal.tokens.errors import NotPermittedError, TokenError
from portal.tokens.view import TokenView

PROFILE_ACTION = "MANAGE_PROFILES"
EVERYTHING = (perms.Permission(perms.ANY, frozenset({perms.ANY})),)


def holds_everything(caller: TokenView) -> bool:
    """Whether the caller allows every action on every tenant."""
    return perms.beyond(caller.permissions, EVERYTHING) is None


def missing_to_bind(caller: TokenView, user: User) -> str | None:
    """What the caller lacks to bind a token to `user` (None: nothing). Administrators are
    refused before this: no permission reaches them."""
    tenant = user.tenant.name if user.tenant else perms.ANY
    return None if perms.allows(caller.permissions, PROFILE_ACTION, tenant) else f"{PROFILE_ACTION} on {tenant}"


def reachable_users(caller: TokenView):
    """SQL: ids of the profiles the caller may manage (what `missing_to_bind` allows)."""
    reach = perms.reach(caller.permissions, PROFILE_ACTION)
    profiles = select(User.id).where(users.PROFILE)
    if reach.anywhere and not reach.tenants:
        return profiles
    if reach.anywhere:  # the `*` entry also covers users without a tenant
        excluded = select(Tenant.id).where(Tenant.name.in_(reach.tenants))
        return profiles.where(or_(User.tenant_id.is_(None), User.tenant_id.not_in(excluded)))
    return profiles.where(User.tenant_id.in_(select(Tenant.id).where(Tenant.name.in_(reach.tenants))))


def grants_a_tenant_action() -> ColumnElement[bool]:
    """SQL, for a query over AccessToken: the token has an entry with an action (an entry
    without one, kept from before entries needed one, allows nothing)."""
    return exists().where(TokenPermission.token_id == AccessToken.id, TokenPermission.actions != "")


def visible_to(caller: TokenView) -> list:
    """SQL conditions: the tokens this master token may see and delete."""
    conditions = [
        AccessToken.source != "session",
        or_(AccessToken.user_id.is_(None), AccessToken.user_id.in_(reachable_users(caller))),
        perms.within_clause(caller.permissions),
    ]
    if not holds_everything(caller):
        conditions.append(or_(AccessToken.application_id == caller.application_id, grants_a_tenant_action()))
    return conditions


def user_to_bind(caller: TokenView, username: str) -> User:
    """The profile a new token is for, which the caller must be able to manage."""
    user = users.find_by_name(username)
    if user is None:
        raise TokenError(f"unknown user {username}", "user")
    if user.is_admin:
        raise TokenError(f"{username} is an administrator: master tokens make no tokens for administrators", "user")
    if missing := missing_to_bind(caller, user):
        raise NotPermittedError(f"a token for {username} needs {missing}, which this token lacks", missing)
    return user


def check_grant(caller: TokenView, requested: Iterable[perms.Permission]) -> None:
    """A master token grants nothing beyond its own permissions."""
    if missing := perms.beyond(caller.permissions, requested):
        raise NotPermittedError(f"a token cannot grant more than it holds: this token lacks {missing}", missing)


def create(caller: TokenView, *, application: str, user: str | None = None, tenant_permissions: Iterable = (),
           **settings) -> IssuedToken:
    """A token a master token makes (source `api`), audited as made by it: the application
    by name, the user it may bind, the permissions it may grant, then the token core's own
    checks (value, tenants, expiry). `settings`: value, master, scope, expires_at, expires_in.
    Raises TokenError (NotPermittedError for what the caller lacks)."""
    found = db.session.scalar(select(Application).where(Application.name == application))
    if found is None:
        raise TokenError(f"unknown application {application}", "application")
    bound = user_to_bind(caller, user) if user is not None else None
    requested = perms.normalize(tenant_permissions)
    perms.check_grantable(requested)
    check_grant(caller, requested)
    return create_token(application=found, source="api", actor=audit.token_actor(caller), user=bound,
                        tenant_permissions=requested, **settings)
