"""The token core. Admin views, the OAuth server, the API and the CLI all call it."""

from portal.tokens.core import (
    IssuedToken,
    authenticate,
    create_session_token,
    create_token,
    delete,
    delete_for_user,
    delete_many,
    describe,
    end_login_sessions,
    end_session_token,
    extend,
    find_by_value,
    invalid_reason,
    mark_used,
    portal_application,
    replace,
    revoke,
    revoke_grant,
    session_token_alive,
    store_grant_token,
)
from portal.tokens.errors import (
    DuplicateValueError,
    InvalidTokenError,
    NotPermittedError,
    TokenError,
    UnknownTenantError,
)
from portal.tokens.permissions import ACTIONS, ANY, DEFAULT_ROW_ACTIONS, GLOBAL_ACTIONS, Permission
from portal.tokens.view import ACCESS, REFRESH, TokenUser, TokenView
from portal.tokens.values import check_custom_value, generate_value, hash_value, hint_for

__all__ = [
    "ACCESS", "ACTIONS", "ANY", "DEFAULT_ROW_ACTIONS", "GLOBAL_ACTIONS", "DuplicateValueError",
    "InvalidTokenError", "IssuedToken", "NotPermittedError", "Permission", "TokenError", "authenticate",
    "check_custom_value",
    "create_session_token", "create_token", "delete", "delete_for_user", "delete_many", "describe",
    "end_login_sessions", "end_session_token", "extend",
    "find_by_value", "generate_value", "hash_value", "hint_for", "invalid_reason",
    "mark_used", "portal_application", "REFRESH", "replace", "revoke", "revoke_grant",
    "session_token_alive", "store_grant_token", "TokenUser", "TokenView", "UnknownTenantError",
]
