"""The error every rule module raises (applications, users, tenants, the token core)."""


class RuleError(ValueError):
    """Input a rule refuses: `message` says why, for people; `field` names the part at fault."""

    default_field = "name"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field or self.default_field
