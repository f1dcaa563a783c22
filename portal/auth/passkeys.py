"""Passkeys in the browser (static/js/passkeys.js): register, sign in (the second step, or
passwordless), confirm for a step-up; rename and remove (plain forms)."""

from flask import current_app, flash, jsonify, redirect, request, session, url_for
from flask_login import current_user, login_required

from portal.auth import bp
from portal.auth.devices import remember_device
from portal.auth.factors import confirmed, security_page
from portal.auth.forms import PasskeyNameForm
from portal.auth.sessions import pending_second_step, second_factor_given
from portal.auth.views import complete_login, home_for, safe_next
from portal.domain import audit, factors, passkeys
from portal.domain.passkeys import PasskeyError
from portal.extensions import db
from portal.models import User
from portal.web import shown_once, throttle

CEREMONY_KEY = "webauthn"  # {"challenge": base64url, "mode": register | second | confirm | passwordless}


def problem(message: str, status: int = 400):
    return jsonify(error=message), status


def remember_challenge(challenge: bytes, mode: str) -> None:
    from webauthn.helpers import bytes_to_base64url  # imported once a ceremony runs (portal.domain.passkeys)

    session[CEREMONY_KEY] = {"challenge": bytes_to_base64url(challenge), "mode": mode}


def take_challenge(mode: str) -> bytes | None:
    """The challenge of this browser's last ceremony of that kind, usable once."""
    from webauthn import base64url_to_bytes

    ceremony = session.pop(CEREMONY_KEY, None)
    if not isinstance(ceremony, dict) or ceremony.get("mode") != mode:
        return None
    return base64url_to_bytes(ceremony["challenge"])


def options_response(options_json: str):
    response = current_app.response_class(options_json, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- registration ---------------------------------------------------------------------------------

@bp.route("/account/passkeys/options", methods=["POST"])
@login_required
def passkey_register_options():
    options, challenge = passkeys.registration_options(current_user)
    remember_challenge(challenge, "register")
    return options_response(options)


@bp.route("/account/passkeys", methods=["POST"])
@login_required
def passkey_register():
    user = current_user._get_current_object()
    try:
        body = passkeys.parse(request.get_data())
        name = (body.get("name") or "").strip() if isinstance(body.get("name"), str) else ""
        if not name or len(name) > 100:
            raise PasskeyError("Give the passkey a name of at most 100 characters.")
        challenge = take_challenge("register")
        if challenge is None:
            raise PasskeyError("Start again: this registration was not asked for here.")
        passkeys.register(user, name, body.get("credential"), challenge)
    except PasskeyError as error:
        db.session.rollback()
        return problem(str(error))
    codes = factors.codes_if_none_left(user)
    db.session.commit()
    flash(f"The passkey “{name}” was added.", "success")
    next_url = safe_next(request.args.get("next"))
    response = jsonify(redirect=url_for("auth.security", next=next_url) if next_url else url_for("auth.security"))
    if codes:  # the first factor's recovery codes, shown once by the page the script goes to
        shown_once.hold(response, url_for("auth.security"), " ".join(codes))
    return response


# --- signing in with a passkey ------------------------------------------------------------------

def ceremony_mode() -> str:
    """`second` after a right password, `confirm` in a signed-in session, else `passwordless`."""
    if pending_second_step() is not None:
        return "second"
    if current_user.is_authenticated:
        return "confirm"
    return "passwordless"


def ceremony_user(mode: str) -> User | None:
    """Whose passkey this ceremony asks for: None for passwordless (anyone's)."""
    if mode == "second":
        return pending_second_step()[0]
    return current_user._get_current_object() if mode == "confirm" else None


@bp.route("/login/passkey/options", methods=["POST"])
def passkey_login_options():
    mode = ceremony_mode()
    user = ceremony_user(mode)
    options, challenge = passkeys.authentication_options(user)
    remember_challenge(challenge, mode)
    return options_response(options)


@bp.route("/login/passkey", methods=["POST"])
def passkey_login():
    """Check the browser's answer; JSON {"redirect": where to go} or {"error": why not}."""
    mode = ceremony_mode()
    pending = pending_second_step() if mode == "second" else None
    user = ceremony_user(mode)
    try:
        body = passkeys.parse(request.get_data())
        challenge = take_challenge(mode)
        if challenge is None:
            raise PasskeyError("Start again: this sign-in was not asked for here.")
        # Passwordless, the passkey is both factors: it must have checked its owner (PIN, biometrics).
        passkey, kind = passkeys.authenticate(body.get("credential"), challenge, user=user,
                                              require_user_verification=mode == "passwordless")
    except PasskeyError as error:
        db.session.rollback()
        audit.record("login.second_factor_failed" if mode != "confirm" else "second_factor.confirm_failed",
                     actor=user.username if user else audit.SYSTEM, target=user,
                     target_type="" if user else "user", factor="passkey")
        db.session.commit()
        try:
            throttle.failed(throttle.PASSWORD, user.username.lower() if user else None)
        except throttle.Refused as refused:
            return problem(refused.said(), 429)
        return problem(str(error))
    owner = passkey_owner(passkey)
    if mode == "confirm":
        second_factor_given(kind)
        db.session.commit()
        return jsonify(redirect=safe_next(request.args.get("next")) or url_for("auth.security"))
    if not owner.active:
        return problem("This account is deactivated.", 403)
    amr = ("pwd", kind, "mfa") if mode == "second" else (kind, "mfa")
    complete_login(owner, amr)
    next_url = safe_next(pending[1]) if pending else safe_next(request.args.get("next"))
    response = jsonify(redirect=next_url or home_for(owner))
    remember_device(response, owner.username)
    return response


def passkey_owner(passkey) -> User:
    return db.session.get(User, passkey.user_id)


# --- rename, remove -------------------------------------------------------------------------------

@bp.route("/account/passkeys/<int:passkey_id>/rename", methods=["POST"])
@login_required
def passkey_rename(passkey_id: int):
    passkey = passkeys.find(current_user, passkey_id)
    if passkey is None:
        flash("That passkey is not yours, or was removed.", "error")
        return redirect(url_for("auth.security"), code=303)
    form = PasskeyNameForm()
    if not form.validate_on_submit():
        flash(" ".join(form.name.errors) or "Give the passkey a name.", "error")
        return redirect(url_for("auth.security") + "#passkeys", code=303)
    passkeys.rename(passkey, form.name.data.strip())
    db.session.commit()
    flash("The passkey was renamed.", "success")
    return redirect(url_for("auth.security") + "#passkeys", code=303)


@bp.route("/account/passkeys/<int:passkey_id>/remove", methods=["POST"])
@login_required
def passkey_remove(passkey_id: int):
    user = current_user._get_current_object()
    passkey = passkeys.find(user, passkey_id)
    if passkey is None:
        flash("That passkey is not yours, or was removed.", "error")
        return redirect(url_for("auth.security"), code=303)
    ok, form = confirmed(user)
    if not ok:
        return security_page(confirmation=form, status=400)
    name = passkey.name
    passkeys.remove(user, passkey)
    db.session.commit()
    flash(f"The passkey “{name}” was removed.", "success")
    return redirect(url_for("auth.security") + "#passkeys", code=303)

