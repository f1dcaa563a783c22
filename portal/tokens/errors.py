"""Errors the token core raises; each names the field or reason at fault."""


class TokenError(ValueError):
    """Input the token core refuses; `field` names the part at fault."""

    def __init__(self, message: str, field: str = "token"):
        super().__init__(message)
        self.field = field
        self.message = message


class DuplicateValueError(TokenError):
    """A token with that value already exists."""

    def __init__(self):
        super().__init__("a token with this value already exists", "value")


class InvalidTokenError(Exception):
    """A presented value that does not authenticate: unknown, expired, revoked, ..."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
