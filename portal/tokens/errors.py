"""Errors the token core raises; each names the field or reason at fault."""

from portal.domain.rules import RuleError


class TokenError(RuleError):
    """Input the token core refuses; `field` names the part at fault."""

    default_field = "token"


class DuplicateValueError(TokenError):
    """A token with that value already exists."""

    def __init__(self):
        super().__init__("a token with this value already exists", "value")


class UnknownTenantError(TokenError):
    """A permission entry names a tenant that does not exist."""


class NotPermittedError(TokenError):
    """A master token asked for something beyond its own permissions; `missing` names the
    first thing it lacks ("ACTION on TENANT")."""

    def __init__(self, message: str, missing: str):
        super().__init__(message, "tenant_permissions")
        self.missing = missing


class InvalidTokenError(Exception):
    """A presented value that does not authenticate: unknown, expired, revoked, ..."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
