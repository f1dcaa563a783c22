"""Helpers for the second-factor tests: a clock that moves by TOTP steps, enrolment through
the domain code, the second step through the real forms, and Chromium's virtual
authenticator for passkeys."""

from datetime import timedelta

import pyotp

from portal.domain import clock, factors
from portal.extensions import db
from tests.conftest import csrf_token_from

PASSWORD = "correct horse battery"


class Clock:
    """clock.now(), held still and moved by hand: a TOTP test must say which step it is in."""

    def __init__(self, monkeypatch):
        start = clock.now()
        # Five seconds into a 30-second step: a test never straddles a step by accident.
        self.now = start - timedelta(seconds=clock.timestamp(start) % 30) + timedelta(seconds=5)
        monkeypatch.setattr(clock, "now", lambda: self.now)

    def step(self) -> int:
        return clock.timestamp(self.now) // 30

    def forward(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def enrol_totp(user, frozen: Clock) -> str:
    """An authenticator app confirmed for `user` (with a code of the step before now, so
    the current step's code is still unused); returns the secret."""
    secret = factors.start_totp(user)
    db.session.flush()
    assert factors.confirm_totp(user, code_at(secret, frozen.step() - 1))
    db.session.commit()
    return secret


def login_password(client, username="admin", password=PASSWORD, next_url=None, address="127.0.0.1"):
    page = client.get("/login" + (f"?next={next_url}" if next_url else ""), environ_base={"REMOTE_ADDR": address})
    data = {"username": username, "password": password, "csrf_token": csrf_token_from(page.get_data(as_text=True))}
    if next_url:
        data["next"] = next_url
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address})


def second_step(client, code, method="totp", path="/login/second-factor", address="127.0.0.1"):
    page = client.get(path, environ_base={"REMOTE_ADDR": address})
    return client.post(path, data={"method": method, "code": code,
                                   "csrf_token": csrf_token_from(page.get_data(as_text=True))},
                       environ_base={"REMOTE_ADDR": address})


def add_authenticator(page) -> tuple[object, str]:
    """A platform-like authenticator that verifies its user and answers at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, found["authenticatorId"]
