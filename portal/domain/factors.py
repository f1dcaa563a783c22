"""Second factors: the authenticator app (TOTP, RFC 6238), recovery codes, and what a user has.

Passkeys live in portal.domain.passkeys. Callers commit, except where a step must be atomic
across workers (a TOTP step is claimed with one UPDATE).
"""

import base64
import secrets
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from markupsafe import Markup
from sqlalchemy import delete, func, or_, select, update

from portal.domain import audit, clock
from portal.domain.signing import issuer
from portal.extensions import db
from portal.models import Passkey, RecoveryCode, TotpFactor, User
from portal.tokens.values import hash_value

RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
TOTP_DRIFT_STEPS = 1


# --- the secret at rest --------------------------------------------------------------------

def fernet_for(secret_key: str) -> Fernet:
    """A Fernet key derived from SECRET_KEY (HKDF-SHA256), for this purpose only."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"tessera second factor secrets").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str) -> str:
    return fernet_for(current_app.config["SECRET_KEY"]).encrypt(secret.encode()).decode()


def decrypt(stored: str) -> str | None:
    """None when SECRET_KEY changed without `portal reencrypt-second-factors`."""
    try:
        return fernet_for(current_app.config["SECRET_KEY"]).decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def reencrypt(old_secret_key: str) -> int:
    """Encrypt every TOTP secret again under the current SECRET_KEY, reading those still under
    `old_secret_key`. Returns how many rows were rewritten."""
    both = MultiFernet([fernet_for(current_app.config["SECRET_KEY"]), fernet_for(old_secret_key)])
    changed = 0
    for row in db.session.scalars(select(TotpFactor)):
        try:
            rotated = both.rotate(row.secret_encrypted.encode()).decode()
        except InvalidToken:
            continue  # under neither key: left as it is (reset it)
        if rotated != row.secret_encrypted:
            row.secret_encrypted = rotated
            changed += 1
    return changed


# --- what a user has -----------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    totp: TotpFactor | None
    passkeys: list[Passkey]
    recovery_left: int

    @property
    def any(self) -> bool:
        return self.totp is not None or bool(self.passkeys)


def totp_of(user: User, confirmed: bool = True) -> TotpFactor | None:
    row = db.session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))
    if row is not None and confirmed and row.confirmed_at is None:
        return None
    return row


def passkeys_of(user: User) -> list[Passkey]:
    return list(db.session.scalars(select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id)))


def recovery_left(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))


def summary(user: User) -> Summary:
    return Summary(totp_of(user), passkeys_of(user), recovery_left(user))


def has_factor(user: User) -> bool:
    """A confirmed authenticator app or a passkey (recovery codes only back those up)."""
    confirmed_totp = select(TotpFactor.id).where(TotpFactor.user_id == user.id, TotpFactor.confirmed_at.is_not(None))
    passkey = select(Passkey.id).where(Passkey.user_id == user.id)
    return db.session.scalar(select(or_(confirmed_totp.exists(), passkey.exists())))


def admins_without_factor() -> int:
    """Active administrators who sign in with a password alone."""
    confirmed = select(TotpFactor.user_id).where(TotpFactor.confirmed_at.is_not(None))
    with_passkey = select(Passkey.user_id)
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.is_admin.is_(True), User.active.is_(True),
        User.id.not_in(confirmed), User.id.not_in(with_passkey)))


# --- authenticator app -----------------------------------------------------------------------

def start_totp(user: User) -> str:
    """A new, unconfirmed secret for the user (replacing an unconfirmed one); the secret."""
    row = totp_of(user, confirmed=False)
    if row is not None and row.confirmed_at is not None:
        raise ValueError("an authenticator app is already set up")
    secret = pyotp.random_base32()
    if row is None:
        row = TotpFactor(user_id=user.id, secret_encrypted=encrypt(secret))
        db.session.add(row)
    else:
        row.secret_encrypted, row.created_at, row.last_step = encrypt(secret), clock.now(), None
    return secret


def pending_secret(user: User) -> str | None:
    row = totp_of(user, confirmed=False)
    if row is None or row.confirmed_at is not None:
        return None
    return decrypt(row.secret_encrypted)


def provisioning_uri(user: User, secret: str) -> str:
    host = issuer().split("://", 1)[-1]
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=f"Tessera ({host})")


def qr_svg(uri: str) -> Markup:
    """The QR code as inline SVG, drawn here (no image request, no third party)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", omitsize=True,
                                                title="QR code to scan")
    return Markup(svg)


def normalized_code(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def matching_step(secret: str, code: str) -> int | None:
    """The time step (±TOTP_DRIFT_STEPS) whose code this is, or None."""
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    now_step = clock.timestamp(clock.now()) // totp.interval
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def claim_step(row: TotpFactor, step: int) -> bool:
    """Record `step` as used, unless it (or a later one) already was: one atomic UPDATE,
    so two workers cannot both accept one code."""
    result = db.session.execute(
        update(TotpFactor).where(TotpFactor.id == row.id,
                                 or_(TotpFactor.last_step.is_(None), TotpFactor.last_step < step))
        .values(last_step=step, last_used_at=clock.now()))
    return result.rowcount == 1


def confirm_totp(user: User, code: str) -> bool:
    """The first code makes the pending secret count."""
    row = totp_of(user, confirmed=False)
    if row is None or row.confirmed_at is not None:
        return False
    secret = decrypt(row.secret_encrypted)
    step = matching_step(secret, normalized_code(code)) if secret else None
    if step is None or not claim_step(row, step):
        return False
    row.confirmed_at = clock.now()
    audit.record("second_factor.enrolled", target=user, factor="totp")
    return True


def verify_totp(user: User, code: str) -> bool:
    row = totp_of(user)
    if row is None:
        return False
    secret = decrypt(row.secret_encrypted)
    step = matching_step(secret, normalized_code(code)) if secret else None
    return step is not None and claim_step(row, step)


def remove_totp(user: User) -> bool:
    row = totp_of(user, confirmed=False)
    if row is None:
        return False
    confirmed = row.confirmed_at is not None
    db.session.delete(row)
    if confirmed:
        audit.record("second_factor.removed", target=user, factor="totp")
        drop_recovery_codes_if_alone(user)
    return True


# --- recovery codes --------------------------------------------------------------------------

def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))  # ~49 bits, throttled
    return f"{raw[:5]}-{raw[5:]}"


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new codes (the old ones stop working); shown once, kept hashed."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=hash_value(normalized_code(c))) for c in codes)
    audit.record("second_factor.recovery_codes_made", target=user, count=len(codes))
    return codes


def codes_if_none_left(user: User) -> list[str] | None:
    """Ten new recovery codes when the user has none left (their first factor, or every
    code used), to show once; None when they still have some."""
    return regenerate_recovery_codes(user) if recovery_left(user) == 0 else None


def use_recovery_code(user: User, code: str) -> int | None:
    """Spend a recovery code (atomically); how many are left, or None if it is not one."""
    normalized = normalized_code(code)
    if len(normalized) != 10:
        return None
    result = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
                                   RecoveryCode.code_hash == hash_value(normalized))
        .values(used_at=clock.now()))
    if result.rowcount != 1:
        return None
    left = recovery_left(user)
    audit.record("second_factor.recovery_code_used", target=user, left=left)
    return left


def drop_recovery_codes_if_alone(user: User) -> None:
    """Recovery codes back a factor up; with none left, they would be a factor on their own."""
    db.session.flush()
    if not has_factor(user):
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


# --- everything ------------------------------------------------------------------------------

def reset(user: User, *, actor: str | None = None, via: str = "") -> int:
    """Remove every second factor of the user (a locked-out user, an admin's "Reset factors",
    `portal reset-second-factor`). Returns how many factors and codes were removed."""
    removed = 0
    for model in (TotpFactor, Passkey, RecoveryCode):
        removed += db.session.execute(delete(model).where(model.user_id == user.id)).rowcount
    audit.record("second_factor.reset", actor=actor, target=user, removed=removed, via=via or None)
    return removed
