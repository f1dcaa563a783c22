"""Build a django-oauth-toolkit database the way GeoNode has one: Django's own migrations,
users made with Django's make_password, an application whose secret DOT hashed, and
access and refresh tokens. Prints what the tests need to know, as JSON.

Run as: DOT_DATABASE_URL=... python -m tests.importers.make_dot_database [strangers | odd]
(the users an import could take for Tessera users, see build_strangers; the records an
importer must not trust, see build_odd).
"""

import json
import os
import sys
from datetime import UTC, datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.importers.django_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import (Argon2PasswordHasher, PBKDF2PasswordHasher,  # noqa: E402
                                         make_password)
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import AccessToken, Application, RefreshToken  # noqa: E402

PASSWORDS = {"alice": "alice-old-password", "gnadmin": "admin-old-password", "bob": "bob-old-password",
             "jürgen": "jurgen-old-password", "mallory": "mallory-old-password"}


class LowMemoryArgon2(Argon2PasswordHasher):
    """argon2 as RFC 9106's second recommendation has it: 64 MiB, the most Tessera checks
    (Django's own default asks for 100 MiB)."""

    memory_cost, time_cost, parallelism = 65536, 3, 4


def pbkdf2(iterations: int) -> PBKDF2PasswordHasher:
    return type("PBKDF2", (PBKDF2PasswordHasher,), {"iterations": iterations})()


def argon2(memory_cost: int, time_cost: int, parallelism: int) -> Argon2PasswordHasher:
    return type("Argon2", (Argon2PasswordHasher,), {"memory_cost": memory_cost, "time_cost": time_cost,
                                                    "parallelism": parallelism})()


HASHERS = {"alice": "pbkdf2_sha256", "gnadmin": LowMemoryArgon2(), "bob": "bcrypt_sha256",
           "jürgen": "pbkdf2_sha256", "mallory": "md5"}
GEOSERVER_SECRET = "geoserver-old-secret-0123456789abcdefghij"
LEGACY_SECRET = "harvester-plain-secret-0123456789"


def build() -> dict:
    call_command("migrate", verbosity=0)
    now = timezone.now()
    people = {}
    for username, password in PASSWORDS.items():
        people[username] = User.objects.create(
            username=username, email=f"{username}@example.org", first_name=username.title(), last_name="Old",
            password=make_password(password, hasher=HASHERS[username]),
            is_superuser=username == "gnadmin", is_staff=username in ("gnadmin", "bob"))
    carol = User(username="carol", email="carol@example.org")
    carol.set_unusable_password()
    carol.save()
    geoserver = Application.objects.create(
        name="GeoServer", client_id="geoserver-client-id", client_secret=GEOSERVER_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://localhost:8080/geoserver/index.html https://geo.example.org/geoserver/index.html")
    viewer = Application.objects.create(
        name="Map viewer", client_id="map-viewer", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://maps.example.org/callback")

    # A client registered with DOT's hash_client_secret off: its secret is stored as typed.
    Application.objects.create(
        name="Harvester", client_id="harvester", client_secret=LEGACY_SECRET, hash_client_secret=False,
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS)

    def token(value, user, application, *, expires_in, scope="read write", refresh=None):
        access = AccessToken.objects.create(token=value, user=user, application=application, scope=scope,
                                            expires=now + timedelta(seconds=expires_in))
        if refresh:
            RefreshToken.objects.create(token=refresh, access_token=access, user=user, application=application)
        return access

    token("alice-access-token-000000000001", people["alice"], geoserver, expires_in=3600,
          scope="openid read write", refresh="alice-refresh-token-00000000001")
    token("gnadmin-access-token-0000000002", people["gnadmin"], geoserver, expires_in=86400)
    token("viewer-access-token-00000000003", people["bob"], viewer, expires_in=3600)
    token("expired-access-token-0000000004", people["alice"], geoserver, expires_in=-60)
    # An expired access token whose refresh token still renews it.
    token("stale-access-token-000000000005", people["bob"], geoserver, expires_in=-60,
          refresh="bob-refresh-token-0000000000005")
    token("jurgen-access-token-00000000006", people["jürgen"], geoserver, expires_in=3600)
    stored_secret = Application.objects.get(pk=geoserver.pk).client_secret
    return {
        "passwords": PASSWORDS, "hashes": {u: User.objects.get(username=u).password for u in PASSWORDS},
        "client_id": "geoserver-client-id", "client_secret": GEOSERVER_SECRET,
        "stored_client_secret": stored_secret, "public_client_id": "map-viewer",
        "legacy_client_id": "harvester", "legacy_secret": LEGACY_SECRET,
        "access_token": "alice-access-token-000000000001", "refresh_token": "alice-refresh-token-00000000001",
        "admin_token": "gnadmin-access-token-0000000002", "stale_refresh_token": "bob-refresh-token-0000000000005",
        "expired_token": "expired-access-token-0000000004", "refused_token": "jurgen-access-token-00000000006",
    }


GEOSERVER_OLD_SECRET = "geoserver-old-secret-0123456789abcdefghij"


def geoserver_application() -> Application:
    return Application.objects.create(
        name="GeoServer", client_id="geoserver-client-id", client_secret=GEOSERVER_OLD_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://geo.example.org/geoserver/index.html")


def access_token(value, user, application, expires, refresh=None) -> AccessToken:
    access = AccessToken.objects.create(token=value, user=user, application=application, scope="read write",
                                        expires=expires)
    if refresh:
        RefreshToken.objects.create(token=refresh, access_token=access, user=user, application=application)
    return access


def build_strangers() -> dict:
    """GeoNode users whom an import could take for Tessera users: `Ops` (nobody special in
    GeoNode; the tests give Tessera an administrator `ops`), `carla` (the tests give Tessera
    a `carla.t` with her email) and `dave` (the tests give Tessera another `dave`), each
    with a live token (Ops's with a refresh token)."""
    call_command("migrate", verbosity=0)
    hour = timezone.now() + timedelta(hours=1)
    geoserver = geoserver_application()
    for username, email in (("Ops", "ops@geonode.example"), ("carla", "carla@example.org"),
                            ("dave", "dave@geonode.example")):
        person = User.objects.create(username=username, email=email, password=make_password(f"{username}-password"))
        access_token(f"{username.lower()}-access-token-000000000001", person, geoserver, hour,
                     refresh="ops-refresh-token-000000000001" if username == "Ops" else None)
    return {"ops_token": "ops-access-token-000000000001", "ops_refresh": "ops-refresh-token-000000000001",
            "carla_token": "carla-access-token-000000000001", "dave_token": "dave-access-token-000000000001",
            "client_id": "geoserver-client-id", "client_secret": GEOSERVER_OLD_SECRET}


# Hashes whose cost lies outside Tessera's limits, or just inside: made by Django's own
# hashers, or written out by hand where computing one would take seconds to days (Tessera
# refuses those without computing them, so their digest never matters).
FAKE_DIGEST = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
ODD_PASSWORDS = {"pbkdf2-floor": "floor-password", "argon2-cap": "argon2-cap-password"}
ODD_HASHES = {
    "pbkdf2-floor": lambda: make_password("floor-password", hasher=pbkdf2(100_000)),
    "pbkdf2-below": lambda: make_password("below-password", hasher=pbkdf2(99_999)),
    "pbkdf2-one": lambda: make_password("one-password", hasher=pbkdf2(1)),
    "pbkdf2-slow": lambda: f"pbkdf2_sha256$20000000$salt0123456789ab${FAKE_DIGEST}",
    "pbkdf2-overflow": lambda: f"pbkdf2_sha256$99999999999$salt0123456789ab${FAKE_DIGEST}",
    "argon2-cap": lambda: make_password("argon2-cap-password", hasher=argon2(65536, 1, 1)),
    "argon2-django": lambda: make_password("argon2-password", hasher="argon2"),  # Django's default: 100 MiB
    "argon2-huge": lambda: "argon2$argon2id$v=19$m=262144,t=2,p=8$c2FsdHNhbHRzYWx0$" + FAKE_DIGEST[:43],
    "argon2-passes": lambda: make_password("passes-password", hasher=argon2(512, 11, 1)),
    "bcrypt-cap": lambda: "bcrypt_sha256$$2b$14$" + "a" * 53,
    "bcrypt-slow": lambda: "bcrypt_sha256$$2b$31$" + "a" * 53,
}
KEPT = ("pbkdf2-floor", "argon2-cap", "bcrypt-cap")
SLOW_SECRET_HASH = f"pbkdf2_sha256$20000000$salt0123456789ab${FAKE_DIGEST}"


def build_odd() -> dict:
    """A GeoNode database with what an importer must not take on trust: password and
    client-secret hashes that name their own cost, an application name with a
    bidirectional override, a token without an expiry (DOT's column is NOT NULL; older
    schemas and hand edits have had NULLs), one expiring in 9999; on SQLite, values of the
    wrong type too (SQLite keeps any value in any column)."""
    call_command("migrate", verbosity=0)
    hour = timezone.now() + timedelta(hours=1)
    hashes = {}
    for username, make in ODD_HASHES.items():
        hashes[username] = make()
        User.objects.create(username=username, email=f"{username}@example.org", password=hashes[username])
    erin = User.objects.create(username="erin", email="erin@example.org", password=make_password("erin-password"))
    User.objects.create(username="blob", email="blob@example.org")
    geoserver = geoserver_application()
    spoof = Application.objects.create(
        name="Map \u202eweiv", client_id="spoofed-viewer", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="https://maps.example.org/cb")
    Application.objects.create(
        name="Slow secret", client_id="slow-secret", client_secret=SLOW_SECRET_HASH, hash_client_secret=False,
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS)
    access_token("erin-access-token-000000000001", erin, geoserver, hour)
    access_token("spoof-access-token-00000000001", erin, spoof, hour)
    access_token("forever-access-token-000000001", erin, geoserver, datetime(9999, 12, 31, tzinfo=UTC))
    access_token("garbled-expiry-token-000000001", erin, geoserver, hour)
    null_expiry = access_token("null-expiry-access-token-00001", erin, geoserver, hour)
    null_renewable = access_token("null-expiry-renewable-token-01", erin, geoserver, hour,
                                  refresh="null-expiry-refresh-token-0001")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE oauth2_provider_accesstoken ALTER COLUMN expires DROP NOT NULL")
        else:
            cursor.execute("PRAGMA writable_schema=ON")
            cursor.execute("UPDATE sqlite_master SET sql = replace(sql, '\"expires\" datetime NOT NULL', "
                           "'\"expires\" datetime') WHERE name = 'oauth2_provider_accesstoken'")
            cursor.execute("PRAGMA writable_schema=OFF")
    connection.close()  # SQLite reads the changed schema on its next connection
    AccessToken.objects.filter(pk__in=[null_expiry.pk, null_renewable.pk]).update(expires=None)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("UPDATE oauth2_provider_accesstoken SET expires = 'next tuesday' WHERE token = %s",
                           ["garbled-expiry-token-000000001"])
            cursor.execute("UPDATE auth_user SET username = X'626c6f62' WHERE username = 'blob'")  # bytes
    return {"hashes": hashes, "passwords": ODD_PASSWORDS, "kept": KEPT, "slow_secret_hash": SLOW_SECRET_HASH,
            "vendor": connection.vendor, "erin_token": "erin-access-token-000000000001",
            "spoof_token": "spoof-access-token-00000000001", "forever_token": "forever-access-token-000000001",
            "garbled_token": "garbled-expiry-token-000000001", "null_token": "null-expiry-access-token-00001",
            "null_renewable_token": "null-expiry-renewable-token-01", "null_refresh": "null-expiry-refresh-token-0001"}


SCENARIOS = {"strangers": build_strangers, "odd": build_odd}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]() if sys.argv[1:] else build()))
