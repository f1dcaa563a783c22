"""Login sessions across users: list the live ones, end one, log everyone out."""

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import select

from portal.domain import audit
from portal import tokens
from portal.admin import bp
from portal.admin.forms import ConfirmForm, LogEveryoneOutForm
from portal.admin.queries import SESSION, row_or_404, session_counts, sessions_by_user, text_arg
from portal.domain.audit import current_actor
from portal.auth.sessions import SESSION_TOKEN_KEY, SESSION_VERSION_KEY
from portal.extensions import db
from portal.models import AccessToken, User

COUNT_CAP = 1000
NO_SUCH_SESSION = "No such session (it may have ended already)."


@bp.route("/sessions", endpoint="sessions")
def sessions_list():
    """Live login sessions grouped by user (by username, keyset on it), each user's newest
    first; `user` narrows to usernames or emails starting with it."""
    user = text_arg(request.args, "user", 254)
    after = text_arg(request.args, "after", 150)
    groups, next_user = sessions_by_user(user, after or None)
    count, _ = session_counts(cap=COUNT_CAP)
    return render_template(
        "admin/sessions/list.html", groups=groups, user=user, count=min(count, COUNT_CAP), more=count > COUNT_CAP,
        next_url=url_for("admin.sessions", user=user or None, after=next_user) if next_user else None,
        first_url=url_for("admin.sessions", user=user or None) if after else None, form=ConfirmForm(),
        this_browser=session.get(SESSION_TOKEN_KEY), tracked=current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"])


@bp.route("/sessions/<int:token_id>/end", methods=["POST"])
def sessions_end(token_id: int):
    """End one login session: its token goes, and that browser is logged out at once."""
    token = row_or_404(AccessToken, token_id, NO_SUCH_SESSION)
    if token.source != SESSION:
        abort(404, NO_SUCH_SESSION)
    own = token.id == session.get(SESSION_TOKEN_KEY)
    username, started = token.user.username, token.created_at
    tokens.delete(token, actor=current_actor())
    if own:
        return logged_out("You ended your own session.")
    flash(f"Ended the login session of {username} started {started:%Y-%m-%d %H:%M} UTC.", "success")
    back = text_arg(request.form, "user", 254)
    return redirect(url_for("admin.sessions", user=back or None), code=303)


@bp.route("/sessions/end-all", methods=["GET", "POST"])
def sessions_end_all():
    """GET asks, saying how many sessions end; POST logs every user out of every browser,
    except this browser's session unless the admin ticks "Log me out too"."""
    form = LogEveryoneOutForm()
    own = session.get(SESSION_TOKEN_KEY)
    if request.method == "GET":
        sessions, users = session_counts()
        return render_template("admin/sessions/end_all.html", form=form, sessions=sessions, users=users,
                               tracked=current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"])
    me = db.session.get(User, current_user.id)
    keep_mine = not form.include_me.data
    sessions, users = session_counts(exclude_token_id=own if keep_mine else None)
    # Unless the admin goes too, this browser's session token stays; its cookie gets the new version below.
    tokens.end_login_sessions(select(User.id), keep_token_id=own if keep_mine else None)
    audit.record("sessions.ended_all", actor=current_actor(), target_type="login sessions",
                 sessions_ended=sessions, users=users, own_session_kept=keep_mine)
    db.session.commit()
    what = (f"{sessions} login session{'s' if sessions != 1 else ''} of {users} user{'s' if users != 1 else ''} ended"
            if current_app.config["SESSION_EXPIRED_CONTROL_ENABLED"] else "every user's login sessions ended")
    if not keep_mine:
        return logged_out(f"Logged everyone out, you too: {what}.")
    session[SESSION_VERSION_KEY] = me.session_version
    flash(f"Logged everyone out: {what}. Your session in this browser goes on.", "success")
    return redirect(url_for("admin.sessions"), code=303)


def logged_out(message: str):
    """This browser's session has ended: clear its cookie and say so on the login page."""
    logout_user()
    session.clear()
    flash(message, "success")
    return redirect(url_for("auth.login"), code=303)
