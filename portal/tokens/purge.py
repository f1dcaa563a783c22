"""Purging: deleting expired tokens, used or expired authorization codes and long-revoked
rows, in batches, each in its own short transaction (`portal purge-expired`)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select

from portal.domain import clock
from portal.extensions import db
from portal.models import AccessToken, AuthorizationCode


@dataclass(frozen=True)
class Purge:
    label: str
    model: type
    condition: object  # SQL: the rows that may go

    def count(self) -> int:
        return db.session.scalar(select(func.count()).select_from(self.model).where(self.condition))

    def batches(self, batch_size: int) -> Iterator[int]:
        """Delete the rows, a batch per transaction; yields each batch's size.

        Keyset over the primary key: each batch starts where the last one ended, so no
        batch re-reads the rows already passed (live ones, or dead ones not yet vacuumed),
        and memory stays one batch of ids. PostgreSQL picks and deletes a batch in one
        statement; SQLite plans that subquery badly, so there the ids are picked first
        (bench/purge.py measures both)."""
        model, last_id = self.model, 0
        one_statement = db.engine.dialect.name == "postgresql"
        options = {"synchronize_session": False}
        while True:
            batch = select(model.id).where(model.id > last_id, self.condition).order_by(model.id).limit(batch_size)
            if one_statement:
                ids = db.session.scalars(delete(model).where(model.id.in_(batch)).returning(model.id),
                                         execution_options=options).all()
            else:
                ids = db.session.scalars(batch).all()
                if ids:
                    db.session.execute(delete(model).where(model.id.in_(ids)), execution_options=options)
            db.session.commit()  # short transactions: no lock held for long
            if not ids:
                return
            last_id = max(ids)
            yield len(ids)


def purges(revoked_days: int, now: datetime | None = None) -> list[Purge]:
    """What may go: tokens that expired with no refresh token still able to renew them, or
    were revoked `revoked_days` ago (kept until then: they detect refresh-token replay);
    authorization codes expired or used that long ago."""
    now = now or clock.now()
    revoked_before = now - timedelta(days=revoked_days)
    tokens_done = or_(
        (AccessToken.expires_at <= now)
        & or_(AccessToken.refresh_token_hash.is_(None), AccessToken.refresh_expires_at <= now,
              AccessToken.refresh_revoked_at <= revoked_before),
        AccessToken.revoked_at <= revoked_before,
    )
    codes_done = or_(AuthorizationCode.expires_at <= revoked_before, AuthorizationCode.used_at <= revoked_before)
    return [Purge("tokens", AccessToken, tokens_done), Purge("codes", AuthorizationCode, codes_done)]
