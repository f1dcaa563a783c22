"""Access tokens: list, search, view, create, extend, replace, delete.

Every write goes through the token core (portal.tokens); these views only read rows,
validate forms and show results. A token's value is shown once, on the page that made it.
"""

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.web import throttle
from portal import tokens
from portal.admin import bp, shown_once
from portal.admin.forms import (ConfirmForm, ExtendForm, PermissionRows, TokenCreateForm, TokenReplaceForm,
                                application_choices, default_expiry, tenant_names)
from portal.admin.queries import (EXPIRING_DAYS, SORT_LABELS, TokenFilters, audit_for, count_tokens,
                                  estimated_count, parse_id, row_or_404, token_page)
from portal.domain.audit import current_actor
from portal.auth.sessions import confirm_password_given, recently_authenticated
from portal.extensions import db
from portal.models import AccessToken, User
from portal.models.token import SOURCES, STATES
from portal.web.security import no_store
from portal.tokens import ACTIONS, ANY, DEFAULT_ROW_ACTIONS


def get_token_or_404(token_id: int) -> AccessToken:
    return row_or_404(AccessToken, token_id, "No such token (it may have been deleted or replaced).")


def editor_context(rows: PermissionRows) -> dict:
    return {"perm_rows": rows, "tenant_choices": [ANY] + tenant_names(), "actions": ACTIONS,
            "default_actions": DEFAULT_ROW_ACTIONS}


def editor_button() -> tuple[str, int | None]:
    """Which submit button was pressed: save, add a row, or remove row N (no-JS editor)."""
    if "add_row" in request.form:
        return "add", None
    for key in request.form:
        if key.startswith("remove_row_"):
            try:
                return "remove", int(key.removeprefix("remove_row_"))
            except ValueError:
                break
    return "save", None


@bp.route("/tokens", endpoint="tokens")
def tokens_list():
    """Every token, newest first, with search and filters; keyset-paginated."""
    filters = TokenFilters.from_args(request.args)
    rows, next_cursor = token_page(filters, request.args.get("after"))
    next_url = url_for("admin.tokens", **filters.as_args(), after=next_cursor) if next_cursor else None
    first_url = url_for("admin.tokens", **filters.as_args()) if request.args.get("after") else None
    count, more = count_tokens(filters)
    return render_template("admin/tokens/list.html", rows=rows, filters=filters, next_url=next_url,
                           first_url=first_url, applications=application_choices(), sources=SOURCES,
                           tenants=tenant_names(), sort_labels=SORT_LABELS, statuses=STATES, form=ConfirmForm(),
                           count=count, more=more, estimate=estimated_count(filters) if more else None,
                           headers=sortable_headers(filters), expiring_days=EXPIRING_DAYS)


# A sortable column's header: its first order, or the reverse of the current one.
HEADER_SORTS = {"created": ("created_desc", "created_asc"), "expires": ("expires_asc", "expires_desc")}


def sortable_headers(filters: TokenFilters) -> dict:
    """Per sortable column: the URL its header links to, and its aria-sort (None if unsorted)."""
    headers = {}
    for column, (first, second) in HEADER_SORTS.items():
        current = filters.sort if filters.sort in (first, second) else None
        headers[column] = {
            "url": url_for("admin.tokens", **{**filters.as_args(), "sort": second if current == first else first}),
            "sort": None if current is None else ("descending" if current.endswith("_desc") else "ascending"),
        }
    return headers




@bp.route("/tokens/delete", methods=["POST"])
def tokens_delete_selected():
    """Bulk delete in one confirmed step: the first POST asks, the second (confirm=yes) deletes."""
    form = ConfirmForm()
    ids = [i for i in map(parse_id, request.form.getlist("ids")) if i is not None][:500]
    if not ids:
        flash("Select at least one token to delete.", "error")
        return redirect(url_for("admin.tokens"), code=303)
    if request.form.get("confirm") != "yes":
        selected = list(db.session.scalars(select(AccessToken).where(AccessToken.id.in_(ids))
                                           .order_by(AccessToken.id)))
        return render_template("admin/tokens/delete_many.html", selected=selected, form=form)
    count = tokens.delete_many(ids, actor=current_actor())
    flash(f"Deleted {count} token{'s' if count != 1 else ''}. Applications using them lost access.", "success")
    return redirect(url_for("admin.tokens"), code=303)


@bp.route("/tokens/new", methods=["GET", "POST"])
def tokens_new():
    """Create a token; its value is shown once, on the page this POST redirects to."""
    form = TokenCreateForm()
    if request.method == "GET":
        form.expires_at.data = default_expiry()
        rows = PermissionRows.default()
        return render_template("admin/tokens/new.html", form=form, **editor_context(rows))
    rows = PermissionRows.from_form(request.form)
    button, index = editor_button()
    if button != "save":
        edit_rows(rows, button, index)
        return render_template("admin/tokens/new.html", form=form, **editor_context(rows))
    if form.validate_on_submit() and rows.validate() and confirmed_for(form, rows):
        try:
            issued = tokens.create_token(
                application=form.resolved_application, source="admin", actor=current_actor(),
                user=form.resolved_user, value=(form.value.data or "").strip() or None,
                master=form.master.data, scope=form.scope.data or "", expires_at=form.expires_at.data,
                tenant_permissions=rows.entries(), created_by=current_user_row(),
                refresh_value=(form.refresh_value.data or "").strip() or None,
            )
        except tokens.TokenError as error:
            db.session.rollback()
            attach_error(form, rows, error)
        else:
            if shown_once.fits(issued.value):
                shown_once.hold("token", issued.token.id, issued.value)
                return redirect(url_for("admin.tokens_created", token_id=issued.token.id), code=303)
            # A very long custom value is shown on this answer: a resubmission makes no second
            # token, as a custom value must be unique.
            return no_store(make_response(render_template("admin/tokens/created.html", token=issued.token,
                                                          value=issued.value)))
    return render_template("admin/tokens/new.html", form=form, **editor_context(rows)), 422


@bp.route("/tokens/<int:token_id>/created")
def tokens_created(token_id: int):
    """The new token's value, shown this once (post/redirect/get: a reload shows it no more)."""
    token = get_token_or_404(token_id)
    value = shown_once.take("token", token.id)
    return no_store(make_response(render_template("admin/tokens/created.html", token=token, value=value)))


def edit_rows(rows: PermissionRows, button: str, index: int | None) -> None:
    """The no-JavaScript editor: add or remove a row (the form is shown again, unsaved and
    unchecked: field errors wait for the real submit)."""
    if button == "add":
        rows.add_row()
    else:
        rows.remove_row(index)


def powerful(master: bool, entries: list[dict]) -> bool:
    """A master token, or one that may do everything everywhere (`*` on `*`)."""
    return master or any(e["tenant"] == ANY and ANY in e["actions"] for e in entries)


# The step-up password's device bucket: reached only from a signed-in session of the account,
# so strangers who fail at the login form never lock its owner out of this step.
STEP_UP_DEVICE = "signed-in"


def confirmed_for(form, rows: PermissionRows) -> bool:
    """A powerful token needs the admin's password, unless it was given in the last minutes
    (a borrowed, unlocked browser must not mint keys to everything). The password is
    throttled as at the login form, in a bucket only the account's own sessions reach."""
    if not powerful(form.master.data, rows.entries()) or recently_authenticated():
        return True
    password = form.current_password.data or ""
    if not password:
        return refuse_password(form, "Enter your password to make a master or */* token.")
    try:
        attempt = throttle.guess(throttle.PASSWORD, current_user.username.lower(), device=STEP_UP_DEVICE)
    except throttle.Refused as refused:
        return refuse_password(form, f"Too many wrong passwords: try again in {refused.retry_after} seconds.")
    if not current_user.check_password(password):
        attempt.failed()
        return refuse_password(form, "Wrong password.")
    attempt.succeeded()
    confirm_password_given()
    return True


def refuse_password(form, message: str) -> bool:
    form.current_password.errors = list(form.current_password.errors) + [message]
    return False


def current_user_row() -> User | None:
    return db.session.get(User, current_user.id) if current_user.is_authenticated else None


def attach_error(form, rows: PermissionRows, error: tokens.TokenError) -> None:
    """Show a core refusal next to the field it names."""
    field = getattr(form, error.field.split(".")[0].split("[")[0], None)
    message = error.message[0].upper() + error.message[1:] + ("" if error.message.endswith(".") else ".")
    if error.field == "value" and hasattr(form, "value"):
        form.value.errors = list(form.value.errors) + [message]
    elif error.field.startswith("tenant_permissions"):
        rows.errors.append(message)
    elif field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [message]
    else:
        rows.errors.append(message)


@bp.route("/tokens/<int:token_id>")
def tokens_detail(token_id: int):
    """Every field, the permission grid, where it came from and its audit history."""
    token = get_token_or_404(token_id)
    history = audit_for("access_token", token.id)
    return render_template("admin/tokens/detail.html", token=token, history=history, actions=ACTIONS,
                           extend_form=ExtendForm(formdata=None), form=ConfirmForm())


@bp.route("/tokens/<int:token_id>/extend", methods=["POST"])
def tokens_extend(token_id: int):
    """Move the expiry, in place (never into the past)."""
    token = get_token_or_404(token_id)
    form = ExtendForm()
    if form.validate_on_submit():
        try:
            tokens.extend(token, form.expires_at.data, actor=current_actor())
        except tokens.TokenError as error:
            db.session.rollback()
            form.expires_at.errors = list(form.expires_at.errors) + [error.message]
        else:
            flash(f"Token {token.hint}… now expires on {token.expires_at:%Y-%m-%d %H:%M} UTC.", "success")
            return redirect(url_for("admin.tokens_detail", token_id=token.id), code=303)
    history = audit_for("access_token", token.id)
    return render_template("admin/tokens/detail.html", token=token, history=history, actions=ACTIONS,
                           extend_form=form, form=ConfirmForm()), 422


@bp.route("/tokens/<int:token_id>/replace", methods=["GET", "POST"])
def tokens_replace(token_id: int):
    """Swap the token for one with the same value and new settings."""
    token = get_token_or_404(token_id)
    if request.method == "GET":
        form = TokenReplaceForm(formdata=None)
        form.application.data = token.application_id
        form.user.data = token.user.username if token.user else ""
        form.master.data = token.master
        form.scope.data = token.scope
        form.expires_at.data = token.expires_at
        return render_template("admin/tokens/replace.html", token=token, form=form,
                               **editor_context(PermissionRows.from_token(token)))
    form = TokenReplaceForm()
    rows = PermissionRows.from_form(request.form)
    button, index = editor_button()
    if button != "save":
        edit_rows(rows, button, index)
        return render_template("admin/tokens/replace.html", token=token, form=form, **editor_context(rows))
    if form.validate_on_submit() and rows.validate() and confirmed_for(form, rows):
        try:
            new = tokens.replace(token, actor=current_actor(), application=form.resolved_application,
                                 user=form.resolved_user, master=form.master.data, scope=form.scope.data or "",
                                 tenant_permissions=rows.entries(),
                                 expires_at=form.expires_at.data if form.expires_at.data != token.expires_at
                                 else None)
        except tokens.TokenError as error:
            db.session.rollback()
            attach_error(form, rows, error)
        else:
            flash(f"Token {new.hint}… replaced: same value, new settings.", "success")
            return redirect(url_for("admin.tokens_detail", token_id=new.id), code=303)
    return render_template("admin/tokens/replace.html", token=token, form=form, **editor_context(rows)), 422


@bp.route("/tokens/<int:token_id>/delete", methods=["GET", "POST"])
def tokens_delete(token_id: int):
    """GET asks for confirmation; POST deletes at once."""
    token = get_token_or_404(token_id)
    form = ConfirmForm()
    if request.method == "POST":
        hint = token.hint
        tokens.delete(token, actor=current_actor())
        flash(f"Token {hint}… deleted. Applications using it lost access.", "success")
        return redirect(url_for("admin.tokens"), code=303)
    return render_template("admin/tokens/delete.html", token=token, form=form)
