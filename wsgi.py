"""The WSGI entry point: `gunicorn wsgi:app`."""

import sys

import click

from portal import create_app
from portal.config import ConfigError

# gunicorn's exit status for an application that cannot load: a worker that exits with it
# stops the master, instead of the master starting worker after worker that fail alike.
APP_LOAD_ERROR = 4

try:
    # Under gunicorn no command runs, so no migrations (nor Alembic) are loaded; under
    # `flask --app wsgi ...` a click context is active and the `db` commands work.
    app = create_app(migrations=click.get_current_context(silent=True) is not None)
except ConfigError as error:
    print(f"Tessera cannot start: {error}", file=sys.stderr, flush=True)
    raise SystemExit(APP_LOAD_ERROR) from None
