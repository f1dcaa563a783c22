"""The second step of a sign-in, the user's own Security page, the step-up confirmation and
the ADMIN_SECOND_FACTOR=required gate. Passkeys' JSON endpoints: portal.auth.passkeys."""

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.auth import bp
from portal.auth.devices import device_for, remember_device
from portal.auth.forms import CodeForm, ConfirmationForm, PasskeyNameForm, RecoveryForm
from portal.auth.sessions import pending_second_step, second_factor_given
from portal.auth.views import complete_login, home_for, safe_next
from portal.domain import audit, factors
from portal.extensions import db
from portal.models import User
from portal.web import shown_once, throttle
from portal.web.security import no_store

WRONG_CODE = "That code is not right, or it was used already."
# While ADMIN_SECOND_FACTOR=required holds an administrator back: their pages, and the
# authorization endpoint (under its own and GeoNode's path).
GATED_BLUEPRINTS = {"admin"}
GATED_ENDPOINTS = {"auth.home", "auth.confirm_factor", "oauth.authorize", "geonode.authorize"}
# A signed-in session's own bucket for the codes and passwords asked on these pages (as the
# token page's step-up: strangers failing at the login form never lock the owner out here).
SIGNED_IN_DEVICE = "signed-in"


def guess(user: User, device: str | None) -> throttle.Attempt:
    """Count a code (or password) before it is checked, as at the login form."""
    try:
        return throttle.guess(throttle.PASSWORD, user.username.lower(), device=device)
    except throttle.Refused as refused:
        raise refused.as_http() from None


def check_code(user: User, method: str, code: str) -> tuple[bool, int | None]:
    """An authenticator code or a recovery code; (right, recovery codes left)."""
    if method == "recovery":
        left = factors.use_recovery_code(user, code)
        return left is not None, left
    return factors.verify_totp(user, code), None


def said_left(left: int | None) -> None:
    if left is not None:
        flash(f"Recovery code accepted: {left} left." + (" Make new ones on your Security page." if left < 3 else ""),
              "warning" if left < 3 else "info")


def posted_code_form() -> tuple[str, CodeForm | RecoveryForm]:
    """Which of the two code forms was sent (`method`), bound to the request."""
    method = "recovery" if request.form.get("method") == "recovery" else "totp"
    return method, (RecoveryForm() if method == "recovery" else CodeForm())


def code_forms(user: User, method: str, form) -> dict:
    """The page's two forms, the one sent keeping its input and errors."""
    return {"summary": factors.summary(user), "method": method,
            "form": form if method == "totp" else CodeForm(formdata=None),
            "recovery": form if method == "recovery" else RecoveryForm(formdata=None)}


# --- the second step of a sign-in ---------------------------------------------------------------

@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_step():
    """After a right password: a code, a recovery code, or a passkey (portal.auth.passkeys)."""
    pending = pending_second_step()
    if pending is None:
        flash("Please log in again.", "info")
        return redirect(url_for("auth.login"))
    user, next_url = pending
    method, form = posted_code_form()
    if request.method == "POST" and form.validate_on_submit():
        attempt = guess(user, device_for(user.username))
        right, left = check_code(user, method, form.code.data)
        if not right:
            audit.record("login.second_factor_failed", actor=user.username, target=user, factor=method)
            db.session.commit()
            attempt.failed()
            form.code.errors.append(WRONG_CODE)
        else:
            complete_login(user, ("pwd", "otp", "mfa"))  # commits: the counters' store may be this database
            attempt.succeeded()
            said_left(left)
            response = redirect(safe_next(next_url) or home_for(user), code=303)
            remember_device(response, user.username)
            return response
    return render_template("auth/second_factor.html", user=user, **code_forms(user, method, form))


# --- step-up: the second factor again -------------------------------------------------------------

@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
def confirm_factor():
    """Show a second factor again (a master or */* token, or a client asking acr_values=mfa)."""
    user = current_user._get_current_object()
    next_url = safe_next(request.values.get("next")) or url_for("auth.security")
    summary = factors.summary(user)
    if not summary.any:
        return redirect(url_for("auth.security", next=next_url))
    method, form = posted_code_form()
    if request.method == "POST" and form.validate_on_submit():
        attempt = guess(user, SIGNED_IN_DEVICE)
        right, left = check_code(user, method, form.code.data)
        if right:
            second_factor_given("otp")
            db.session.commit()
            attempt.succeeded()
            said_left(left)
            return redirect(next_url, code=303)
        audit.record("second_factor.confirm_failed", target=user, factor=method)
        db.session.commit()
        attempt.failed()
        form.code.errors.append(WRONG_CODE)
    return render_template("auth/confirm_factor.html", next_url=next_url, **code_forms(user, method, form))


# --- the user's Security page ---------------------------------------------------------------------

def security_page(codes: list[str] | None = None, confirmation: ConfirmationForm | None = None,
                  totp_form: CodeForm | None = None, status: int = 200):
    user = current_user._get_current_object()
    secret = factors.pending_secret(user)
    uri = factors.provisioning_uri(user, secret) if secret else None
    response = make_response(render_template(
        "account/security.html", summary=factors.summary(user), secret=secret,
        qr=factors.qr_svg(uri) if uri else None, codes=codes,
        totp_form=totp_form or CodeForm(formdata=None), confirmation=confirmation or ConfirmationForm(formdata=None),
        rename=PasskeyNameForm(formdata=None), next_url=safe_next(request.args.get("next")),
        required=must_enrol(user)), status)
    return no_store(response)


@bp.route("/account/security")
@login_required
def security():
    """The user's factors: authenticator app, passkeys, recovery codes (and, once, the new
    codes a first passkey came with)."""
    held = shown_once.take(url_for("auth.security"))
    return security_page(codes=held.split() if held else None)


@bp.route("/account/security/totp", methods=["POST"])
@login_required
def totp_start():
    """A new secret to scan or type; it counts once a code confirms it."""
    if factors.totp_of(current_user) is not None:
        flash("An authenticator app is already set up: remove it first to set up another.", "error")
    else:
        factors.start_totp(current_user)
        db.session.commit()
    return redirect(url_for("auth.security", next=request.args.get("next")) + "#totp", code=303)


@bp.route("/account/security/totp/confirm", methods=["POST"])
@login_required
def totp_confirm():
    user = current_user._get_current_object()
    form = CodeForm()
    if not form.validate_on_submit():
        return security_page(totp_form=form, status=400)
    attempt = guess(user, SIGNED_IN_DEVICE)
    if not factors.confirm_totp(user, form.code.data):
        db.session.rollback()
        audit.record("second_factor.confirm_failed", target=user, factor="totp enrolment")
        db.session.commit()
        attempt.failed()
        form.code.errors.append(WRONG_CODE)
        return security_page(totp_form=form, status=400)
    second_factor_given("otp")
    codes = factors.codes_if_none_left(user)
    db.session.commit()
    attempt.succeeded()
    flash("Your authenticator app is set up: from now on you sign in with a code from it as well.", "success")
    return after_enrolment(codes)


def after_enrolment(codes: list[str] | None):
    """Show new recovery codes once, or go on where the user was going."""
    next_url = safe_next(request.args.get("next"))
    if codes:
        return security_page(codes=codes)
    return redirect(next_url or url_for("auth.security"), code=303)


def confirmed(user: User) -> tuple[bool, ConfirmationForm]:
    """The password or a current authenticator code, before a factor goes or codes change."""
    form = ConfirmationForm()
    if not form.validate_on_submit():
        return False, form
    attempt = guess(user, SIGNED_IN_DEVICE)
    value = form.confirmation.data
    if user.check_password(value) or factors.verify_totp(user, value):
        db.session.commit()  # the code is spent; and the counters' store may be this database
        attempt.succeeded()
        return True, form
    audit.record("second_factor.confirm_failed", target=user, factor="password or code")
    db.session.commit()
    attempt.failed()
    form.confirmation.errors.append("That is neither your password nor a current code.")
    return False, form


@bp.route("/account/security/totp/remove", methods=["POST"])
@login_required
def totp_remove():
    user = current_user._get_current_object()
    ok, form = confirmed(user)
    if not ok:
        return security_page(confirmation=form, status=400)
    if factors.remove_totp(user):
        db.session.commit()
        flash("The authenticator app was removed.", "success")
    return redirect(url_for("auth.security"), code=303)


@bp.route("/account/security/recovery-codes", methods=["POST"])
@login_required
def recovery_regenerate():
    user = current_user._get_current_object()
    if not factors.has_factor(user):
        flash("Set up an authenticator app or a passkey first.", "error")
        return redirect(url_for("auth.security"), code=303)
    ok, form = confirmed(user)
    if not ok:
        return security_page(confirmation=form, status=400)
    codes = factors.regenerate_recovery_codes(user)
    db.session.commit()
    return security_page(codes=codes)


# --- ADMIN_SECOND_FACTOR=required ----------------------------------------------------------------

def must_enrol(user) -> bool:
    return (current_app.config.get("ADMIN_SECOND_FACTOR") == "required" and user.is_authenticated
            and user.is_admin and not factors.has_factor(user))


@bp.before_app_request
def second_factor_gate():
    """An administrator without a factor, under `required`, can do nothing but enrol."""
    if current_app.config.get("ADMIN_SECOND_FACTOR") != "required":
        return None
    if request.blueprint not in GATED_BLUEPRINTS and request.endpoint not in GATED_ENDPOINTS:
        return None
    if not must_enrol(current_user):
        return None
    return redirect(url_for("auth.security", next=request.full_path.rstrip("?")), code=303)  # the page says why


@bp.app_context_processor
def factor_banner():
    """For templates/auth/_factor_banner.html: an administrator without a factor (optional policy)."""
    def without_factor() -> bool:
        return (current_user.is_authenticated and current_user.is_admin
                and current_app.config.get("ADMIN_SECOND_FACTOR") != "required"
                and not factors.has_factor(current_user))
    return {"admin_without_factor": without_factor}
