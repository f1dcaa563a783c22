"""Tenants: list, create, rename (the label), delete (refused while users belong to it or tokens grant on it)."""

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from portal.domain import tenants
from portal.admin import bp
from portal.admin.forms import ConfirmForm, TenantForm, TenantLabelForm
from portal.admin.queries import row_or_404, tenant_contents
from portal.domain.audit import current_actor
from portal.extensions import db
from portal.models import AccessToken, Tenant, TokenPermission, User


def get_tenant_or_404(tenant_id: int) -> Tenant:
    return row_or_404(Tenant, tenant_id, "No such tenant (it may have been deleted).")


@bp.route("/tenants", methods=["GET", "POST"], endpoint="tenants")
def tenants_list():
    """Every tenant with its user count, and the create form."""
    form = TenantForm()
    if form.validate_on_submit():
        try:
            tenant = tenants.create_tenant(form.name.data, form.label.data or None, actor=current_actor())
        except tenants.TenantError as error:
            getattr(form, error.field).errors.append(error.message[0].upper() + error.message[1:] + ".")
        else:
            flash(f"Tenant {tenant.name} created.", "success")
            return redirect(url_for("admin.tenants"), code=303)
    rows = db.session.execute(
        select(Tenant, func.count(User.id)).outerjoin(User, User.tenant_id == Tenant.id)
        .group_by(Tenant.id).order_by(Tenant.name)).all()
    granting = dict(db.session.execute(
        select(TokenPermission.tenant, func.count(TokenPermission.token_id.distinct()))
        .group_by(TokenPermission.tenant)).all())
    return render_template("admin/tenants/list.html", rows=rows, granting=granting, form=form,
                           confirm=ConfirmForm()), (
        422 if form.is_submitted() else 200)


@bp.route("/tenants/<int:tenant_id>", methods=["GET", "POST"])
def tenants_detail(tenant_id: int):
    """A tenant: its users and the tokens that grant on it, the rename form (the label;
    the name never changes), and Delete when nothing stands in its way."""
    tenant = get_tenant_or_404(tenant_id)
    form = TenantLabelForm(obj=tenant)
    if form.validate_on_submit():
        try:
            tenants.rename_tenant(tenant, form.label.data, actor=current_actor())
        except tenants.TenantError as error:
            form.label.errors.append(error.message[0].upper() + error.message[1:] + ".")
        else:
            flash(f"Tenant {tenant.name} renamed to {tenant.label}.", "success")
            return redirect(url_for("admin.tenants_detail", tenant_id=tenant.id), code=303)
    return render_template("admin/tenants/detail.html", tenant=tenant, form=form, confirm=ConfirmForm(),
                           **tenant_contents(tenant)), (422 if form.is_submitted() else 200)


@bp.route("/tenants/<int:tenant_id>/delete", methods=["GET", "POST"])
def tenants_delete(tenant_id: int):
    """GET asks, showing what stands in the way; POST deletes a tenant that no user belongs
    to and no token grants on (a tenant made later with the same name would inherit those
    grants; token permissions never change in place, so the admin replaces those tokens)."""
    tenant = get_tenant_or_404(tenant_id)
    form = ConfirmForm()
    if request.method == "GET":
        holders = list(db.session.scalars(select(AccessToken).where(AccessToken.id.in_(
            tenants.tokens_granting_on(tenant))).order_by(AccessToken.id).limit(20)))
        granting = db.session.scalar(select(func.count()).select_from(tenants.tokens_granting_on(tenant).subquery()))
        return render_template("admin/tenants/delete.html", tenant=tenant, users=tenants.users_of(tenant),
                               granting=granting, holders=holders, form=form)
    try:
        tenants.delete_tenant(tenant, actor=current_actor())
    except tenants.TenantNotEmptyError as error:
        flash(error.message[0].upper() + error.message[1:] + ". Nothing was deleted.", "error")
        return redirect(url_for("admin.tenants_delete", tenant_id=tenant.id), code=303)
    flash(f"Tenant {tenant.name} deleted.", "success")
    return redirect(url_for("admin.tenants"), code=303)
