"""Pydantic models of the JSON API. The same classes validate requests, shape responses
and generate /api/v1/openapi.json (through spectree), so the description cannot drift."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, StrictInt, StrictStr, field_validator

from portal.domain import tenants
from portal.db.sql import MAX_ID
from portal.models.token import STATES
from portal.tokens import ACTIONS, ANY
from portal.tokens.permissions import MAX_ENTRIES
from portal.tokens.values import CUSTOM_VALUE_PATTERN
from portal.tokens.core import MAX_EXPIRES_IN
from portal.domain.users import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_MAX_LENGTH, USERNAME_RULE

MAX_LIMIT = 100

Action = Literal[ACTIONS + (ANY,)]  # type: ignore[valid-type]


def utc(moment: datetime | None) -> datetime | None:
    """Database datetimes are naive UTC; the API shows them with an explicit Z."""
    return moment.replace(tzinfo=UTC) if moment is not None else None


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------

class ErrorBody(BaseModel):
    """Every error: a stable `error` code and a human `message`."""

    error: str = Field(description="stable machine-readable code, e.g. invalid_token, insufficient_scope")
    message: str = Field(description="what went wrong, for people")
    field: str | None = Field(None, description="the request field at fault (400/422)")
    missing: str | None = Field(None, description="the permission the token lacks (403), e.g. MANAGE_PROFILES on site2")
    errors: list[dict] | None = Field(None, description="every validation problem (422)")


# --- paging -------------------------------------------------------------------------------

class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}")
    after: int = Field(0, ge=0, le=MAX_ID, description="the `next_after` of the previous page (keyset paging)")


class TokenListQuery(PageQuery):
    application: str | None = Field(None, max_length=100, description="only tokens of this application (name)")


class ProfileListQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="search in username, email and name")


# --- access tokens ------------------------------------------------------------------------

class TenantPermissionIn(Body):
    tenant: StrictStr = Field(min_length=1, max_length=64, description="a tenant name, or * for any tenant")
    actions: list[Action] = Field(min_length=1, max_length=len(ACTIONS) + 1,
                                  description="allowed actions, or * for every action")


class TenantPermissionOut(BaseModel):
    tenant: str
    actions: list[str]


class TokenCreate(Body):
    application: StrictStr = Field(min_length=1, max_length=100, description="the application's name")
    user: StrictStr | None = Field(None, min_length=1, max_length=150, description="a username")
    value: StrictStr | None = Field(None, pattern=CUSTOM_VALUE_PATTERN,
                                    description="a custom value (migrating existing tokens); generated when absent")
    master: StrictBool = False
    scope: StrictStr = Field("", max_length=1000)
    expires_at: datetime | None = Field(None, description="ISO 8601; UTC when no offset is given; "
                                        "at most ten years from now")
    expires_in: StrictInt | None = Field(None, ge=1, le=MAX_EXPIRES_IN, description="seconds from now")
    tenant_permissions: list[TenantPermissionIn] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @field_validator("expires_at")
    @classmethod
    def naive_utc(cls, value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("expires_at is out of range") from None


class TokenOut(BaseModel):
    id: int
    hint: str = Field(description="a short non-secret prefix of the value")
    application: str
    user: str | None
    source: str
    master: bool
    scope: str
    tenant_permissions: list[TenantPermissionOut]
    status: Literal[STATES] = Field(  # type: ignore[valid-type]
        description="active; expired; revoked; or inactive: its user is deactivated")
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token) -> "TokenOut":
        return cls(
            id=token.id, hint=token.hint, application=token.application.name,
            user=token.user.username if token.user else None, source=token.source, master=token.master,
            scope=token.scope, tenant_permissions=token.tenant_permissions, status=token.status,
            created_at=utc(token.created_at), expires_at=utc(token.expires_at),
            last_used_at=utc(token.last_used_at),
        )


class TokenCreated(TokenOut):
    value: str = Field(description="the token value: shown in this response only")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


# --- tenants ------------------------------------------------------------------------------

class TenantCreate(Body):
    name: Annotated[StrictStr, Field(pattern=tenants.NAME_PATTERN, description="a slug; never changes")]
    label: StrictStr | None = Field(None, max_length=tenants.LABEL_MAX_LENGTH)


class TenantUpdate(Body):
    label: StrictStr = Field(max_length=tenants.LABEL_MAX_LENGTH)


class TenantOut(BaseModel):
    name: str
    label: str
    created_at: datetime

    @classmethod
    def of(cls, tenant) -> "TenantOut":
        return cls(name=tenant.name, label=tenant.label, created_at=utc(tenant.created_at))


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int = Field(description="how many tenants there are")
    next_after: int | None


# --- profiles -----------------------------------------------------------------------------

class ProfileCreate(Body):
    username: StrictStr = Field(min_length=1, max_length=USERNAME_MAX_LENGTH,
                                description=f"{USERNAME_RULE}, after NFKC normalisation; unique whatever "
                                            "the letter case")
    email: EmailStr | None = None
    name: StrictStr = Field("", max_length=200)
    password: StrictStr | None = Field(None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH,
                                       description="none for accounts that log in elsewhere")
    active: StrictBool = True


class ProfileUpdate(Body):
    email: EmailStr | None = None
    name: StrictStr | None = Field(None, max_length=200)
    password: StrictStr | None = Field(None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH,
                                       description="a new password; send null to remove it")
    active: StrictBool | None = None


class ProfileOut(BaseModel):
    id: int
    sub: str
    username: str
    email: str | None
    name: str
    tenant: str
    active: bool
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user) -> "ProfileOut":
        return cls(
            id=user.id, sub=user.sub, username=user.username, email=user.email, name=user.name,
            tenant=user.tenant.name, active=user.active, has_password=bool(user.password_hash),
            created_at=utc(user.created_at), last_login_at=utc(user.last_login_at),
        )


class ProfilePage(BaseModel):
    items: list[ProfileOut]
    total: int = Field(description="how many profiles match")
    next_after: int | None


# --- sessions -----------------------------------------------------------------------------

class SessionOut(BaseModel):
    id: int = Field(description="the session token's id")
    hint: str
    username: str
    profile_id: int
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token) -> "SessionOut":
        return cls(id=token.id, hint=token.hint, username=token.user.username, profile_id=token.user_id,
                   created_at=utc(token.created_at), expires_at=utc(token.expires_at),
                   last_used_at=utc(token.last_used_at))


class SessionPage(BaseModel):
    items: list[SessionOut]
    next_after: int | None


class SessionsEnded(BaseModel):
    ended: int = Field(description="how many of the tenant's users were logged out: every profile of the "
                                   "tenant, whose session tokens are deleted and whose browser sessions end, "
                                   "with or without SESSION_EXPIRED_CONTROL_ENABLED")
