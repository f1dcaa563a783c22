"""Views of our rows in the shapes Authlib asks for, and the OIDC claims of a user."""

from authlib.oauth2.rfc6749 import TokenMixin, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from portal import clock
from portal.models import AccessToken, AuthorizationCode, User
from portal.models.token import EXPIRED, INACTIVE_USER, REVOKED, token_state
from portal.tokens import BearerUser

ACCESS = "access_token"
REFRESH = "refresh_token"


class ExpiringToken(TokenMixin):
    """Authlib's expiry and revocation questions, answered by the one liveness rule
    (models.token.token_state) over the columns of the kind (access or refresh) the
    token is seen as."""

    def expires_at(self):
        raise NotImplementedError

    def state(self) -> str:
        raise NotImplementedError

    def get_expires_in(self) -> int:
        moment = self.expires_at()
        return max(0, int((moment - clock.now()).total_seconds())) if moment else 0

    def is_expired(self) -> bool:
        return self.state() == EXPIRED

    def is_revoked(self) -> bool:
        return self.state() in (REVOKED, INACTIVE_USER)


class TokenRecord(ExpiringToken):
    """An access-token row, seen either as its access token or as its refresh token."""

    def __init__(self, row: AccessToken, kind: str = ACCESS):
        self.row = row
        self.kind = kind

    @property
    def scope(self) -> str:
        return self.row.scope or ""

    def check_client(self, client) -> bool:
        return client is not None and self.row.application_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def expires_at(self):
        return self.row.refresh_expires_at if self.kind == REFRESH else self.row.expires_at

    def state(self) -> str:
        revoked_at = self.row.refresh_revoked_at if self.kind == REFRESH else self.row.revoked_at
        return token_state(revoked_at, self.expires_at(), self.row.user.active if self.row.user else None)

    def get_user(self) -> User | None:
        return self.row.user

    def get_client(self):
        return self.row.application


class DescribedToken(ExpiringToken):
    """What introspection reads of a token (the rows of `tokens.describe`), seen as `kind`:
    the same rule as TokenRecord, over plain columns instead of ORM objects."""

    def __init__(self, rows, kind: str = ACCESS):
        self.facts = rows[0]
        self.kind = kind
        self.tenant_permissions = [{"tenant": row.tenant, "actions": row.actions.split()}
                                   for row in rows if row.tenant is not None]

    def check_client(self, client) -> bool:
        return client is not None and self.facts.application_id == client.id

    def get_scope(self) -> str:
        return self.facts.scope or ""

    def expires_at(self):
        return self.facts.expires_at  # the kind's own: `describe` selected it by kind

    def state(self) -> str:
        return token_state(self.facts.revoked_at, self.facts.expires_at, self.facts.user_active)


class CodeRecord(AuthorizationCodeMixin):
    """An authorization-code row; PKCE reads code_challenge(_method) from it."""

    def __init__(self, row: AuthorizationCode):
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri or ""

    def get_scope(self) -> str:
        return self.row.scope or ""

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int | None:
        return clock.timestamp(self.row.auth_time) if self.row.auth_time else None

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


def user_claims(user: User | BearerUser, scope: str) -> UserInfo:
    """The claims the granted scopes allow: openid → sub; profile → name, preferred_username,
    updated_at; email → email, email_verified."""
    info = UserInfo(
        sub=user.sub,
        name=user.name or user.username,
        preferred_username=user.username,
        updated_at=clock.timestamp(user.updated_at) if user.updated_at else None,
        email=user.email,
        # Tessera does not verify addresses; admins type them in.
        email_verified=False,
    )
    claims = info.filter(scope)
    return UserInfo({k: v for k, v in claims.items() if v is not None or k == "sub"})


def has_scope(scope: str, name: str) -> bool:
    return name in scope_to_list(scope or "")
