"""Extension objects, created unbound; create_app() binds them."""

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from portal.web.csrf import SameOriginCSRFProtect

# Stable constraint names, so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = SameOriginCSRFProtect()


def init_migrations(app, directory: str) -> None:
    """Flask-Migrate, imported here: it loads Alembic (about 11 MB in every process), which
    a serving worker never uses; the command line and the tests call this."""
    from flask_migrate import Migrate

    Migrate(app, db, directory=directory, compare_type=True, render_as_batch=True)
