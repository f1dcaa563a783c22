"""A kept Django hash names its own cost (issue 22, point 4): Tessera keeps and checks only
hashes within its limits (PBKDF2 100,000 to 2,000,000 iterations, bcrypt cost 10 to 14,
argon2 at most 64 MiB, 10 passes and 16 lanes). Outside them the importer does not keep
the hash, and a check — at /login or at client authentication — fails without doing the
work and without an error. The hashes are made by Django's own hashers, or written out by
hand where computing one would take seconds to days."""

import base64

import pytest
from django.contrib.auth.hashers import (Argon2PasswordHasher, BCryptSHA256PasswordHasher, PBKDF2PasswordHasher,
                                         make_password)
from sqlalchemy import select

from portal.extensions import db
from portal.domain.hashing import django_hash_problem, django_password_matches
from portal.models import Application, User
from tests.factories import make_application, make_user

PASSWORD = "the old geonode password"
DIGEST = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="  # never computed: the cost refuses the hash first


def hasher(base, **costs):
    made = type(base.__name__, (base,), costs)()
    made.label = "-".join([base.algorithm, *(f"{name}={value}" for name, value in costs.items())])
    return made


def pbkdf2(iterations):
    return hasher(PBKDF2PasswordHasher, iterations=iterations)


def argon2(memory_cost, time_cost=1, parallelism=1):
    return hasher(Argon2PasswordHasher, memory_cost=memory_cost, time_cost=time_cost, parallelism=parallelism)


def bcrypt(rounds):
    return hasher(BCryptSHA256PasswordHasher, rounds=rounds)


@pytest.fixture
def no_work(monkeypatch):
    """Every way a Django hash is checked, made to record the call instead of working."""
    calls = []

    def record(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called for a hash outside the limits")
        return called

    monkeypatch.setattr("hashlib.pbkdf2_hmac", record("pbkdf2_hmac"))
    monkeypatch.setattr("argon2.PasswordHasher.verify", record("argon2"))
    monkeypatch.setattr("bcrypt.checkpw", record("bcrypt"))
    return calls


@pytest.mark.parametrize("make, kept", [
    (pbkdf2(99_999), False), (pbkdf2(100_000), True), (pbkdf2(1), False),
    (argon2(65_536), True), (argon2(65_537), False), (argon2(511), False), (argon2(512), True),
    (argon2(512, time_cost=10), True), (argon2(512, time_cost=11), False),
    (argon2(512, parallelism=16), True), (argon2(512, parallelism=17), False),
    (hasher(Argon2PasswordHasher), False),  # Django's own default asks for 100 MiB
    (bcrypt(10), True), (bcrypt(9), False), (hasher(BCryptSHA256PasswordHasher), True),  # Django's: cost 12
], ids=lambda value: getattr(value, "label", str(value)))
def test_real_django_hashes_at_the_limits(make, kept):
    encoded = make_password(PASSWORD, hasher=make)
    assert (django_hash_problem(encoded) is None) is kept, django_hash_problem(encoded)
    assert django_password_matches(encoded, PASSWORD) is kept
    assert django_password_matches(encoded, PASSWORD + "x") is False


def test_the_most_pbkdf2_iterations_are_still_checked():
    encoded = make_password(PASSWORD, hasher=pbkdf2(2_000_000))
    assert django_hash_problem(encoded) is None and django_password_matches(encoded, PASSWORD)


@pytest.mark.parametrize("encoded, problem", [
    (f"pbkdf2_sha256$2000001$salt${DIGEST}", "iterations 2000001: Tessera checks 100000 to 2000000"),
    (f"pbkdf2_sha256$20000000$salt${DIGEST}", "iterations 20000000"),
    (f"pbkdf2_sha1$99999999999$salt${DIGEST}", "iterations 99999999999"),
    (f"pbkdf2_sha256$9{'9' * 40}$salt${DIGEST}", "a malformed pbkdf2_sha256 hash"),
    (f"pbkdf2_sha256$\u0661\u0660\u0660\u0660\u0660\u0660$salt${DIGEST}", "a malformed"),  # Arabic-Indic digits
    (f"pbkdf2_sha256$+100000$salt${DIGEST}", "a malformed"),
    (f"pbkdf2_sha256$1_000_000$salt${DIGEST}", "a malformed"),
    (f"argon2$argon2id$v=19$m=262144,t=2,p=8$c2FsdHNhbHQ${DIGEST[:43]}", "memory (KiB) 262144"),
    (f"argon2$argon2id$v=19$m=65536,t=11,p=1$c2FsdHNhbHQ${DIGEST[:43]}", "time cost 11"),
    (f"argon2$argon2id$v=19$m=65536,t=1,p=255$c2FsdHNhbHQ${DIGEST[:43]}", "parallelism 255"),
    (f"argon2$argon2id$v=19$m=65536,t=1,p=1,keyid=x$c2FsdHNhbHQ${DIGEST[:43]}", "a malformed argon2 hash"),
    ("bcrypt_sha256$$2b$15$" + "a" * 53, "cost 15: Tessera checks 10 to 14"),
    ("bcrypt$$2b$31$" + "a" * 53, "cost 31"),
    ("bcrypt$$2b$4$" + "a" * 53, "a malformed bcrypt hash"),
    ("md5$salt$0123456789abcdef0123456789abcdef", "'md5' hashes are not checked by Tessera"),
])
def test_a_hash_outside_the_limits_is_refused_without_the_work(no_work, encoded, problem):
    assert problem in django_hash_problem(encoded)
    assert django_password_matches(encoded, PASSWORD) is False
    assert no_work == []


def test_the_most_bcrypt_and_argon2_costs_pass_the_limits():
    """At the upper limits (a cost-14 bcrypt hash takes seconds to make, so it is written
    out): kept, and checked."""
    assert django_hash_problem("bcrypt_sha256$$2b$14$" + "a" * 53) is None
    assert django_hash_problem(f"argon2$argon2id$v=19$m=65536,t=10,p=16$c2FsdHNhbHQ${DIGEST[:43]}") is None


def kept_user(encoded: str) -> User:
    """A user whose Django hash an import kept (one made before these limits, say)."""
    user = make_user("geonode-user", password=None)
    user.password_hash = encoded
    db.session.commit()
    return user


@pytest.mark.parametrize("encoded", [
    f"pbkdf2_sha256$20000000$salt${DIGEST}",  # eight seconds of CPU a try before the limits
    f"argon2$argon2id$v=19$m=262144,t=2,p=8$c2FsdHNhbHQ${DIGEST[:43]}",  # 256 MiB a try
    "bcrypt_sha256$$2b$31$" + "a" * 53,  # days a try
])
def test_login_with_a_costly_kept_hash_fails_without_the_work(app, auth, no_work, encoded):
    kept_user(encoded)
    response = auth.login("geonode-user", PASSWORD)
    assert response.status_code == 200 and "Invalid username or password." in response.get_data(as_text=True)
    assert no_work == []


def test_a_kept_hash_naming_an_absurd_cost_is_a_failed_login_not_a_500(app, auth):
    kept_user(f"pbkdf2_sha256$99999999999$salt${DIGEST}")  # was an OverflowError at /login
    response = auth.login("geonode-user", PASSWORD)
    assert response.status_code == 200 and "Invalid username or password." in response.get_data(as_text=True)


@pytest.mark.parametrize("encoded", [f"pbkdf2_sha256$99999999999$salt${DIGEST}",
                                     f"pbkdf2_sha256$20000000$salt${DIGEST}"])
def test_client_authentication_with_a_costly_kept_secret_hash_fails_without_the_work(app, client, monkeypatch,
                                                                                     encoded):
    application = make_application(name="harvester", client_id="harvester", grant_types=["client_credentials"])
    application.client_secret_hash = encoded  # as an import before these limits kept it
    db.session.commit()
    calls = []
    real = __import__("hashlib").pbkdf2_hmac
    monkeypatch.setattr("hashlib.pbkdf2_hmac", lambda *args: calls.append(args[3]) or real(*args[:3], 1))
    basic = base64.b64encode(f"harvester:{PASSWORD}".encode()).decode()
    answer = client.post("/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"
    assert calls == []
    assert db.session.scalar(select(Application.client_secret_hash).where(Application.id == application.id)) == encoded
