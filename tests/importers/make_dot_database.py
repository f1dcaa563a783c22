"""Build a django-oauth-toolkit database the way GeoNode has one: Django's own migrations,
users made with Django's make_password, an application whose secret DOT hashed, and
access and refresh tokens. Prints what the tests need to know, as JSON.

Run as: DOT_DATABASE_URL=... python -m tests.importers.make_dot_database
"""

import json
import os
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.importers.django_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import Argon2PasswordHasher, make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import AccessToken, Application, RefreshToken  # noqa: E402

PASSWORDS = {"alice": "alice-old-password", "gnadmin": "admin-old-password", "bob": "bob-old-password",
             "jürgen": "jurgen-old-password", "mallory": "mallory-old-password"}


class LowMemoryArgon2(Argon2PasswordHasher):
    """argon2 as RFC 9106's second recommendation has it: 64 MiB, the most Tessera checks
    (Django's own default asks for 100 MiB)."""

    memory_cost, time_cost, parallelism = 65536, 3, 4


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


if __name__ == "__main__":
    print(json.dumps(build()))
