"""Users: list and search, create, view (tokens and sessions), end sessions,
deactivate and reactivate, set a new password."""

from flask import abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from portal.domain import audit, clock, users
from portal import tokens
from portal.admin import bp
from portal.domain.words import plural
from portal.admin.forms import ConfirmForm, PasswordForm, UserEditForm, UserForm, tenant_names
from portal.admin.queries import (SESSION, UserFilters, like_prefix, live_sessions, row_or_404, split_page, text_arg,
                                  user_counts)
from portal.admin.sessions import logged_out
from portal.domain.audit import current_actor
from portal.auth.sessions import SESSION_TOKEN_KEY, SESSION_VERSION_KEY
from portal.extensions import db
from portal.models import AccessToken, LoginSession, User

PAGE_SIZE = 50


def get_user_or_404(user_id: int) -> User:
    return row_or_404(User, user_id, "No such user (it may have been deleted).")


@bp.route("/users", endpoint="users")
def users_list():
    """Users by username with their token and session counts, filtered by a username or
    email prefix, tenant, administrator and active; keyset by username."""
    filters = UserFilters.from_args(request.args)
    statement = select(User).where(*filters.conditions())
    after = (request.args.get("after") or "")[:150]  # a username from the previous page, as stored
    if after:
        statement = statement.where(User.username > after)
    found = list(db.session.scalars(statement.order_by(User.username).limit(PAGE_SIZE + 1)))
    found, last = split_page(found, PAGE_SIZE)
    next_url = url_for("admin.users", **filters.as_args(), after=last.username) if last else None
    return render_template("admin/users/list.html", users=found, counts=user_counts([u.id for u in found]),
                           filters=filters, q=filters.q, tenants=tenant_names(), next_url=next_url,
                           first_url=url_for("admin.users", **filters.as_args()) if after else None)


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
    """GET asks; POST signs the user out of every browser: their login sessions end, and
    nothing else (their API and OAuth tokens have their own action, below)."""
    user = get_user_or_404(user_id)
    form = ConfirmForm()
    if request.method == "GET":
        sessions, _ = user_token_counts(user)
        return render_template("admin/users/end_sessions.html", user=user, sessions=sessions, form=form)
    own = session.get(SESSION_TOKEN_KEY)
    mine = user.id == current_user.id
    _, ended = tokens.end_login_sessions(select(User.id).where(User.id == user.id),
                                         keep_token_id=own if mine else None)
    audit.record("user.sessions_ended", actor=current_actor(), target=user, sessions_ended=ended)
    db.session.commit()
    if mine:  # this browser goes on: its cookie gets the version the other browsers lost
        session[SESSION_VERSION_KEY] = user.session_version
    flash(f"Signed {user.username} out of every browser: {plural(ended, 'login session')} ended. Their API and "
          "OAuth tokens still work.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/revoke-tokens", methods=["GET", "POST"])
def users_revoke_tokens(user_id: int):
    """GET asks, with the count; POST deletes every API, OAuth and admin-made token of the
    user (not their login sessions): applications using them lose access at once."""
    user = get_user_or_404(user_id)
    form = ConfirmForm()
    if request.method == "GET":
        _, others = user_token_counts(user)
        return render_template("admin/users/revoke_tokens.html", user=user, others=others, form=form)
    ids = list(db.session.scalars(select(AccessToken.id).where(AccessToken.user_id == user.id,
                                                               AccessToken.source != SESSION)))
    audit.record("user.tokens_revoked", actor=current_actor(), target=user, tokens_deleted=len(ids))
    count = tokens.delete_many(ids, actor=current_actor())
    flash(f"Revoked {plural(count, 'token')} of {user.username}: applications using them "
          "lost access. Their login sessions go on.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id), code=303)


def user_token_counts(user: User) -> tuple[int, int]:
    """(live login sessions, tokens other than login sessions) of a user."""
    now = clock.now()
    return db.session.execute(
        select(func.count().filter(*live_sessions(now)), func.count().filter(AccessToken.source != SESSION))
        .where(AccessToken.user_id == user.id)).one()


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


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
def users_deactivate(user_id: int):
    """GET asks; POST refuses the user's logins and tokens until reactivated."""
    user = get_user_or_404(user_id)
    if user.id == current_user.id:
        flash("You cannot deactivate yourself.", "error")
        return redirect(url_for("admin.users_detail", user_id=user.id), code=303)
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("admin/users/deactivate.html", user=user, form=form)
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
