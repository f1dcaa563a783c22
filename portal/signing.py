"""What Tessera signs with, and as whom: the RS256 keys (the newest signs; every key still
needed is published in JWKS) and the issuer URL. Below both the token core (JWT access
tokens) and the OAuth server (ID tokens, /jwks, discovery)."""

import json
import secrets
from datetime import timedelta

from functools import lru_cache

from flask import current_app, g, has_request_context, request
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select
from werkzeug.sansio.utils import get_current_url

from portal import clock
from portal.extensions import db
from portal.models import SigningKey


def new_key() -> SigningKey:
    kid = clock.now().strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    return SigningKey(kid=kid, private_jwk=json.dumps(key.as_dict(private=True)))


def ensure_signing_key() -> SigningKey | None:
    """Create the first key if there is none; return it if it was created."""
    if db.session.scalar(select(SigningKey.id).limit(1)) is not None:
        return None
    key = new_key()
    db.session.add(key)
    db.session.commit()
    return key


def rotate() -> SigningKey:
    """A new current key; the old ones stay published until their tokens expire."""
    now = clock.now()
    for old in db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        old.retired_at = now
    key = new_key()
    db.session.add(key)
    db.session.commit()
    g.pop("signing_key", None)
    return key


# Parsed keys by kid: parsing a private JWK costs more than the query that names it.
_parsed: dict[str, RSAKey] = {}


def parsed(row: SigningKey) -> RSAKey:
    if row.kid not in _parsed:
        _parsed[row.kid] = RSAKey.import_key(json.loads(row.private_jwk))
    return _parsed[row.kid]


def current_key() -> RSAKey:
    """The key that signs now: the newest one not retired (made on first use if none).

    Read once per request: the kid in a header and the key that signs must be the same
    one even if another worker makes or rotates a key meanwhile."""
    if "signing_key" not in g:
        g.signing_key = _newest_key()
    return g.signing_key


def ensure_current_key() -> None:
    """Make sure a signing key is committed before a grant opens its transaction (ID tokens
    are signed after the token row is committed). Checked once per worker: keys are never
    deleted, and a rotation always leaves a current one."""
    if not current_app.extensions.get("tessera.signing_key_ready"):
        current_key()
        db.session.commit()
        current_app.extensions["tessera.signing_key_ready"] = True


_NEWEST_KID = (select(SigningKey.kid).where(SigningKey.retired_at.is_(None))
               .order_by(SigningKey.created_at.desc(), SigningKey.id.desc()).limit(1))


def _newest_key() -> RSAKey:
    kid = db.session.scalar(_NEWEST_KID)  # the kid alone: the private key is parsed once per worker
    if kid is None:
        # First use on a database `portal init` did not prepare. Flushed, not committed: it
        # is committed with the token it signs, and never commits a grant's claim early.
        row = new_key()
        db.session.add(row)
        db.session.flush()
        return parsed(row)
    if kid not in _parsed:
        return parsed(db.session.scalar(select(SigningKey).where(SigningKey.kid == kid)))
    return _parsed[kid]


def published_keys() -> KeySet:
    """Current and previous keys: a retired key stays until every token it signed has expired."""
    config = current_app.config
    longest = max(config["OIDC_TOKEN_EXPIRE"], config["ACCESS_TOKEN_EXPIRE_SECONDS"], 3600)
    cutoff = clock.now() - timedelta(seconds=longest)
    rows = db.session.scalars(
        select(SigningKey).where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
        .order_by(SigningKey.created_at.desc())
    )
    return KeySet([parsed(row) for row in rows])


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
    """`request.host_url`, computed once per host (its IRI conversion is costly; README: Benchmark)."""
    return get_current_url(scheme, host).rstrip("/")
