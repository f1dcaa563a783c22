"""`gunicorn -c gunicorn.conf.py wsgi:app` from a checkout: the settings live in the package."""

from portal.gunicorn_config import *  # noqa: F401,F403
