"""The WSGI entry point: `gunicorn wsgi:app`."""

import click

from portal import create_app
from portal.config import ConfigError

try:
    # Under gunicorn no command runs, so no migrations (nor Alembic) are loaded; under
    # `flask --app wsgi ...` a click context is active and the `db` commands work.
    app = create_app(migrations=click.get_current_context(silent=True) is not None)
except ConfigError as error:
    raise SystemExit(f"Tessera cannot start: {error}") from None
