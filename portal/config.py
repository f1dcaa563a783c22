"""Settings read from the environment, with safe defaults (see docs/configuration.md)."""

import os
import secrets
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 1, unit: str = "seconds") -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number{' of ' + unit if unit else ''}, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


LOG_FORMATS = ("text", "json")
WORKER_CLASSES = ("gthread", "sync")


def server_workers() -> int:
    """gunicorn's worker processes: WEB_CONCURRENCY, else twice the cores (2 to 4)."""
    return env_int("WEB_CONCURRENCY", max(2, min(4, (os.cpu_count() or 1) * 2)), unit="")


def server_worker_class() -> str:
    """gthread, or sync (one request at a time per worker). Not gevent or eventlet: their
    greenlets would share one thread's database connection (portal.db.connections)."""
    worker_class = os.environ.get("WORKER_CLASS", "").strip().lower() or "gthread"
    if worker_class not in WORKER_CLASSES:
        raise ConfigError(f"WORKER_CLASS must be gthread or sync, not {worker_class!r}")
    return worker_class


def server_threads() -> int:
    """Threads per worker: THREADS, else one more than there are workers, at least 4 (slow
    clients hold none: portal.gunicorn_workers). A sync worker has one: gunicorn would run
    gthread for more, whatever WORKER_CLASS says."""
    if server_worker_class() == "sync":
        if env_int("THREADS", 1, unit="") != 1:
            raise ConfigError("THREADS must be 1 (or unset) with WORKER_CLASS=sync")
        return 1
    return env_int("THREADS", max(4, server_workers() + 1), unit="")


def log_format() -> str:
    """LOG_FORMAT: `text`, or `json` for one JSON object per line."""
    value = os.environ.get("LOG_FORMAT", "").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, not {value!r}")
    return value


SECOND_FACTOR_POLICIES = ("optional", "required")


def admin_second_factor() -> str:
    """ADMIN_SECOND_FACTOR: `optional`, or `required` (administrators enrol before anything else)."""
    value = os.environ.get("ADMIN_SECOND_FACTOR", "").strip().lower() or "optional"
    if value not in SECOND_FACTOR_POLICIES:
        raise ConfigError(f"ADMIN_SECOND_FACTOR must be optional or required, not {value!r}")
    return value


def instance_secret_key(instance_path: str) -> str:
    """Read SECRET_KEY from the instance folder, generating it once (mode 0600)."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def access_token_format() -> str:
    """ACCESS_TOKEN_FORMAT: opaque (unset or empty) or jwt."""
    token_format = os.environ.get("ACCESS_TOKEN_FORMAT", "opaque").strip().lower() or "opaque"
    if token_format not in {"opaque", "jwt"}:
        raise ConfigError(f"ACCESS_TOKEN_FORMAT must be opaque or jwt, not {token_format!r}")
    return token_format


def settings_from_environment(instance_path: str, skip_secret: bool = False) -> dict:
    """Every setting Tessera reads, as Flask config keys."""
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'tessera.db'}"
    token_format = access_token_format()
    session_secure = env_bool("SESSION_COOKIE_SECURE", False)
    access_token_expire = env_int("ACCESS_TOKEN_EXPIRE_SECONDS", 86400)
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": None if skip_secret else os.environ.get("SECRET_KEY") or instance_secret_key(instance_path),
        "ACCESS_TOKEN_EXPIRE_SECONDS": access_token_expire,
        "OIDC_TOKEN_EXPIRE": env_int("OIDC_TOKEN_EXPIRE", 3600),
        # /jwks max-age, and how long `portal rotate-keys` publishes a key before it signs.
        "JWKS_CACHE_SECONDS": env_int("JWKS_CACHE_SECONDS", 300),
        "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("REFRESH_TOKEN_EXPIRE_SECONDS", 2592000),
        "SESSION_EXPIRED_CONTROL_ENABLED": env_bool("SESSION_EXPIRED_CONTROL_ENABLED", True),
        "ALLOW_QUERY_ACCESS_TOKEN": env_bool("ALLOW_QUERY_ACCESS_TOKEN", True),
        # GeoNode's endpoints for GeoServer (portal.compat.geonode); its role service answers
        # only these addresses or networks (GeoNode's setting name), loopback by default.
        "GEONODE_COMPAT": env_bool("GEONODE_COMPAT", True),
        "AUTH_IP_WHITELIST": os.environ.get("AUTH_IP_WHITELIST", "").strip() or "127.0.0.1, ::1",
        # The audiences (client ids, resource URIs) whose tokens its tokeninfo and userinfo accept; empty: any.
        "GEONODE_AUDIENCES": os.environ.get("GEONODE_AUDIENCES", ""),
        # Who may read /metrics (portal.web.addresses reads both lists).
        "METRICS_ALLOW": os.environ.get("METRICS_ALLOW", "").strip() or "127.0.0.1, ::1",
        # How many proxies' X-Forwarded-* headers to trust (werkzeug's ProxyFix; portal.web.addresses).
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0, minimum=0, unit=""),
        "LOG_FORMAT": log_format(),
        "ACCESS_TOKEN_FORMAT": token_format,
        # The throttle's counters (portal.web.throttle): the application database by default, one
        # count for every worker and host (portal.web.ratelimit).
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or "database://",
        "ADMIN_SECOND_FACTOR": admin_second_factor(),
        "ISSUER": (os.environ.get("ISSUER") or "").rstrip("/") or None,
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "5 per minute"),
        "LOGIN_IP_RATE_LIMIT": os.environ.get("LOGIN_IP_RATE_LIMIT", "30 per minute"),
        # Sign-ins from a browser that carries the account's device cookie count here instead.
        "LOGIN_DEVICE_RATE_LIMIT": os.environ.get("LOGIN_DEVICE_RATE_LIMIT", "5 per minute"),
        # Failed client authentications (per client id at one address / per address) and failed
        # bearer tokens (per address).
        "CLIENT_AUTH_RATE_LIMIT": os.environ.get("CLIENT_AUTH_RATE_LIMIT", "10 per minute"),
        "CLIENT_AUTH_IP_RATE_LIMIT": os.environ.get("CLIENT_AUTH_IP_RATE_LIMIT", "30 per minute"),
        "BEARER_IP_RATE_LIMIT": os.environ.get("BEARER_IP_RATE_LIMIT", "60 per minute"),
        # Secure cookies need HTTPS; behind TLS set SESSION_COOKIE_SECURE=true to get
        # a Secure, __Host- prefixed cookie.
        "SESSION_COOKIE_SECURE": session_secure,
        "SESSION_COOKIE_NAME": "__Host-tessera" if session_secure else "tessera_session",
        "PERMANENT_SESSION_LIFETIME": access_token_expire,
    }


class BaseConfig:
    """Defaults that hold everywhere; the environment and the caller override them."""

    # hide_parameters: an error's text (and so a log line) never carries a statement's values.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    WTF_CSRF_SSL_STRICT = False  # replaced by portal.web.csrf's same-origin check, which reads what browsers send
    MAX_CONTENT_LENGTH = 1024 * 1024
    JSON_SORT_KEYS = False
