"""make_<model>(**overrides): rows for tests, made through the same code paths as the app."""

import itertools

from portal import tokens
from portal.extensions import db
from portal.models import Application, Tenant, User

_counter = itertools.count(1)


def make_tenant(name=None, label=None) -> Tenant:
    name = name or f"tenant{next(_counter)}"
    tenant = Tenant(name=name, label=label or name.title())
    db.session.add(tenant)
    db.session.commit()
    return tenant


def make_user(username=None, password="correct horse battery", *, email=None, is_admin=False, tenant=None,
              name="", active=True) -> User:
    username = username or f"user{next(_counter)}"
    user = User(username=username, email=email or f"{username}@example.org", name=name or username.title(),
                is_admin=is_admin, tenant=tenant, active=active)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def make_application(name=None, **overrides) -> Application:
    from portal.domain.applications import register_application

    application, secret = register_application(name=name or f"app{next(_counter)}", actor="test", **overrides)
    application.test_secret = secret
    return application


def make_token(application=None, **overrides) -> tokens.IssuedToken:
    """A token through the token core; returns IssuedToken(token, value)."""
    overrides.setdefault("source", "admin")
    overrides.setdefault("actor", "test")
    return tokens.create_token(application=application or make_application(), **overrides)
