"""SHA-256 as lowercase hex: how token values, client secrets and rate-limit keys are stored."""

import hashlib


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
