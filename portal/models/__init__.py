"""All models, re-exported so Alembic sees every table."""

from portal.models.application import Application, ClientRecord
from portal.models.audit import AuditEvent
from portal.models.factor import Passkey, RecoveryCode, TotpFactor
from portal.models.oauth import AuthorizationCode, Consent, SigningKey
from portal.models.ratelimit import RateLimitCounter
from portal.models.token import AccessToken, LoginSession, TokenPermission
from portal.models.user import Tenant, User

__all__ = [
    "AccessToken",
    "Application",
    "AuditEvent",
    "AuthorizationCode",
    "ClientRecord",
    "Consent",
    "LoginSession",
    "Passkey",
    "RateLimitCounter",
    "RecoveryCode",
    "SigningKey",
    "Tenant",
    "TokenPermission",
    "TotpFactor",
    "User",
]
