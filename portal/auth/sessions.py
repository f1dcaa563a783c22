"""Which session cookies still count: checked on every request, on the server."""

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user

from portal.domain import clock, factors, users
from portal import tokens
from portal.extensions import db, login_manager
from portal.models import AccessToken, User

SESSION_VERSION_KEY = "sv"
SESSION_TOKEN_KEY = "stid"
AUTHENTICATED_AT_KEY = "auth"  # when the password was last given in this session (epoch seconds)
FRESH_SECONDS = 300
# How the user signed in (OIDC `amr` values, RFC 8176): `pwd`, then `otp`, `hwk` or `swk`, and
# `mfa` once two kinds were shown; portal.oauth puts them in the ID token.
AMR_KEY = "amr"
FACTOR_AT_KEY = "fa"  # when a second factor was last shown in this session (epoch seconds)
# A password was right, the second step is still to come: {"uid", "sv", "at", "next"}.
PENDING_KEY = "pending"
PENDING_SECONDS = 300
SECOND_FACTORS = ("otp", "hwk", "swk")


def start_session(user: User, amr: tuple[str, ...] = ("pwd",)) -> None:
    """A fresh session for a user who just proved who they are (`amr`: how)."""
    session.clear()
    session.permanent = True
    session[SESSION_VERSION_KEY] = user.session_version
    confirm_password_given()
    session[AMR_KEY] = list(amr)
    if any(kind in SECOND_FACTORS for kind in amr):
        session[FACTOR_AT_KEY] = clock.timestamp(clock.now())
    if current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"]:
        # remote_addr is the client's address, also behind TRUSTED_PROXIES (ProxyFix).
        session[SESSION_TOKEN_KEY] = tokens.create_session_token(
            user, address=request.remote_addr, user_agent=request.headers.get("User-Agent", "")).id


def confirm_password_given() -> None:
    """The user just typed their password (login, or a check before a sensitive change)."""
    session[AUTHENTICATED_AT_KEY] = clock.timestamp(clock.now())


def second_factor_given(kind: str) -> None:
    """The user just showed a second factor (`otp`, `hwk`, `swk`) in this session."""
    session[FACTOR_AT_KEY] = clock.timestamp(clock.now())
    amr = [value for value in session.get(AMR_KEY, ["pwd"]) if value != "mfa"]
    session[AMR_KEY] = list(dict.fromkeys(amr + [kind, "mfa"]))


def amr() -> list[str]:
    return list(session.get(AMR_KEY) or ["pwd"])


def acr() -> str:
    """`mfa` once a second factor was shown in this session, else `pwd`."""
    return "mfa" if "mfa" in amr() else "pwd"


def fresh(key: str) -> bool:
    given = session.get(key)
    return isinstance(given, int) and clock.timestamp(clock.now()) - given < FRESH_SECONDS


def recently_authenticated() -> bool:
    """Was the password given in this session within the last FRESH_SECONDS? For a user
    with a second factor only the factor counts: without a fresh one the browser is sent to
    show it (portal.auth.factors.confirm) and back, and this raises that redirect."""
    if not (current_user.is_authenticated and factors.has_factor(current_user)):
        return fresh(AUTHENTICATED_AT_KEY)
    if fresh(FACTOR_AT_KEY):
        return True
    flash("This needs your second factor again: confirm it, then send the form again.", "info")
    abort(redirect(url_for("auth.confirm_factor", next=request.path), code=303))


def begin_second_step(user: User, next_url: str | None) -> None:
    """The password was right; the session starts once the second factor is shown."""
    session[PENDING_KEY] = {"uid": user.id, "sv": user.session_version,
                            "at": clock.timestamp(clock.now()), "next": next_url or ""}


def pending_second_step() -> tuple[User, str] | None:
    """The user whose password was just right, and where they were going; None when no
    second step is pending, it took too long, or the user changed meanwhile."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int):
        return None
    if clock.timestamp(clock.now()) - pending["at"] >= PENDING_SECONDS:
        return None
    user = db.session.get(User, pending.get("uid"))
    if user is None or not user.active or user.session_version != pending.get("sv"):
        return None
    return user, pending.get("next") or ""


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
