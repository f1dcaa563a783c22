"""Authorization codes and the atomic claims the OAuth grants need.

Codes are stored by hash and kept after use (`used_at`), so a replayed code can end
every token of its grant. Claims are single UPDATEs guarded by `IS NULL` and are *not*
committed here: the grant issues its token in the same transaction, so a concurrent
second redemption waits on the row lock and then finds it taken.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from portal.domain import clock
from portal.extensions import db
from portal.models import AccessToken, Application, AuthorizationCode, ClientRecord, User
from portal.tokens.values import MAX_VALUE_LENGTH, hash_value
from portal.tokens.view import TokenView

CODE_LIFETIME = timedelta(seconds=60)


def save_code(code: str, *, application: Application | ClientRecord, user: User, redirect_uri: str, scope: str,
              nonce: str | None, code_challenge: str | None, code_challenge_method: str | None,
              auth_time: datetime | None, response_type: str = "code",
              resource: str | None = None, amr: str | None = None, acr: str | None = None) -> AuthorizationCode:
    now = clock.now()
    row = AuthorizationCode(
        code_hash=hash_value(code), application_id=application.id, user_id=user.id,
        redirect_uri=redirect_uri or "", response_type=response_type or "code", scope=scope or "",
        nonce=nonce or None, code_challenge=code_challenge or None,
        code_challenge_method=(code_challenge_method or None) if code_challenge else None,
        auth_time=auth_time, issued_at=now, expires_at=now + CODE_LIFETIME,
        grant_id=secrets.token_hex(16), resource=resource, amr=amr, acr=acr,
    )
    db.session.add(row)
    db.session.commit()
    return row


def find_code(code: str) -> AuthorizationCode | None:
    if not isinstance(code, str) or not code or len(code) > MAX_VALUE_LENGTH:
        return None
    return db.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == hash_value(code)))


def nonce_used(application_client_id: str, nonce: str) -> bool:
    return db.session.scalar(
        select(AuthorizationCode.id)
        .join(Application, Application.id == AuthorizationCode.application_id)
        .where(Application.client_id == application_client_id, AuthorizationCode.nonce == nonce)
        .limit(1)
    ) is not None


def claim_code(row: AuthorizationCode) -> bool:
    """Mark a code used; False if another request used it first. Leaves the transaction open."""
    result = db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_refresh(token: AccessToken | TokenView) -> bool:
    """Mark a refresh token (and its access token) used; False if another request won.

    Leaves the transaction open, so the rotated token is written in the same one."""
    now = clock.now()
    result = db.session.execute(
        update(AccessToken)
        .where(AccessToken.id == token.id, AccessToken.refresh_revoked_at.is_(None))
        .values(refresh_revoked_at=now, revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
