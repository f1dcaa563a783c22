"""Session login for admins and end users."""

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash

from portal.domain import audit, clock, factors, users
from portal.web import throttle
from portal.auth import bp
from portal.auth.devices import device_for, remember_device
from portal.auth.forms import LoginForm
from portal.auth.sessions import begin_second_step, drop_session_token, end_session, start_session
from portal.extensions import db, login_manager
from portal.models import User

GENERIC_FAILURE = "Invalid username or password."
UNKNOWN_USER = "unknown user"
# Compared against when the username is unknown, so both failures take as long.
DUMMY_HASH = "scrypt:32768:8:1$K3y0aXQ2Xh9bYQ7R$" + "0" * 128

login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths (no scheme, host, `//` or backslash tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def home_for(user: User) -> str:
    return url_for("admin.index") if user.is_admin else url_for("auth.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on success start a fresh session. Each attempt is counted
    before the password is checked, and taken back when it was right (portal.web.throttle)."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    # `again`: a client asked for re-authentication (prompt=login, max_age): show the form;
    # the current session lasts until the password is given.
    if current_user.is_authenticated and request.method == "GET" and not request.args.get("again"):
        return redirect(safe_next(form.next.data) or home_for(current_user))
    if form.validate_on_submit():
        account = form.username.data.strip().lower()
        try:
            attempt = throttle.guess(throttle.PASSWORD, account, device=device_for(account))
        except throttle.Refused as refused:
            raise refused.as_http() from None
        user = users.find_by_name(form.username.data)
        if user is None or not user.password_hash:
            check_password_hash(DUMMY_HASH, form.password.data)  # every failure takes as long
        if user is None or not user.check_password(form.password.data) or not user.active:
            # An unknown name is not stored as typed: it may be a password typed in the wrong box.
            audit.record("login.failed", actor=user.username if user else UNKNOWN_USER, target=user,
                         target_type="user", target_label="" if user else UNKNOWN_USER)
            db.session.commit()
            attempt.failed()
            form.password.errors.append(GENERIC_FAILURE)
            return render_template("auth/login.html", form=form)
        attempt.succeeded()
        if factors.has_factor(user):
            begin_second_step(user, safe_next(form.next.data))
            return redirect(url_for("auth.second_step"), code=303)
        complete_login(user, ("pwd",))
        # 303: the browser follows with a GET, never re-posting the password (RFC 9700 §4.12).
        response = redirect(safe_next(form.next.data) or home_for(user), code=303)
        remember_device(response, user.username)
        return response
    return render_template("auth/login.html", form=form)


def complete_login(user: User, amr: tuple[str, ...]) -> None:
    """Start the session of a user who proved who they are (`amr`: how, RFC 8176)."""
    if current_user.is_authenticated:  # re-authentication: this browser's old session ends now
        drop_session_token(current_user)
    start_session(user, amr)
    login_user(user)
    user.last_login_at = clock.now()
    audit.record("login", actor=user.username, target=user, amr=" ".join(amr) if amr != ("pwd",) else None)
    db.session.commit()


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session server-side, so a copied cookie stops working too."""
    user = current_user if current_user.is_authenticated else None
    if user is not None:
        audit.record("logout", actor=user.username, target=user)
    end_session(user)
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/")
@login_required
def home():
    """Where a user who is not an admin lands after login."""
    if current_user.is_admin:
        return redirect(url_for("admin.index"))
    return render_template("auth/home.html")
