"""An administrator's view of a user's second factors (never their secrets) and "Reset factors"."""

from flask import flash, redirect, url_for

from portal.admin import bp
from portal.admin.forms import ConfirmForm
from portal.domain import factors
from portal.extensions import db
from portal.models import User


@bp.app_context_processor
def factor_figures():
    """For templates/admin/_factor_count.html and templates/admin/users/_factors.html."""
    return {"admins_without_factor": factors.admins_without_factor, "factor_summary": factors.summary}


@bp.route("/users/<int:user_id>/factors/reset", methods=["POST"])
def users_reset_factors(user_id: int):
    """Remove every passkey, authenticator app and recovery code of the user (audited)."""
    user = db.get_or_404(User, user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        removed = factors.reset(user, via="admin portal")
        db.session.commit()
        flash(f"Second factors of {user.username} reset ({removed} removed): they sign in with their password "
              "alone until they set one up again.", "success")
    return redirect(url_for("admin.users_detail", user_id=user.id) + "#factors", code=303)
