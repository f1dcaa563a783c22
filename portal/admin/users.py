"""Users: list and search, create, view (tokens and sessions), end sessions,
deactivate and reactivate, set a new password."""

from flask import abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from portal.domain import audit, clock, users
from portal import tokens
from portal.admin import bp
from portal.admin.forms import ConfirmForm, PasswordForm, UserEditForm, UserForm
from portal.admin.queries import like_prefix, live_sessions, row_or_404, split_page, text_arg
from portal.admin.sessions import logged_out
from portal.domain.audit import current_actor
from portal.auth.sessions import SESSION_TOKEN_KEY
from portal.extensions import db
from portal.models import AccessToken, LoginSession, User

PAGE_SIZE = 50


def get_user_or_404(user_id: int) -> User:
    return row_or_404(User, user_id, "No such user.")


@bp.route("/users", endpoint="users")
def users_list():
    """Users by username, searchable by username or email prefix; keyset by username."""
    q = text_arg(request.args, "q", 254)
    statement = select(User)
    if q:
        pattern = like_prefix(q.lower())
        statement = statement.where(or_(func.lower(User.username).like(pattern, escape="\\"),
                                        func.lower(User.email).like(pattern, escape="\\")))
    after = (request.args.get("after") or "")[:150]  # a username from the previous page, as stored
    if after:
        statement = statement.where(User.username > after)
    found = list(db.session.scalars(statement.order_by(User.username).limit(PAGE_SIZE + 1)))
    found, last = split_page(found, PAGE_SIZE)
    next_url = url_for("admin.users", q=q or None, after=last.username) if last else None
    return render_template("admin/users/list.html", users=found, q=q, next_url=next_url)


@bp.route("/users/new", methods=["GET", "POST"])
def users_new():
    """Create a user (an end user, or another admin)."""
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = users.create(form.username.data, form.password.data, actor=current_actor(),
                                email=form.email.data.strip(), name=form.name.data or "",
                                tenant=form.resolved_tenant, is_admin=form.is_admin.data)
        except users.UserError as error:  # a concurrent request took the name
            getattr(form, error.field).errors.append(error.message[0].upper() + error.message[1:] + ".")
            return render_template("admin/users/new.html", form=form), 422
        db.session.commit()
        flash(f"User {user.username} created.", "success")
        return redirect(url_for("admin.users_detail", user_id=user.id), code=303)
    return render_template("admin/users/new.html", form=form), (422 if form.is_submitted() else 200)


@bp.route("/users/<int:user_id>")
def users_detail(user_id: int):
    """A user with their tokens and their active login sessions."""
    return render_detail(get_user_or_404(user_id), PasswordForm(formdata=None))


def render_detail(user: User, password_form: PasswordForm, status: int = 200):
    """The user's page; also shown again, with its errors, after a refused form."""
    user_tokens = list(db.session.scalars(
        select(AccessToken).where(AccessToken.user_id == user.id)
        .order_by(AccessToken.created_at.desc(), AccessToken.id.desc()).limit(100)))
    sessions = db.session.execute(
        select(AccessToken, LoginSession).outerjoin(LoginSession, LoginSession.token_id == AccessToken.id)
        .where(AccessToken.user_id == user.id, *live_sessions(clock.now()))
        .order_by(AccessToken.created_at.desc(), AccessToken.id.desc()).limit(100)).all()
    return render_template("admin/users/detail.html", user=user, user_tokens=user_tokens, sessions=sessions,
                           confirm=ConfirmForm(), password_form=password_form,
                           this_browser=session.get(SESSION_TOKEN_KEY)), status


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
def users_edit(user_id: int):
    """Change a user's email, name, tenant, administrator flag and active flag (not the
    username; the password has its own form). Deactivating ends their sessions."""
    user = get_user_or_404(user_id)
    form = UserEditForm() if request.method == "POST" else UserEditForm.of(user)
    if form.validate_on_submit():
        if user.id == current_user.id and not (form.is_admin.data and form.active.data):
            form.is_admin.errors = list(form.is_admin.errors) + [
                "You cannot take away your own administrator rights or deactivate yourself."]
        else:
            changed = users.update(user, email=(form.email.data or "").strip() or None, name=form.name.data or "",
                                   tenant=form.resolved_tenant, is_admin=form.is_admin.data, active=form.active.data)
            if changed:
                audit.record("user.updated", actor=current_actor(), target=user, fields=changed)
            db.session.commit()
            flash(f"User {user.username} saved.", "success")
            return redirect(url_for("admin.users_detail", user_id=user.id), code=303)
    return render_template("admin/users/edit.html", user=user, form=form), (422 if form.is_submitted() else 200)


@bp.route("/users/<int:user_id>/end-sessions", methods=["GET", "POST"])
def users_end_sessions(user_id: int):
    """GET asks, saying what goes with the sessions; POST deletes every token of the user
    and ends every login session they have, at once."""
    user = get_user_or_404(user_id)
    if request.method == "GET":
        sessions, total = db.session.execute(
            select(func.count().filter(AccessToken.source == "session"), func.count())
            .where(AccessToken.user_id == user.id)).one()
        return render_template("admin/users/end_sessions.html", user=user, sessions=sessions,
                               others=total - sessions, form=ConfirmForm())
    count = tokens.delete_for_user(user, actor=current_actor())
    flash(f"Ended every login session of {user.username}: {count} token(s) deleted. They can log in again "
          "unless deactivated or given a new password.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/sessions/<int:token_id>/end", methods=["POST"])
def users_end_session(user_id: int, token_id: int):
    """End one login session: its session token goes, and that browser is logged out at once."""
    user = get_user_or_404(user_id)
    token = row_or_404(AccessToken, token_id, "No such session (it may have ended already).")
    if token.user_id != user.id or token.source != "session":
        abort(404, "No such session (it may have ended already).")
    started, own = token.created_at, token.id == session.get(SESSION_TOKEN_KEY)
    tokens.delete(token, actor=current_actor())
    if own:
        return logged_out("You ended your own session.")
    flash(f"Ended the login session of {user.username} started {started:%Y-%m-%d %H:%M} UTC.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
def users_deactivate(user_id: int):
    """Refuse the user's logins and tokens until reactivated."""
    user = get_user_or_404(user_id)
    if user.id == current_user.id:
        flash("You cannot deactivate yourself.", "error")
        return redirect(url_for("admin.users_detail", user_id=user.id), code=303)
    users.update(user, active=False)
    audit.record("user.deactivated", actor=current_actor(), target=user)
    db.session.commit()
    flash(f"{user.username} is deactivated: they cannot log in and their tokens stop working.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
def users_reactivate(user_id: int):
    user = get_user_or_404(user_id)
    users.update(user, active=True)
    audit.record("user.reactivated", actor=current_actor(), target=user)
    db.session.commit()
    flash(f"{user.username} is active again.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
def users_password(user_id: int):
    """Set a new password; the user's existing browser sessions end."""
    user = get_user_or_404(user_id)
    form = PasswordForm()
    if form.validate_on_submit():
        users.set_password(user, form.password.data)
        audit.record("user.password_set", actor=current_actor(), target=user)
        db.session.commit()
        flash(f"New password set for {user.username}; their browser sessions ended.", "success")
        return redirect(url_for("admin.users_detail", user_id=user.id), code=303)
    return render_detail(user, form, 422)


@bp.route("/users/search")
def users_search():
    """JSON for the user picker: up to 10 users whose username or email starts with `q`."""
    q = text_arg(request.args, "q", 254).lower()
    if not q:
        return jsonify([])
    pattern = like_prefix(q)
    found = db.session.scalars(
        select(User).where(or_(func.lower(User.username).like(pattern, escape="\\"),
                               func.lower(User.email).like(pattern, escape="\\")))
        .order_by(User.username).limit(10))
    return jsonify([{"username": u.username, "email": u.email or "", "name": u.name or ""} for u in found])
