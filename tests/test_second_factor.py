"""Second factors over HTTP (issue 26): the authenticator app (TOTP), recovery codes, the
second step of a sign-in, the Security page, the ADMIN_SECOND_FACTOR policy, step-up,
throttling and the audit log, `portal reset-second-factor` and the admin's "Reset factors"."""

import re

import pytest
from sqlalchemy import select

from portal.config import ConfigError, settings_from_environment
from portal.domain import factors
from portal.extensions import db
from portal.models import AuditEvent, RecoveryCode, TotpFactor
from tests.conftest import csrf_token_from
from tests.factories import make_user
from tests.second_factor import PASSWORD, Clock, code_at, enrol_totp, login_password, second_step

pytestmark = pytest.mark.both_databases


@pytest.fixture
def frozen(monkeypatch):
    return Clock(monkeypatch)


def actions() -> list[str]:
    db.session.expire_all()
    return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


# --- enrolment on the Security page ----------------------------------------------------------------

def test_totp_enrolment_shows_a_qr_code_counts_only_once_confirmed_and_shows_recovery_codes_once(
        admin_client, admin_user, frozen):
    page = admin_client.get("/account/security")
    assert page.status_code == 200 and "You have none yet." in page.get_data(as_text=True)
    started = admin_client.post("/account/security/totp",
                                data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert started.status_code == 303
    page = admin_client.get("/account/security").get_data(as_text=True)
    assert "<svg" in page and 'class="segno"' in page
    secret = re.search(r'id="totp-secret" value="([A-Z2-7]+)"', page).group(1)
    assert not factors.has_factor(admin_user)  # not before a code confirms it
    stored = db.session.scalar(select(TotpFactor))
    assert secret not in stored.secret_encrypted  # encrypted at rest

    wrong = admin_client.post("/account/security/totp/confirm",
                              data={"code": "000000", "csrf_token": csrf_token_from(page)})
    assert wrong.status_code == 400 and "That code is not right" in wrong.get_data(as_text=True)
    done = admin_client.post("/account/security/totp/confirm",
                             data={"code": code_at(secret, frozen.step()), "csrf_token": csrf_token_from(page)})
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert factors.has_factor(admin_user)
    hashes = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(hashes) == 10 and not any(code.replace("-", "") in hashes for code in codes)  # kept hashed
    again = admin_client.get("/account/security").get_data(as_text=True)
    assert codes[0] not in again and "10</strong> unused recovery codes" in again  # shown once
    assert "second_factor.enrolled" in actions() and "second_factor.recovery_codes_made" in actions()


def test_confirming_with_bad_input_is_a_form_message_not_a_500(admin_client):
    page = admin_client.get("/account/security").get_data(as_text=True)
    for code in ["", "x" * 70, "12345٦", "\u0000"]:
        response = admin_client.post("/account/security/totp/confirm",
                                     data={"code": code, "csrf_token": csrf_token_from(page)})
        assert response.status_code == 400


# --- the second step -------------------------------------------------------------------------------

def test_with_totp_the_password_alone_does_not_sign_in_and_the_code_does(client, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    response = login_password(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/login/second-factor")
    assert not signed_in(client)
    page = client.get("/login/second-factor").get_data(as_text=True)
    assert "Authenticator app" in page and "Use a recovery code" in page
    done = second_step(client, code_at(secret, frozen.step()))
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin")
    assert signed_in(client)
    login = [e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login"))][-1]
    assert login.details == {"amr": "pwd otp mfa"}


def test_a_code_works_once_even_in_its_own_window(app, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    code = code_at(secret, frozen.step())
    first, second = app.test_client(), app.test_client()
    login_password(first)
    assert second_step(first, code).status_code == 303
    login_password(second)
    replayed = second_step(second, code)
    assert replayed.status_code == 200 and "That code is not right, or it was used already." in replayed.get_data(
        as_text=True)
    assert not signed_in(second)
    assert "login.second_factor_failed" in actions()


@pytest.mark.parametrize("offset, accepted", [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_step_of_drift_is_accepted(client, admin_user, frozen, offset, accepted):
    secret = enrol_totp(admin_user, frozen)
    frozen.forward(60)  # the enrolment's step is long past
    login_password(client)
    response = second_step(client, code_at(secret, frozen.step() + offset))
    assert (response.status_code == 303) is accepted


@pytest.mark.parametrize("app_config", [{"LOGIN_RATE_LIMIT": "3 per minute"}])
def test_wrong_codes_are_throttled_like_wrong_passwords(client, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    login_password(client, address="203.0.113.9")
    statuses = [second_step(client, "000000", address="203.0.113.9").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = second_step(client, code_at(secret, frozen.step()), address="203.0.113.9")
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(as_text=True)
    assert not signed_in(client)
    assert actions().count("login.second_factor_failed") == 3


def test_a_recovery_code_works_once_and_says_how_many_are_left(app, admin_user, frozen):
    enrol_totp(admin_user, frozen)
    codes = factors.regenerate_recovery_codes(admin_user)
    db.session.commit()
    client = app.test_client()
    login_password(client)
    used = second_step(client, codes[3].upper().replace("-", " "), method="recovery")
    assert used.status_code == 303
    assert "Recovery code accepted: 9 left." in client.get("/admin/").get_data(as_text=True)
    other = app.test_client()
    login_password(other)
    again = second_step(other, codes[3], method="recovery")
    assert again.status_code == 200 and not signed_in(other)
    assert "second_factor.recovery_code_used" in actions()


def test_the_second_step_expires_and_needs_the_password_first(client, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    assert client.get("/login/second-factor").status_code == 302  # no password given
    login_password(client)
    token = csrf_token_from(client.get("/login/second-factor").get_data(as_text=True))
    frozen.forward(301)
    late = client.post("/login/second-factor", data={"code": code_at(secret, frozen.step()), "csrf_token": token})
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert not signed_in(client)


def test_a_user_who_is_not_an_admin_gets_the_second_step_too(client, frozen):
    user = make_user("bob")
    secret = enrol_totp(user, frozen)
    assert login_password(client, "bob").headers["Location"].endswith("/login/second-factor")
    assert second_step(client, code_at(secret, frozen.step())).headers["Location"].endswith("/")


# --- removing, regenerating ------------------------------------------------------------------------

def test_removing_the_app_asks_the_password_or_a_code_first(admin_client, admin_user, frozen):
    enrol_totp(admin_user, frozen)
    factors.regenerate_recovery_codes(admin_user)
    db.session.commit()
    page = admin_client.get("/account/security").get_data(as_text=True)
    refused = admin_client.post("/account/security/totp/remove", data={"confirmation": "nope",
                                                                       "csrf_token": csrf_token_from(page)})
    assert refused.status_code == 400 and "neither your password nor a current code" in refused.get_data(as_text=True)
    assert factors.has_factor(admin_user)
    done = admin_client.post("/account/security/totp/remove", data={"confirmation": PASSWORD,
                                                                    "csrf_token": csrf_token_from(page)})
    assert done.status_code == 303
    db.session.expire_all()
    assert not factors.has_factor(admin_user) and factors.recovery_left(admin_user) == 0
    assert "second_factor.removed" in actions()


def test_new_recovery_codes_replace_the_old_ones(admin_client, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    old = factors.regenerate_recovery_codes(admin_user)
    db.session.commit()
    page = admin_client.get("/account/security").get_data(as_text=True)
    made = admin_client.post("/account/security/recovery-codes",
                             data={"confirmation": code_at(secret, frozen.step()), "csrf_token": csrf_token_from(page)})
    new = re.findall(r"<li><code>([a-z2-9-]{11})</code></li>", made.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert factors.use_recovery_code(admin_user, old[0]) is None
    assert factors.use_recovery_code(admin_user, new[0]) == 9


# --- the policy ------------------------------------------------------------------------------------

def test_a_bad_policy_value_stops_start_up(monkeypatch, tmp_path):
    monkeypatch.setenv("ADMIN_SECOND_FACTOR", "sometimes")
    with pytest.raises(ConfigError, match="ADMIN_SECOND_FACTOR must be optional or required, not 'sometimes'"):
        settings_from_environment(str(tmp_path), skip_secret=True)


def test_optional_is_the_default_a_password_alone_still_signs_in_and_a_banner_says_so(admin_client, app):
    assert app.config["ADMIN_SECOND_FACTOR"] == "optional"
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "You sign in with a password alone:" in page
    assert re.search(r'id="admins-without-factor"><strong>1</strong> administrator signs in with a password alone',
                     page)
    assert "You sign in with a password alone:" in admin_client.get("/admin/tokens").get_data(as_text=True)


def test_the_banner_and_the_count_go_once_the_admin_enrols(admin_client, admin_user, frozen):
    enrol_totp(admin_user, frozen)
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "You sign in with a password alone:" not in page and "Every administrator has a second factor." in page


@pytest.mark.parametrize("app_config", [{"ADMIN_SECOND_FACTOR": "required"}])
def test_required_an_admin_without_a_factor_can_do_nothing_but_enrol(client, admin_user, frozen):
    response = login_password(client)
    assert response.status_code == 303
    for path in ["/admin/", "/admin/tokens", "/admin/users", "/admin/audit", "/", "/account/confirm",
                 "/authorize?client_id=x&response_type=code"]:
        gated = client.get(path)
        assert gated.status_code == 303 and "/account/security?next=" in gated.headers["Location"], path
    page = client.get("/account/security").get_data(as_text=True)
    made = client.post("/admin/tenants", data={"name": "site9", "label": "x", "csrf_token": csrf_token_from(page)})
    assert made.status_code == 303 and "/account/security" in made.headers["Location"]
    assert "Administrators here sign in with a second factor." in page
    client.post("/account/security/totp", data={"csrf_token": csrf_token_from(page)})
    page = client.get("/account/security").get_data(as_text=True)
    secret = re.search(r'id="totp-secret" value="([A-Z2-7]+)"', page).group(1)
    client.post("/account/security/totp/confirm", data={"code": code_at(secret, frozen.step()),
                                                        "csrf_token": csrf_token_from(page)})
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("app_config", [{"ADMIN_SECOND_FACTOR": "required"}])
def test_required_leaves_users_who_are_not_admins_alone(client):
    make_user("bob")
    login_password(client, "bob")
    assert client.get("/").status_code == 200


# --- step-up ---------------------------------------------------------------------------------------

def test_a_master_token_later_needs_the_second_factor_again_not_the_password(app, admin_user, frozen):
    from tests.admin.test_tokens_http import create_data
    from tests.factories import make_application, make_tenant

    setup = {"site1": make_tenant("site1"), "site2": make_tenant("site2"), "app": make_application("crm")}
    secret = enrol_totp(admin_user, frozen)
    client = app.test_client()
    login_password(client)
    second_step(client, code_at(secret, frozen.step()))
    frozen.forward(6 * 60)
    page = client.get("/admin/tokens/new").get_data(as_text=True)
    sent = client.post("/admin/tokens/new", data=create_data(setup, csrf_token_from(page), master="y",
                                                             current_password=PASSWORD))
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/account/confirm?next=/admin/tokens/new")
    assert second_step(client, "000000", path="/account/confirm?next=/admin/tokens/new").status_code == 200
    confirmed = second_step(client, code_at(secret, frozen.step()), path="/account/confirm?next=/admin/tokens/new")
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/admin/tokens/new"
    made = client.post("/admin/tokens/new", data=create_data(setup, csrf_token_from(page), master="y"))
    assert made.status_code == 303 and "/admin/tokens/" in made.headers["Location"]


# --- resets ----------------------------------------------------------------------------------------

def test_portal_reset_second_factor(runner, admin_user, client, frozen):
    enrol_totp(admin_user, frozen)
    factors.regenerate_recovery_codes(admin_user)
    db.session.commit()
    result = runner.invoke(args=["reset-second-factor", "admin"])
    assert result.exit_code == 0 and "Second factors of admin reset (11 removed)." in result.output
    assert not factors.has_factor(admin_user)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "second_factor.reset"))
    assert event.actor == "cli" or event.actor
    assert login_password(client).headers["Location"].endswith("/admin")
    unknown = runner.invoke(args=["reset-second-factor", "nobody"])
    assert unknown.exit_code != 0 and "no user named 'nobody'" in unknown.output


def test_an_admin_sees_which_factors_a_user_has_never_the_secrets_and_resets_them(admin_client, frozen):
    bob = make_user("bob")
    secret = enrol_totp(bob, frozen)
    codes = factors.regenerate_recovery_codes(bob)
    db.session.commit()
    page = admin_client.get(f"/admin/users/{bob.id}").get_data(as_text=True)
    assert "Authenticator app (set up" in page and "10 unused recovery codes" in page
    assert secret not in page and codes[0] not in page
    reset = admin_client.post(f"/admin/users/{bob.id}/factors/reset", data={"csrf_token": csrf_token_from(page)})
    assert reset.status_code == 303
    assert not factors.has_factor(bob) and factors.recovery_left(bob) == 0
    assert "None: this user signs in with a password alone." in admin_client.get(f"/admin/users/{bob.id}").get_data(
        as_text=True)


def test_rotating_secret_key_then_reencrypting_keeps_the_app_working(app, runner, admin_user, frozen):
    secret = enrol_totp(admin_user, frozen)
    app.config["SECRET_KEY"] = "a-new-secret-key"
    assert not factors.verify_totp(admin_user, code_at(secret, frozen.step()))
    result = runner.invoke(args=["reencrypt-second-factors"], input="test-secret-key\n")
    assert result.exit_code == 0 and "1 authenticator secret re-encrypted" in result.output
    db.session.expire_all()
    assert factors.verify_totp(admin_user, code_at(secret, frozen.step()))


# --- passkeys: what the browser sends, when it is not what it should be ----------------------------

@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'{"credential": "x"}', b'{"credential": {"id": 5}}',
                                  b'{"credential": {"id": "AAAA", "response": {}}}'])
def test_a_bad_passkey_answer_is_a_json_error_not_a_500(client, body):
    page = client.get("/login").get_data(as_text=True)
    headers = {"X-CSRFToken": csrf_token_from(page), "Content-Type": "application/json"}
    assert client.post("/login/passkey/options", headers=headers).status_code == 200
    response = client.post("/login/passkey", data=body, headers=headers)
    assert response.status_code == 400 and "error" in response.get_json()


@pytest.mark.parametrize("body", [b"nope", b'{"name": ""}', b'{"name": 5}', b'{"name": "k", "credential": []}',
                                  b'{"name": "k", "credential": {"id": "x", "response": "y"}}'])
def test_a_bad_registration_is_a_json_error_not_a_500(admin_client, body):
    page = admin_client.get("/account/security").get_data(as_text=True)
    headers = {"X-CSRFToken": csrf_token_from(page), "Content-Type": "application/json"}
    options = admin_client.post("/account/passkeys/options", headers=headers)
    assert options.status_code == 200 and options.get_json()["rp"]["id"] == "localhost"
    assert options.get_json()["authenticatorSelection"]["userVerification"] == "preferred"
    assert options.get_json()["attestation"] == "none"
    response = admin_client.post("/account/passkeys", data=body, headers=headers)
    assert response.status_code == 400 and "error" in response.get_json()


def test_passkey_answers_without_a_ceremony_or_csrf_are_refused(client):
    page = client.get("/login").get_data(as_text=True)
    no_csrf = client.post("/login/passkey", data=b"{}", headers={"Content-Type": "application/json"})
    assert no_csrf.status_code == 400
    unasked = client.post("/login/passkey", data=b'{"credential": {}}',
                          headers={"X-CSRFToken": csrf_token_from(page), "Content-Type": "application/json"})
    assert unasked.status_code == 400 and "Start again" in unasked.get_json()["error"]


def test_deleting_a_user_deletes_their_factors(admin_user, frozen):
    from portal.domain import users
    from portal.models import Passkey

    bob = make_user("bob")
    enrol_totp(bob, frozen)
    factors.regenerate_recovery_codes(bob)
    db.session.add(Passkey(user_id=bob.id, name="k", credential_id="abc", public_key=b"k"))
    db.session.commit()
    users.delete(bob)
    db.session.commit()
    assert db.session.scalar(select(TotpFactor)) is None
    assert db.session.scalar(select(RecoveryCode)) is None and db.session.scalar(select(Passkey)) is None
