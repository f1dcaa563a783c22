"""Tokens another system issued (Crafter Profile, django-oauth-toolkit), moved here with
their values: the value keeps working and only its hash is stored (`portal import`)."""

import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from portal.domain import clock
from portal.extensions import db
from portal.models import AccessToken, Application, User
from portal.models.token import SOURCES
from portal.tokens import permissions as perms
from portal.tokens.core import check_tenants_exist, insert_token, token_columns
from portal.tokens.errors import TokenError
from portal.tokens.values import check_custom_value, hash_value, hint_for


def value_present(value: str) -> bool:
    """Is a token with this value (as an access or a refresh token) here already?"""
    token_hash = hash_value(value)
    return db.session.scalar(select(AccessToken.id).where(
        (AccessToken.token_hash == token_hash) | (AccessToken.refresh_token_hash == token_hash)).limit(1)) is not None


def check_imported_value(value) -> str:
    """A value as the other system handed it out: the custom-value rule, and not one
    character trimmed (the clients send it exactly)."""
    if not isinstance(value, str) or check_custom_value(value) != value:
        raise TokenError("the value has spaces around it", "value")
    return value


def import_token(*, application: Application, source: str, value: str, expires_at: datetime,
                 user: User | None = None, master: bool = False, scope: str = "",
                 tenant_permissions: Iterable = (), issued_at: datetime | None = None,
                 refresh_value: str | None = None, refresh_expires_at: datetime | None = None) -> int:
    """Store an imported token under its value's hash, keeping its expiry as it was; a
    refresh token comes with the access token it was issued with, and starts a grant family
    of its own (so a reused one ends what it renewed). Unaudited: the import run is the
    record. Committed; returns the new id. TokenError for a value, tenant, action or expiry
    refused; DuplicateValueError if the value is here already."""
    if source not in SOURCES:
        raise TokenError(f"unknown source {source}", "source")
    value = check_imported_value(value)
    if refresh_value is not None:
        check_imported_value(refresh_value)
    now = clock.now()
    if expires_at.tzinfo is not None:
        raise TokenError("expires_at must be a naive UTC datetime", "expires_at")
    refresh_live = refresh_value is not None and refresh_expires_at is not None and refresh_expires_at > now
    if expires_at <= now and not refresh_live:
        raise TokenError("the token has expired", "expires_at")
    permission_list = perms.normalize(tenant_permissions)
    check_tenants_exist(permission_list)
    columns = token_columns(
        application=application, source=source, token_hash=hash_value(value), hint=hint_for(value), user=user,
        master=master, scope=scope, expires_at=expires_at.replace(microsecond=0), created_by=None, now=now,
        **({"refresh_token_hash": hash_value(refresh_value), "refresh_expires_at": refresh_expires_at,
            "grant_id": secrets.token_hex(16)} if refresh_live else {}),
    )
    if issued_at is not None:
        columns["issued_at"] = min(issued_at, now)
    token_id = insert_token(columns, permission_list)
    db.session.commit()
    return token_id
