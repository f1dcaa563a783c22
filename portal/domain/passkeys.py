"""Passkeys (WebAuthn, py_webauthn): the relying party is ISSUER's host; attestation `none`,
user verification preferred, sign counters checked. Callers commit.

py_webauthn is imported by the functions that run a ceremony, not with the module: it
loads ASN.1 and attestation parsers that a `portal` command or a booting worker never uses."""

import json
from urllib.parse import urlsplit

from sqlalchemy import select

from portal.domain import audit, clock
from portal.domain.factors import drop_recovery_codes_if_alone, passkeys_of
from portal.domain.signing import issuer
from portal.extensions import db
from portal.models import Passkey, User


class PasskeyError(ValueError):
    """A response the browser sent that does not prove what it should; the message says why."""


def relying_party() -> tuple[str, str]:
    """(RP id, origin) from ISSUER: its host name, and its scheme and host."""
    parts = urlsplit(issuer())
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def descriptors(passkeys: list[Passkey]) -> list:
    from webauthn import base64url_to_bytes
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id)) for p in passkeys]


def registration_options(user: User) -> tuple[str, bytes]:
    """The options for navigator.credentials.create() (JSON) and their challenge."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (AttestationConveyancePreference, AuthenticatorSelectionCriteria,
                                          ResidentKeyRequirement, UserVerificationRequirement)

    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name="Tessera", user_id=user.sub.encode(), user_name=user.username,
        user_display_name=user.name or user.username,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=descriptors(passkeys_of(user)))
    return options_to_json(options), options.challenge


def register(user: User, name: str, credential, challenge: bytes) -> Passkey:
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.exceptions import WebAuthnException

    if not isinstance(credential, dict):
        raise PasskeyError("The request holds no credential.")
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origin)
    except (WebAuthnException, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PasskeyError(f"The passkey could not be registered: {error}") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)):
        raise PasskeyError("This passkey is registered already.")
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    passkey = Passkey(user_id=user.id, name=name, credential_id=credential_id,
                      public_key=verified.credential_public_key, sign_count=verified.sign_count,
                      device_type=str(getattr(verified.credential_device_type, "value", "single_device")),
                      transports=" ".join(t for t in (transports or []) if isinstance(t, str))[:200])
    db.session.add(passkey)
    audit.record("second_factor.enrolled", target=user, factor="passkey", name=name)
    return passkey


def authentication_options(user: User | None) -> tuple[str, bytes]:
    """Options for navigator.credentials.get(): the user's passkeys, or any (passwordless)."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=descriptors(passkeys_of(user)) if user else [],
        user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options), options.challenge


def authenticate(credential, challenge: bytes, *, user: User | None,
                 require_user_verification: bool) -> tuple[Passkey, str]:
    """The passkey that signed the challenge, and its amr (`hwk`, or `swk` for a synced
    one). `user`: the passkey must be theirs (the second step); None: anyone's (passwordless)."""
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    credential_id = credential.get("id") if isinstance(credential, dict) else None
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id)) \
        if isinstance(credential_id, str) else None
    if passkey is None or (user is not None and passkey.user_id != user.id):
        raise PasskeyError("This passkey is not registered here.")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=passkey.public_key, credential_current_sign_count=passkey.sign_count,
            require_user_verification=require_user_verification)
    except (WebAuthnException, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PasskeyError(f"The passkey's answer was refused: {error}") from None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = clock.now()
    return passkey, ("swk" if passkey.device_type == "multi_device" else "hwk")


def find(user: User, passkey_id: int) -> Passkey | None:
    passkey = db.session.get(Passkey, passkey_id)
    return passkey if passkey is not None and passkey.user_id == user.id else None


def rename(passkey: Passkey, name: str) -> None:
    passkey.name = name


def remove(user: User, passkey: Passkey) -> None:
    audit.record("second_factor.removed", target=user, factor="passkey", name=passkey.name)
    db.session.delete(passkey)
    drop_recovery_codes_if_alone(user)


def parse(body: str | bytes) -> dict:
    try:
        value = json.loads(body)
    except (ValueError, TypeError):
        raise PasskeyError("The request is not JSON.") from None
    if not isinstance(value, dict):
        raise PasskeyError("The request is not a JSON object.")
    return value
