"""Tenants: list, create, rename (the label), delete (refused while users belong to it)."""

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from portal import audit
from portal.admin import bp
from portal.admin.forms import ConfirmForm, TenantForm, TenantLabelForm
from portal.admin.queries import row_or_404
from portal.audit import current_actor
from portal.extensions import db
from portal.models import Tenant, User


def get_tenant_or_404(tenant_id: int) -> Tenant:
    return row_or_404(Tenant, tenant_id, "No such tenant.")


@bp.route("/tenants", methods=["GET", "POST"], endpoint="tenants")
def tenants_list():
    """Every tenant with its user count, and the create form."""
    form = TenantForm()
    if form.validate_on_submit():
        tenant = Tenant(name=form.name.data, label=form.label.data or form.name.data)
        db.session.add(tenant)
        db.session.flush()
        audit.record("tenant.created", actor=current_actor(), target=tenant)
        db.session.commit()
        flash(f"Tenant {tenant.name} created.", "success")
        return redirect(url_for("admin.tenants"), code=303)
    rows = db.session.execute(
        select(Tenant, func.count(User.id)).outerjoin(User, User.tenant_id == Tenant.id)
        .group_by(Tenant.id).order_by(Tenant.name)).all()
    return render_template("admin/tenants/list.html", rows=rows, form=form, confirm=ConfirmForm()), (
        422 if form.is_submitted() else 200)


@bp.route("/tenants/<int:tenant_id>", methods=["GET", "POST"])
def tenants_detail(tenant_id: int):
    """Rename a tenant (its label; the name never changes)."""
    tenant = get_tenant_or_404(tenant_id)
    form = TenantLabelForm(obj=tenant)
    if form.validate_on_submit():
        previous = tenant.label
        tenant.label = form.label.data
        audit.record("tenant.renamed", actor=current_actor(), target=tenant, previous_label=previous,
                     label=tenant.label)
        db.session.commit()
        flash(f"Tenant {tenant.name} renamed to {tenant.label}.", "success")
        return redirect(url_for("admin.tenants"), code=303)
    users = db.session.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant.id))
    return render_template("admin/tenants/detail.html", tenant=tenant, form=form, users=users,
                           confirm=ConfirmForm()), (422 if form.is_submitted() else 200)


@bp.route("/tenants/<int:tenant_id>/delete", methods=["POST"])
def tenants_delete(tenant_id: int):
    """Delete a tenant that no user belongs to."""
    tenant = get_tenant_or_404(tenant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; try again.")
    users = db.session.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant.id))
    if users:
        flash(f"Tenant {tenant.name} still has {users} user(s); move or delete them first. Nothing was deleted.",
              "error")
        return redirect(url_for("admin.tenants_detail", tenant_id=tenant.id), code=303)
    audit.record("tenant.deleted", actor=current_actor(), target=tenant)
    db.session.delete(tenant)
    db.session.commit()
    flash(f"Tenant {tenant.name} deleted.", "success")
    return redirect(url_for("admin.tenants"), code=303)
