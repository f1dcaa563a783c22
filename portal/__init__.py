"""Tessera: an access-token authority. `create_app()` builds the Flask application."""

# The one place the release is named: the wheel's version (pyproject.toml reads it) and `portal --version`.
__version__ = "0.4.5"

import os
from functools import partial
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import BaseConfig, server_threads, settings_from_environment
from portal.db.connections import close_hot_connection
from portal.extensions import csrf, db, init_migrations, login_manager

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
# An installed wheel carries migrations/, templates/ and static/ inside the package; a
# checkout (and an editable install) has them at the top level.
INSTALLED = (PACKAGE / "migrations").is_dir()


def bundled(folder: str) -> str:
    """The path of one of the top-level folders that ship with the code."""
    return str((PACKAGE if INSTALLED else ROOT) / folder)


def default_instance_path() -> str | None:
    """`instance/` of a checkout; an installed package uses Flask's (<prefix>/var/portal-instance)."""
    return None if INSTALLED else str(ROOT / "instance")


class TrailingSlashTolerance:
    """Serve `/token/` as `/token`, so examples written for other providers work unchanged."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.wsgi_app(environ, start_response)


@event.listens_for(Engine, "connect")
def tune_sqlite(dbapi_connection, connection_record):
    """Foreign keys on (cascading deletes), WAL so several workers can read while one writes."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def hook_owner(hook):
    """The extension object a registered hook belongs to (a bound method or a partial)."""
    if isinstance(hook, partial):
        return hook.args[0] if hook.args else None
    return getattr(hook, "__self__", None)


def confine_login_hooks(app: Flask, blueprint: str) -> None:
    """Flask-Login hooks into every request, but Tessera's only remember-cookie changes are
    on the login and logout views: its hooks run for that blueprint alone (docs/benchmark.md)."""
    for registry in (app.after_request_funcs, app.teardown_request_funcs):
        hooks = registry[None]
        confined = [hook for hook in hooks if hook_owner(hook) is login_manager]
        hooks[:] = [hook for hook in hooks if hook not in confined]
        registry.setdefault(blueprint, []).extend(confined)


def create_app(config: dict | None = None, *, migrations: bool = True) -> Flask:
    """Build the app: environment settings first, then `config` (tests pass a dict).
    `migrations=False` leaves out Flask-Migrate's commands (gunicorn workers, see wsgi.py)."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("TESSERA_INSTANCE_PATH") or \
        default_instance_path()
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        template_folder=bundled("templates"),
        static_folder=bundled("static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_object(BaseConfig)
    app.config.update(settings_from_environment(app.instance_path, skip_secret="SECRET_KEY" in (config or {})))
    app.config.update(config or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A file cannot drop a connection: the pre-ping would be one more statement per request.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}
    else:
        # A worker thread holds up to two connections (portal.db.connections), a third for a
        # moment while a failed authentication counts (portal.web.ratelimit).
        threads = server_threads()
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 2 * threads, "max_overflow": threads,
                                                   **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}

    from portal.web import addresses, errors, metrics, operations, security, throttle, times
    from portal.web.logging import RequestIds, configure_app_logging

    configure_app_logging(app)
    addresses.register(app)
    times.register(app)
    db.init_app(app)
    app.teardown_appcontext(close_hot_connection)
    if migrations:
        init_migrations(app, bundled("migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    from portal.admin import bp as admin_bp
    from portal.api import bp as api_bp
    from portal.auth import bp as auth_bp
    from portal.cli import register_commands
    from portal.compat import init_compat
    from portal.oauth import init_oauth

    throttle.init_app(app)
    errors.register(app)
    security.register(app)
    app.after_request(metrics.count_request)
    app.register_blueprint(operations.bp)
    app.register_blueprint(auth_bp)
    confine_login_hooks(app, auth_bp.name)
    app.register_blueprint(admin_bp)
    app.register_blueprint(api_bp)
    init_oauth(app)
    init_compat(app)
    register_commands(app)

    app.wsgi_app = TrailingSlashTolerance(app.wsgi_app)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    app.wsgi_app = RequestIds(app.wsgi_app, trust_proxy=bool(proxies))
    return app
