"""Access tokens: list, search, view, create, extend, replace, delete.

Every write goes through the token core (portal.tokens); these views only read rows,
validate forms and show results. A token's value is shown once, on the page that made it.
"""

from datetime import timedelta

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.web import shown_once, throttle
from portal import tokens
from portal.admin import bp
from portal.admin.forms import (EXPIRY_PRESETS, ConfirmForm, ExtendForm, PermissionRows, TokenCreateForm,
                                TokenReplaceForm, application_choices, core_message, tenant_names)
from portal.admin.queries import (ALL_SOURCES, EXPIRING_DAYS, SORT_LABELS, TokenFilters, audit_for, count_tokens,
                                  estimated_count, parse_id, token_page)
from portal.db.sql import in_id_range
from portal.domain import clock
from portal.domain.audit import current_actor
from portal.domain.words import plural
from portal.auth.sessions import confirm_password_given, recently_authenticated
from portal.extensions import db
from portal.models import AccessToken, User
from portal.models.token import SOURCES, STATES
from portal.web.security import no_store
from portal.web.user_agents import browser_summary
from portal.tokens import ACTIONS, ANY
from portal.tokens import permissions as perms


def get_token_or_404(token_id: int) -> AccessToken:
    """The token, or a 404 page that says so when the audit log knows it was deleted."""
    token = db.session.get(AccessToken, token_id) if in_id_range(token_id) else None
    if token is None:
        deleted = next((e for e in audit_for("access_token", token_id, limit=5) if e.action == "token.deleted"), None)
        if deleted is None:
            abort(404, "No such token (it may have been deleted or replaced).")
        abort(make_response(render_template("admin/tokens/gone.html", event=deleted), 404))
    return token


def editor_context(rows: PermissionRows) -> dict:
    return {"perm_rows": rows, "tenant_choices": [ANY] + tenant_names(), "actions": ACTIONS,
            "default_actions": perms.NEW_ROW_ACTIONS, "grantable": perms.grantable,
            "summary_items": summary_items}


# The token forms' fields in the order the page shows them, for the error summary.
PAGE_ORDER = ("application", "user", "expiry", "expires_at", "master", "scope", "current_password", "value",
              "refresh_value")


def summary_items(form, rows: PermissionRows) -> list:
    """Every error of the form and the editor, in the page's order."""
    fields = sorted(form, key=lambda f: PAGE_ORDER.index(f.name) if f.name in PAGE_ORDER else -1)
    return fields[:-2] + rows.summary() + fields[-2:] if hasattr(form, "value") else fields + rows.summary()


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
    applications = application_choices()
    return render_template("admin/tokens/list.html", rows=rows, filters=filters, next_url=next_url,
                           first_url=first_url, applications=applications, sources=SOURCES,
                           tenants=tenant_names(), sort_labels=SORT_LABELS, statuses=STATES, form=ConfirmForm(),
                           count=count, more=more, estimate=estimated_count(filters) if more else None,
                           headers=sortable_headers(filters), expiring_days=EXPIRING_DAYS,
                           chips=filter_chips(filters, dict(applications)), presets=EXPIRY_PRESETS)


def filter_chips(filters: TokenFilters, application_names: dict) -> list[tuple[str, str]]:
    """What is applied, each as (words, the list's address without it)."""
    args = filters.as_args()
    words = {
        "q": f"“{filters.q}”", "application": f"Application: {application_names.get(filters.application, '?')}",
        "user": f"User: {filters.user}", "status": f"Status: {filters.status}",
        "master": "Master only" if filters.master == "yes" else "Not master",
        "tenant": f"Tenant: {filters.tenant}",
        "source": "Any source, logins too" if filters.source == ALL_SOURCES else f"Source: {filters.source}",
        "expiring": f"Expires within {filters.expiring} day{'s' if filters.expiring != 1 else ''}",
        "sort": f"Sorted: {SORT_LABELS[filters.sort]}",
    }
    return [(words[name], url_for("admin.tokens", **{k: v for k, v in args.items() if k != name}))
            for name in args]


# A sortable column's header: its first order, or the reverse of the current one.
HEADER_SORTS = {"created": ("created_desc", "created_asc"), "expires": ("expires_asc", "expires_desc"),
                "application": ("application", "application"), "user": ("user", "user"),
                "status": ("status", "status"), "used": ("used_desc", "used_desc")}


def sortable_headers(filters: TokenFilters) -> dict:
    """Per sortable column: the URL its header links to, and its aria-sort (None if unsorted)."""
    headers = {}
    for column, (first, second) in HEADER_SORTS.items():
        current = filters.sort if filters.sort in (first, second) else None
        descending = current is not None and current.endswith("_desc")
        headers[column] = {
            "url": url_for("admin.tokens", **{**filters.as_args(), "sort": second if current == first else first}),
            "sort": None if current is None else ("descending" if descending else "ascending"),
        }
    return headers


def selected_ids() -> list[int]:
    return [i for i in map(parse_id, request.form.getlist("ids")) if i is not None][:500]


@bp.route("/tokens/delete", methods=["POST"])
def tokens_delete_selected():
    """Bulk revoke in one confirmed step: the first POST asks, the second (confirm=yes) deletes."""
    form = ConfirmForm()
    ids = selected_ids()
    if not ids:
        flash("Select at least one token to revoke.", "error")
        return redirect(url_for("admin.tokens"), code=303)
    if request.form.get("confirm") != "yes":
        selected = list(db.session.scalars(select(AccessToken).where(AccessToken.id.in_(ids))
                                           .order_by(AccessToken.id)))
        return render_template("admin/tokens/delete_many.html", selected=selected, form=form)
    count = tokens.delete_many(ids, actor=current_actor())
    flash(f"Revoked {plural(count, 'token')}. Applications using them lost access.", "success")
    return redirect(url_for("admin.tokens"), code=303)


@bp.route("/tokens/extend", methods=["POST"])
def tokens_extend_selected():
    """Bulk extend: each selected token gets `days` more (counted from now if it has expired)."""
    ids = selected_ids()
    days = request.form.get("days", "")
    if not ids or days not in {str(d) for d in EXPIRY_PRESETS}:
        flash("Select at least one token and how long to extend it.", "error")
        return redirect(url_for("admin.tokens"), code=303)
    now = clock.now().replace(second=0, microsecond=0)
    selected = list(db.session.scalars(select(AccessToken).where(AccessToken.id.in_(ids))))
    for token in selected:
        tokens.extend(token, max(now, token.expires_at) + timedelta(days=int(days)), actor=current_actor())
    flash(f"Extended {plural(len(selected), 'token')} by {days} days.", "success")
    return redirect(request.referrer if same_site(request.referrer) else url_for("admin.tokens"), code=303)


def same_site(address: str | None) -> bool:
    """A referrer to come back to: this portal's token list, never another site."""
    return bool(address) and address.startswith(request.host_url.rstrip("/") + url_for("admin.tokens"))


@bp.route("/tokens/new", methods=["GET", "POST"])
def tokens_new():
    """Create a token; its value is shown once, on the page this POST redirects to."""
    form = TokenCreateForm()
    if request.method == "GET":
        preset = current_app.config["ACCESS_TOKEN_EXPIRE_SECONDS"] / 86400
        form.preselect_expiry(int(preset) if preset in EXPIRY_PRESETS else None,
                              custom=None if preset in EXPIRY_PRESETS else form.expiry_base
                              + timedelta(seconds=current_app.config["ACCESS_TOKEN_EXPIRE_SECONDS"]))
        if request.args.get("application"):
            form.application.data = parse_id(request.args["application"]) or 0
        return render_template("admin/tokens/new.html", form=form, **editor_context(PermissionRows.default()))
    rows = PermissionRows.from_form(request.form)
    button, index = editor_button()
    if button != "save":
        edit_rows(rows, button, index)
        return render_template("admin/tokens/new.html", form=form, **editor_context(rows))
    if all_valid(form, rows):
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
                page = url_for("admin.tokens_created", token_id=issued.token.id)
                response = redirect(page, code=303)
                shown_once.hold(response, page, issued.value)
                return response
            # A very long custom value is shown on this answer: a resubmission makes no second
            # token, as a custom value must be unique.
            return no_store(make_response(render_template("admin/tokens/created.html", token=issued.token,
                                                          value=issued.value)))
    return render_template("admin/tokens/new.html", form=form, **editor_context(rows)), 422


def all_valid(form, rows: PermissionRows) -> bool:
    """Every check of the form and the editor, all run, so one submit shows every error."""
    checks = [form.validate_on_submit(), rows.validate()]
    return all(checks) and confirmed_for(form, rows)


@bp.route("/tokens/<int:token_id>/created")
def tokens_created(token_id: int):
    """The new token's value, shown this once (post/redirect/get: a reload shows it no more)."""
    token = get_token_or_404(token_id)
    value = shown_once.take(url_for("admin.tokens_created", token_id=token.id))
    return no_store(make_response(render_template("admin/tokens/created.html", token=token, value=value)))


def edit_rows(rows: PermissionRows, button: str, index: int | None) -> None:
    """The no-JavaScript editor: add or remove a row (the form is shown again, unsaved and
    unchecked: field errors wait for the real submit)."""
    if button == "add":
        rows.add_row(request.form.get("add_row", "") if request.form.get("add_row") != "1" else "")
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
    message = core_message(error)
    if error.field == "value" and hasattr(form, "value"):
        form.value.errors = list(form.value.errors) + [message]
    elif error.field.startswith("tenant_permissions"):
        rows.errors.append(message)
    elif field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [message]
    else:
        rows.errors.append(message)


def detail_page(token: AccessToken, extend_form: ExtendForm, status: int = 200):
    history = audit_for("access_token", token.id)
    return render_template("admin/tokens/detail.html", token=token, history=history, actions=ACTIONS,
                           extend_form=extend_form, form=ConfirmForm(), grantable=perms.grantable,
                           client=browser_summary(token.last_used_user_agent) if token.last_used_user_agent
                           is not None else None), status


@bp.route("/tokens/<int:token_id>")
def tokens_detail(token_id: int):
    """Every field, the permission grid, its last use, where it came from and its audit history."""
    token = get_token_or_404(token_id)
    form = ExtendForm(formdata=None, current=token.expires_at)
    form.preselect_expiry(EXPIRY_PRESETS[1])
    return detail_page(token, form)


@bp.route("/tokens/<int:token_id>/extend", methods=["POST"])
def tokens_extend(token_id: int):
    """Move the expiry, in place (never into the past)."""
    token = get_token_or_404(token_id)
    form = ExtendForm(current=token.expires_at)
    if form.validate_on_submit():
        try:
            tokens.extend(token, form.expires_at.data, actor=current_actor())
        except tokens.TokenError as error:
            db.session.rollback()
            form.expires_at.errors = list(form.expires_at.errors) + [core_message(error)]
        else:
            flash(f"Token {token.hint}… now expires on {token.expires_at:%Y-%m-%d %H:%M} UTC.", "success")
            return redirect(url_for("admin.tokens_detail", token_id=token.id), code=303)
    return detail_page(token, form, 422)


@bp.route("/tokens/<int:token_id>/replace", methods=["GET", "POST"])
def tokens_replace(token_id: int):
    """Swap the token for one with the same value and new settings."""
    token = get_token_or_404(token_id)
    if request.method == "GET":
        form = TokenReplaceForm(formdata=None, keep=token.expires_at)
        form.application.data = token.application_id
        form.user.data = token.user.username if token.user else ""
        form.master.data = token.master
        form.scope.data = token.scope
        form.preselect_expiry(None, custom=token.expires_at)
        return render_template("admin/tokens/replace.html", token=token, form=form,
                               **editor_context(PermissionRows.from_token(token)))
    form = TokenReplaceForm(keep=token.expires_at)
    rows = PermissionRows.from_form(request.form)
    button, index = editor_button()
    if button != "save":
        edit_rows(rows, button, index)
        return render_template("admin/tokens/replace.html", token=token, form=form, **editor_context(rows))
    if all_valid(form, rows):
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
    """GET asks for confirmation; POST revokes (deletes) at once."""
    token = get_token_or_404(token_id)
    form = ConfirmForm()
    if request.method == "POST":
        hint = token.hint
        tokens.delete(token, actor=current_actor())
        flash(f"Token {hint}… revoked. Applications using it lost access.", "success")
        return redirect(url_for("admin.tokens"), code=303)
    return render_template("admin/tokens/delete.html", token=token, form=form)
