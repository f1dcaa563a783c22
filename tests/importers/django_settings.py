"""The smallest Django project with django-oauth-toolkit, for building a real DOT database
(tests/importers/make_dot_database.py runs Django's own migrations against it)."""

import os
from urllib.parse import unquote, urlsplit

SECRET_KEY = "tests-importers-not-secret"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "oauth2_provider"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Django's default hasher first (pbkdf2_sha256), and the others GeoNode sites may have.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]


def database_from_url(url: str) -> dict:
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.removeprefix("sqlite:///")}
    parts = urlsplit(url)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "", "PORT": str(parts.port or "")}


DATABASES = {"default": database_from_url(os.environ["DOT_DATABASE_URL"])}
