"""What Tessera signs with, and as whom: the RS256 keys and the issuer URL. Below both the
token core (JWT access tokens) and the OAuth server (ID tokens, /jwks, discovery).

A key's state follows from the clock and the key rows alone, so every worker agrees
without signalling: *next* (published in /jwks, not yet signing) until its `signs_from`;
*current* (signing) until a later key's `signs_from` has passed; then *retiring*,
published until the last token it signed has expired; then unpublished. A staged rotation
publishes the next key one JWKS cache lifetime before it signs, so a verifier that cached
/jwks just before the rotation knows the key by the time it sees a token signed with it.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from functools import lru_cache

from flask import current_app, g, has_request_context, request
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import bindparam, delete, or_, select, update
from werkzeug.sansio.utils import get_current_url

from portal.domain import clock
from portal.extensions import db
from portal.models import SigningKey

NEXT, CURRENT, RETIRING, RETIRED = "next", "current", "retiring", "retired"


class RotationError(Exception):
    """A rotation that would undo or stack on one already under way."""


def jwks_cache_seconds() -> int:
    """How long /jwks may be cached (its max-age), and so how long a staged key is
    published before it signs: one setting (JWKS_CACHE_SECONDS), so the two cannot drift."""
    return current_app.config["JWKS_CACHE_SECONDS"]


def staging_delay() -> timedelta:
    """From a staged rotation to the new key's first signature: the JWKS cache lifetime, and
    a second more, as `clock.now()` drops the fraction of the current second."""
    return timedelta(seconds=jwks_cache_seconds() + 1)


def grant_token_lifetime() -> timedelta:
    """The lifetime of every ID token and every JWT access token a grant issues; longer
    ones (admin- or API-made JWTs) are recorded on the key that signed them (`keep_published`)."""
    return timedelta(seconds=current_app.config["OIDC_TOKEN_EXPIRE"])


@dataclass(frozen=True)
class KeyTimes:
    """When one key signs and how long it must stay published."""

    kid: str
    signs_from: datetime
    signs_until: datetime | None  # the next key's signs_from; None while no later key exists
    signed_until: datetime | None

    def published_until(self, lifetime: timedelta) -> datetime | None:
        """None: published for as long as it is, or may become, the current key."""
        if self.signs_until is None:
            return None
        return max(self.signs_until + lifetime, self.signed_until or self.signs_until)

    def state(self, now: datetime, lifetime: timedelta) -> str:
        if self.signs_from > now:
            return NEXT
        if self.signs_until is None or self.signs_until > now:
            return CURRENT
        return RETIRING if self.published_until(lifetime) > now else RETIRED


_KEY_TIMES = select(SigningKey.kid, SigningKey.signs_from, SigningKey.signed_until).order_by(
    SigningKey.signs_from, SigningKey.id)


def key_times() -> list[KeyTimes]:
    """Every key, in signing order, each with the moment the next one takes over."""
    rows = db.session.execute(_KEY_TIMES).all()
    return [KeyTimes(kid, signs_from, rows[i + 1].signs_from if i + 1 < len(rows) else None, signed_until)
            for i, (kid, signs_from, signed_until) in enumerate(rows)]


# Parsed keys by kid: parsing a private JWK costs more than the query that names it (about
# as much as making the key: the key is checked), so a key made here is kept as made.
_parsed: dict[str, RSAKey] = {}


def generate_rsa_key(kid: str) -> RSAKey:
    """A new 2048-bit RS256 key named `kid` (the test suite hands out keys it made earlier
    instead: tests/conftest.py, `premade_signing_keys`)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


def new_key(signs_from: datetime | None = None) -> SigningKey:
    now = clock.now()
    kid = now.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    key = generate_rsa_key(kid)
    _parsed[kid] = key  # parsing it back from the row would cost as much as making it
    return SigningKey(kid=kid, private_jwk=json.dumps(key.as_dict(private=True)), created_at=now,
                      signs_from=signs_from or now)


def ensure_signing_key() -> SigningKey | None:
    """Create the first key if there is none; return it if it was created."""
    if db.session.scalar(select(SigningKey.id).limit(1)) is not None:
        return None
    key = new_key()
    db.session.add(key)
    db.session.commit()
    return key


@dataclass(frozen=True)
class Rotation:
    """What `rotate` did: the new key, the one it takes over from, and any waiting key it
    withdrew (`at_once` only)."""

    key: SigningKey
    previous: KeyTimes | None
    withdrawn: list[str]

    def previous_published_until(self) -> datetime | None:
        if self.previous is None:
            return None
        replaced = KeyTimes(self.previous.kid, self.previous.signs_from, self.key.signs_from,
                            self.previous.signed_until)
        return replaced.published_until(grant_token_lifetime())


def rotate(at_once: bool = False) -> Rotation:
    """Make the next key. Staged (the default): published now, signing after one JWKS cache
    lifetime. `at_once`: signing now (verifiers with a cached /jwks refuse its tokens until
    their cache expires); a waiting staged key is withdrawn, as it never signed."""
    now = clock.now()
    lifetime = grant_token_lifetime()
    times = key_times()
    waiting = [k.kid for k in times if k.state(now, lifetime) == NEXT]
    if waiting and not at_once:
        pending = next(k for k in times if k.kid == waiting[0])
        raise RotationError(f"key {pending.kid} is already published and starts signing at "
                            f"{pending.signs_from:%Y-%m-%d %H:%M:%S} UTC; rotate again after that, "
                            "or use --now")
    if waiting:
        db.session.execute(delete(SigningKey).where(SigningKey.kid.in_(waiting)))
    previous = next((k for k in times if k.state(now, lifetime) == CURRENT), None)
    key = new_key(signs_from=now if at_once else now + staging_delay())
    db.session.add(key)
    db.session.commit()
    g.pop("signing_key", None)
    return Rotation(key, previous, waiting)


def parsed(row: SigningKey) -> RSAKey:
    if row.kid not in _parsed:
        _parsed[row.kid] = RSAKey.import_key(json.loads(row.private_jwk))
    return _parsed[row.kid]


def parsed_by_kid(kids: list[str]) -> list[RSAKey]:
    missing = [kid for kid in kids if kid not in _parsed]
    if missing:
        for row in db.session.scalars(select(SigningKey).where(SigningKey.kid.in_(missing))):
            parsed(row)
    return [_parsed[kid] for kid in kids if kid in _parsed]


def current_key() -> RSAKey:
    """The key that signs now: the latest whose `signs_from` has passed (made on first use
    if there is none).

    Read once per request: the kid in a header and the key that signs must be the same
    one even if the next key takes over meanwhile."""
    if "signing_key" not in g:
        g.signing_key = _current_key()
    return g.signing_key


def ensure_current_key() -> None:
    """Make sure a signing key is committed before a grant opens its transaction (ID tokens
    are signed after the token row is committed). Checked once per worker: a current key
    is never deleted (a rotation withdraws only keys that never signed)."""
    if not current_app.extensions.get("tessera.signing_key_ready"):
        current_key()
        db.session.commit()
        current_app.extensions["tessera.signing_key_ready"] = True


_CURRENT_KID = (select(SigningKey.kid).where(SigningKey.signs_from <= bindparam("now"))
                .order_by(SigningKey.signs_from.desc(), SigningKey.id.desc()).limit(1))


def _current_key() -> RSAKey:
    kid = db.session.scalar(_CURRENT_KID, {"now": clock.now()})  # the kid alone: parsed once per worker
    if kid is None:
        # First use on a database `portal init` did not prepare. Flushed, not committed: it
        # is committed with the token it signs, and never commits a grant's claim early.
        row = new_key()
        db.session.add(row)
        db.session.flush()
        return parsed(row)
    return parsed_by_kid([kid])[0]


def keep_published(kid: str, until: datetime) -> None:
    """Keep a key in /jwks at least until `until` (a token it signed expires then). In the
    caller's transaction: the row and the token it covers are committed together."""
    db.session.execute(update(SigningKey).where(
        SigningKey.kid == kid, or_(SigningKey.signed_until.is_(None), SigningKey.signed_until < until),
    ).values(signed_until=until))


def published_keys() -> KeySet:
    """The next, current and retiring keys (newest first): a retiring key stays until every
    token it signed has expired."""
    now, lifetime = clock.now(), grant_token_lifetime()
    kids = [k.kid for k in reversed(key_times()) if k.state(now, lifetime) != RETIRED]
    return KeySet(parsed_by_kid(kids))


def issuer() -> str:
    """ISSUER, or the URL the request came to (no trailing slash)."""
    configured = current_app.config.get("ISSUER")
    if configured:
        return configured
    if has_request_context():
        return request_host_url()
    return "http://localhost:8000"


def request_host_url() -> str:
    """The scheme and host the request came to, without a trailing slash."""
    return _host_url(request.scheme, request.host)


@lru_cache(maxsize=32)  # bounded: the Host header is the client's to choose
def _host_url(scheme: str, host: str) -> str:
    """`request.host_url`, computed once per host (its IRI conversion is costly; docs/benchmark.md)."""
    return get_current_url(scheme, host).rstrip("/")
