"""Views of our rows in the shapes Authlib asks for, and the OIDC claims of a user."""

from authlib.oauth2.rfc6749 import TokenMixin, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from portal.domain import clock
from portal.models import AuthorizationCode, User
from portal.models.token import EXPIRED, INACTIVE_USER, REVOKED
from portal.tokens.view import TokenUser, TokenView


class AuthlibToken(TokenMixin):
    """A token (the token core's one read model, seen as its access or its refresh token)
    answering Authlib's questions with the one liveness rule."""

    def __init__(self, view: TokenView):
        self.view = view

    @property
    def kind(self) -> str:
        return self.view.kind

    def check_client(self, client) -> bool:
        return client is not None and self.view.application_id == client.id

    def get_scope(self) -> str:
        return self.view.scope

    def get_expires_in(self) -> int:
        return self.view.expires_in()

    def is_expired(self) -> bool:
        return self.view.state == EXPIRED

    def is_revoked(self) -> bool:
        return self.view.state in (REVOKED, INACTIVE_USER)


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

    def get_acr(self) -> str | None:
        return self.row.acr  # codes issued before second factors have none

    def get_amr(self) -> list[str] | None:
        return self.row.amr.split() if self.row.amr else None


# The claims each scope releases: OpenID Connect's (Core §5.4, Authlib's table), and GeoNode's,
# which GeoServer asks for by default (`read,write,groups`). A `read` or `write` token acts as
# the user, so whoever checks it may learn whom it acts for (GeoServer logs that user in);
# `groups` releases the groups GeoServer turns into roles.
SCOPE_CLAIMS = {
    **UserInfo.SCOPES_CLAIMS_MAPPING,
    "read": ["sub", "preferred_username"],
    "write": ["sub", "preferred_username"],
    "groups": ["groups"],
}


def released_claims(scope: str) -> frozenset[str]:
    """The one rule for what a token may say about its user: /userinfo, ID tokens and
    GeoNode's tokeninfo and userinfo all answer with these claims and no others."""
    return frozenset(claim for name in scope_to_list(scope or "") or [] for claim in SCOPE_CLAIMS.get(name, ()))


def user_claims(user: User | TokenUser, scope: str) -> UserInfo:
    """The user's OIDC claims that the granted scopes release (SCOPE_CLAIMS: openid → sub;
    profile → name, preferred_username, updated_at; email → email, email_verified); a claim
    without a value is left out."""
    claims = {
        "sub": user.sub,
        "name": user.name or user.username,
        "preferred_username": user.username,
        "updated_at": clock.timestamp(user.updated_at) if user.updated_at else None,
        "email": user.email,
        # Tessera does not verify addresses; admins type them in.
        "email_verified": False,
    }
    released = released_claims(scope)
    return UserInfo({k: v for k, v in claims.items() if k in released and v is not None})


def has_scope(scope: str, name: str) -> bool:
    return name in scope_to_list(scope or "")
