"""SHA-256 as lowercase hex: how token values, client secrets and rate-limit keys are stored.

Also the password hashes Django makes (GeoNode's users and django-oauth-toolkit's client
secrets, moved here by `portal import dot`): checked as Django checks them, so an old
password or secret keeps working until it is rehashed Tessera's way. PBKDF2 is checked
with the standard library; argon2 with argon2-cffi and bcrypt with bcrypt, the libraries
Django itself uses for them (passlib, the usual wrapper, has had no release since 2020 and
trips over current bcrypt releases).

A Django hash names its own cost, and whoever wrote the hash chose it: one with twenty
million PBKDF2 iterations costs seconds of CPU at every login attempt, an argon2 hash can
ask for gigabytes. A hash whose cost lies outside the limits below is neither kept by the
importer nor checked at login or client authentication (the check fails without doing the
work); nor is one so cheap that it hardly protects the password.
"""

import base64
import binascii
import hashlib
import hmac
import re

# The Django hashers whose hashes Tessera checks; other hashes (md5, sha1, crypt, ...) are
# not kept by the importer.
DJANGO_PBKDF2 = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
DJANGO_HASHERS = (*DJANGO_PBKDF2, "argon2", "bcrypt_sha256", "bcrypt")

# The costs a kept Django hash may name (Django 5.2 writes PBKDF2 with 1,000,000
# iterations and bcrypt with cost 12).
PBKDF2_ITERATIONS = range(100_000, 2_000_000 + 1)
BCRYPT_COST = range(10, 14 + 1)  # 2**cost rounds
ARGON2_MEMORY_KIB = range(512, 64 * 1024 + 1)  # 512 KiB: Django's first argon2 default
ARGON2_TIME_COST = range(1, 10 + 1)
ARGON2_PARALLELISM = range(1, 16 + 1)  # libargon2 starts a thread per lane

# Plain ASCII digits only: the number read here is the number the hasher would read.
_PBKDF2 = re.compile(r"(pbkdf2_sha256|pbkdf2_sha1)\$([0-9]{1,20})\$[^$]+\$[A-Za-z0-9+/]+={0,2}")
_BCRYPT = re.compile(r"(?:bcrypt|bcrypt_sha256)\$\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}")
_ARGON2 = re.compile(r"argon2\$argon2(?:id|i|d)\$(?:v=[0-9]{1,3}\$)?m=([0-9]{1,20}),t=([0-9]{1,20}),p=([0-9]{1,20})"
                     r"\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def django_algorithm(encoded) -> str | None:
    """The Django hasher that made `encoded` (`pbkdf2_sha256$...`), if Tessera can check it."""
    if not isinstance(encoded, str) or "$" not in encoded:
        return None
    algorithm = encoded.split("$", 1)[0]
    return algorithm if algorithm in DJANGO_HASHERS else None


def django_hash_problem(encoded) -> str | None:
    """Why Tessera neither keeps nor checks this Django hash (a hasher it does not check, a
    malformed hash, a cost outside the limits), or None for a hash it checks."""
    algorithm = django_algorithm(encoded)
    if algorithm is None:
        if not isinstance(encoded, str) or "$" not in encoded:
            return "not a Django password hash"
        return f"{encoded.split('$', 1)[0][:40]!r} hashes are not checked by Tessera"
    costs = []
    if algorithm in DJANGO_PBKDF2:
        match = _PBKDF2.fullmatch(encoded)
        if match:
            costs = [("iterations", int(match[2]), PBKDF2_ITERATIONS)]
    elif algorithm == "argon2":
        match = _ARGON2.fullmatch(encoded)
        if match:
            costs = [("memory (KiB)", int(match[1]), ARGON2_MEMORY_KIB), ("time cost", int(match[2]), ARGON2_TIME_COST),
                     ("parallelism", int(match[3]), ARGON2_PARALLELISM)]
    else:
        match = _BCRYPT.fullmatch(encoded)
        if match:
            costs = [("cost", int(match[1]), BCRYPT_COST)]
    if not match:
        return f"a malformed {algorithm} hash"
    for name, value, allowed in costs:
        if value not in allowed:
            return f"{algorithm} {name} {value}: Tessera checks {allowed.start} to {allowed.stop - 1}"
    return None


def django_password_matches(encoded: str, password: str) -> bool:
    """Does `password` match a hash Django's make_password made? False, without the work,
    for a hash django_hash_problem refuses."""
    if not isinstance(password, str) or django_hash_problem(encoded) is not None:
        return False
    algorithm = django_algorithm(encoded)
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
