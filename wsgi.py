"""The WSGI entry point: `gunicorn wsgi:app`."""

from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    raise SystemExit(f"Tessera cannot start: {error}") from None
