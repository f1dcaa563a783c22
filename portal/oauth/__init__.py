"""The OAuth 2.0 / OpenID Connect authorization server."""

from flask import Blueprint

bp = Blueprint("oauth", __name__)


def init_oauth(app) -> None:
    from portal.oauth import cors, logout, views  # noqa: F401 - registers the routes and hooks
    from portal.oauth.server import init_server

    init_server(app)
    app.register_blueprint(bp)
