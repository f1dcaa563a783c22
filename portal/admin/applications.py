"""Applications (OAuth clients): list, create, view, delete, regenerate the secret."""

from flask import flash, make_response, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from portal.domain import audit
from portal.admin import bp
from portal.domain.words import plural
from portal.admin.forms import ApplicationEditForm, ApplicationForm, ConfirmForm
from portal.admin.queries import SESSION, row_or_404, text_arg
from portal.db.sql import escape_like
from portal.domain import clock
from portal.models.token import ACTIVE
from portal.domain.applications import ApplicationError, register_application, update_application
from portal.domain.audit import current_actor
from portal.extensions import db
from portal.models import AccessToken, Application
from portal.web import shown_once
from portal.web.security import no_store


def show_on_field(form, error: ApplicationError) -> None:
    """The domain's refusal under the field it is about, written as the form's own messages."""
    message = str(error)
    field = getattr(form, error.field, None) or form.name
    field.errors = list(field.errors) + [message[0].upper() + message[1:] + "."]


def get_application_or_404(application_id: int) -> Application:
    return row_or_404(Application, application_id, "No such application (it may have been deleted).")


@bp.route("/applications", endpoint="applications")
def applications_list():
    """Every application, by name, with its live token count; `q` finds a name or client id
    containing it."""
    q = text_arg(request.args, "q", 100)
    statement = select(Application).order_by(func.lower(Application.name), Application.name)
    if q:
        pattern = "%" + escape_like(q.lower()) + "%"
        statement = statement.where(or_(func.lower(Application.name).like(pattern, escape="\\"),
                                        func.lower(Application.client_id).like(pattern, escape="\\")))
    applications = db.session.scalars(statement).all()
    return render_template("admin/applications/list.html", applications=applications, q=q,
                           counts=live_token_counts([a.id for a in applications]))


def live_token_counts(application_ids: list[int]) -> dict[int, int]:
    """Active tokens (login sessions left out) per application."""
    if not application_ids:
        return {}
    rows = db.session.execute(
        select(AccessToken.application_id, func.count())
        .where(AccessToken.application_id.in_(application_ids), AccessToken.source != SESSION,
               *AccessToken.in_state(ACTIVE, clock.now()))
        .group_by(AccessToken.application_id)).all()
    return dict(rows)


@bp.route("/applications/new", methods=["GET", "POST"])
def applications_new():
    """Register an application; a confidential client's secret is shown once."""
    form = ApplicationForm()
    if form.validate_on_submit():
        try:
            application, secret = register_application(
                client_type=form.client_type.data, client_id=form.client_id.data or None, actor=current_actor(),
                **settings_of(form))
        except ApplicationError as error:
            db.session.rollback()
            show_on_field(form, error)
        else:
            for warning in getattr(application, "warnings", []):
                flash(f"Warning: {warning}", "warning")
            if secret is None:  # a public client
                flash(f"Application {application.name} registered.", "success")
                return redirect(url_for("admin.applications_detail", application_id=application.id), code=303)
            return secret_shown_next(application, secret)
    status = 422 if form.is_submitted() else 200
    return render_template("admin/applications/new.html", form=form), status


def settings_of(form) -> dict:
    """The settings the new and the edit form share, as `portal.domain.applications` takes them."""
    def lines(field) -> list[str]:
        return (field.data or "").splitlines()

    return {
        "name": form.name.data, "description": form.description.data or "", "scope": form.scope.data or "",
        "redirect_uris": lines(form.redirect_uris), "grant_types": form.grant_types.data,
        "response_types": form.response_types.data,
        "token_endpoint_auth_method": form.token_endpoint_auth_method.data or None,
        "post_logout_redirect_uris": lines(form.post_logout_redirect_uris), "resources": lines(form.resources),
    }


@bp.route("/applications/<int:application_id>")
def applications_detail(application_id: int):
    """An application's settings and how many live tokens it has."""
    application = get_application_or_404(application_id)
    token_count = db.session.scalar(select(func.count()).select_from(AccessToken)
                                    .where(AccessToken.application_id == application.id))
    return render_template("admin/applications/detail.html", application=application, token_count=token_count,
                           live_count=live_token_counts([application.id]).get(application.id, 0), form=ConfirmForm())


@bp.route("/applications/<int:application_id>/edit", methods=["GET", "POST"])
def applications_edit(application_id: int):
    """Change an application's name, description, redirect URIs, grant and response types,
    scopes and client authentication (its client id, type and secret stay)."""
    application = get_application_or_404(application_id)
    if application.builtin:
        flash("The built-in portal application cannot be changed.", "error")
        return redirect(url_for("admin.applications_detail", application_id=application.id), code=303)
    form = ApplicationEditForm() if request.method == "POST" else ApplicationEditForm.of(application)
    if form.validate_on_submit():
        try:
            warnings = update_application(application, actor=current_actor(), **settings_of(form))
        except ApplicationError as error:
            db.session.rollback()
            show_on_field(form, error)
        else:
            for warning in warnings:
                flash(f"Warning: {warning}", "warning")
            flash(f"Application {application.name} saved.", "success")
            return redirect(url_for("admin.applications_detail", application_id=application.id), code=303)
    return render_template("admin/applications/edit.html", application=application, form=form), (
        422 if form.is_submitted() else 200)


@bp.route("/applications/<int:application_id>/new-secret")
def applications_new_secret(application_id: int):
    """The client secret just made, shown this once (a reload shows it no more)."""
    application = get_application_or_404(application_id)
    secret = shown_once.take(url_for("admin.applications_new_secret", application_id=application.id))
    return no_store(make_response(render_template("admin/applications/secret.html", application=application,
                                                  secret=secret)))


def secret_shown_next(application, secret: str):
    """Redirect to the page that shows the new client secret once."""
    page = url_for("admin.applications_new_secret", application_id=application.id)
    response = redirect(page, code=303)
    shown_once.hold(response, page, secret)
    return response


@bp.route("/applications/<int:application_id>/secret", methods=["GET", "POST"])
def applications_regenerate_secret(application_id: int):
    """GET asks; POST replaces the client secret: the old one stops working at once, the new
    one is shown once."""
    application = get_application_or_404(application_id)
    form = ConfirmForm()
    if application.is_public:
        flash("A public client has no secret.", "error")
        return redirect(url_for("admin.applications_detail", application_id=application.id), code=303)
    if request.method == "GET":
        return render_template("admin/applications/regenerate.html", application=application, form=form)
    secret = application.set_secret()
    audit.record("application.secret_regenerated", actor=current_actor(), target=application)
    db.session.commit()
    return secret_shown_next(application, secret)


@bp.route("/applications/<int:application_id>/delete", methods=["GET", "POST"])
def applications_delete(application_id: int):
    """GET asks; POST deletes the application, and its tokens end with it (ON DELETE CASCADE)."""
    application = get_application_or_404(application_id)
    form = ConfirmForm()
    if application.builtin:
        flash("The built-in portal application cannot be deleted.", "error")
        return redirect(url_for("admin.applications_detail", application_id=application.id), code=303)
    token_count = db.session.scalar(select(func.count()).select_from(AccessToken)
                                    .where(AccessToken.application_id == application.id))
    if request.method == "POST":
        name = application.name
        audit.record("application.deleted", actor=current_actor(), target=application, tokens_deleted=token_count)
        db.session.delete(application)
        db.session.commit()
        flash(f"Application {name} deleted, with its {plural(token_count, 'token')}.", "success")
        return redirect(url_for("admin.applications"), code=303)
    return render_template("admin/applications/delete.html", application=application, token_count=token_count,
                           form=form)
