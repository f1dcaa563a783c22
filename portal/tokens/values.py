"""Token values: generation, hashing and the non-secret hint."""

import re
import secrets

from portal.domain.hashing import sha256_hex
from portal.tokens.errors import TokenError

PREFIX = "tsr_"
MIN_CUSTOM_LENGTH = 16
MAX_VALUE_LENGTH = 4096
# A value a person types (migrating tokens another system handed out): printable ASCII
# without spaces, as an Authorization header or a URL carries it. The admin form, the API
# (its OpenAPI pattern) and the CLI all check this one rule.
CUSTOM_VALUE_PATTERN = rf"^[!-~]{{{MIN_CUSTOM_LENGTH},{MAX_VALUE_LENGTH}}}$"


def generate_value() -> str:
    """32 random bytes, URL-safe, with a prefix secret scanners can spot."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_value(value: str) -> str:
    return sha256_hex(value)


def hint_for(value: str) -> str:
    """A short piece that identifies a token in lists without revealing it."""
    if value.startswith(PREFIX):
        return value[:8]
    if value.startswith("eyJ") and value.count(".") == 2:  # a JWT: its head is the same for all
        return "jwt_" + value[-4:]
    return value[:4]


def check_custom_value(value: str) -> str:
    """A typed value, trimmed, or TokenError saying what is wrong with it."""
    if not isinstance(value, str):
        raise TokenError("the token value must be a string", "value")
    value = value.strip()
    if len(value) < MIN_CUSTOM_LENGTH:
        raise TokenError(f"a custom token value needs at least {MIN_CUSTOM_LENGTH} characters", "value")
    if not re.match(CUSTOM_VALUE_PATTERN, value):
        raise TokenError(f"a custom token value has at most {MAX_VALUE_LENGTH} characters, printable ASCII "
                         "without spaces", "value")
    return value
