"""Token values: generation, hashing and the non-secret hint."""

import secrets

from portal.hashing import sha256_hex

PREFIX = "tsr_"
MIN_CUSTOM_LENGTH = 16
MAX_VALUE_LENGTH = 4096


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
