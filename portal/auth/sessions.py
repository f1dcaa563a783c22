"""Which session cookies still count: checked on every request, on the server."""

from flask import current_app, g, request, session

from portal.domain import clock, users
from portal import tokens
from portal.extensions import db, login_manager
from portal.models import AccessToken, User

SESSION_VERSION_KEY = "sv"
SESSION_TOKEN_KEY = "stid"
AUTHENTICATED_AT_KEY = "auth"  # when the password was last given in this session (epoch seconds)
FRESH_SECONDS = 300


def start_session(user: User) -> None:
    """A fresh session for a user who just proved who they are."""
    session.clear()
    session.permanent = True
    session[SESSION_VERSION_KEY] = user.session_version
    confirm_password_given()
    if current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"]:
        # remote_addr is the client's address, also behind TRUSTED_PROXIES (ProxyFix).
        session[SESSION_TOKEN_KEY] = tokens.create_session_token(
            user, address=request.remote_addr, user_agent=request.headers.get("User-Agent", "")).id


def confirm_password_given() -> None:
    """The user just typed their password (login, or a check before a sensitive change)."""
    session[AUTHENTICATED_AT_KEY] = clock.timestamp(clock.now())


def recently_authenticated() -> bool:
    """Was the password given in this session within the last FRESH_SECONDS?"""
    given = session.get(AUTHENTICATED_AT_KEY)
    return isinstance(given, int) and clock.timestamp(clock.now()) - given < FRESH_SECONDS


def drop_session_token(user: User) -> bool:
    """Delete this browser's session token, if it has one; False if it has none."""
    return tokens.end_session_token(session.get(SESSION_TOKEN_KEY), user)


def end_session(user: User | None) -> None:
    """Make this session's cookie worthless, even if someone kept a copy."""
    if user is not None and not drop_session_token(user):
        users.end_sessions(user)  # without a session token, only ending every session of the user ends this one
    db.session.commit()
    session.clear()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if g.get("database_unavailable"):  # rendering the 503 page: nobody can be looked up
        return None
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    if user is None or not user.active:
        return None
    if session.get(SESSION_VERSION_KEY) != user.session_version:
        return None
    if current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"]:
        token_id = session.get(SESSION_TOKEN_KEY)
        if not tokens.session_token_alive(token_id, user.id):
            return None
        tokens.mark_used(db.session.get(AccessToken, token_id))  # loaded just now: no query
    return user
