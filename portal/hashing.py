"""SHA-256 as lowercase hex: how token values, client secrets and rate-limit keys are stored.

Also the password hashes Django makes (GeoNode's users and django-oauth-toolkit's client
secrets, moved here by `portal import dot`): checked as Django checks them, so an old
password or secret keeps working until it is rehashed Tessera's way. PBKDF2 is checked
with the standard library; argon2 with argon2-cffi and bcrypt with bcrypt, the libraries
Django itself uses for them (passlib, the usual wrapper, has had no release since 2020 and
trips over current bcrypt releases).
"""

import base64
import binascii
import hashlib
import hmac

# The Django hashers whose hashes Tessera checks; other hashes (md5, sha1, crypt, ...) are
# not kept by the importer.
DJANGO_PBKDF2 = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
DJANGO_HASHERS = (*DJANGO_PBKDF2, "argon2", "bcrypt_sha256", "bcrypt")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def django_algorithm(encoded) -> str | None:
    """The Django hasher that made `encoded` (`pbkdf2_sha256$...`), if Tessera can check it."""
    if not isinstance(encoded, str) or "$" not in encoded:
        return None
    algorithm = encoded.split("$", 1)[0]
    return algorithm if algorithm in DJANGO_HASHERS else None


def django_password_matches(encoded: str, password: str) -> bool:
    """Does `password` match a hash Django's make_password made? False for a malformed hash."""
    algorithm = django_algorithm(encoded)
    if algorithm is None or not isinstance(password, str):
        return False
    try:
        if algorithm in DJANGO_PBKDF2:
            _, iterations, salt, expected = encoded.split("$", 3)
            derived = hashlib.pbkdf2_hmac(DJANGO_PBKDF2[algorithm], password.encode(), salt.encode(),
                                          int(iterations))
            return hmac.compare_digest(base64.b64encode(derived).decode("ascii"), expected)
        if algorithm == "argon2":
            from argon2 import PasswordHasher
            from argon2.exceptions import Argon2Error, InvalidHashError

            try:
                # Django writes "argon2" followed by argon2's own encoding ("$argon2id$v=19$...").
                return PasswordHasher().verify(encoded[len("argon2"):], password)
            except (Argon2Error, InvalidHashError):
                return False
        import bcrypt

        secret = password.encode()
        if algorithm == "bcrypt_sha256":  # Django hashes first, so long passwords count in full
            secret = binascii.hexlify(hashlib.sha256(secret).digest())
        return bcrypt.checkpw(secret, encoded.split("$", 1)[1].encode("ascii"))
    except (ValueError, TypeError, UnicodeError):  # a malformed hash, or a too-long bcrypt secret
        return False
