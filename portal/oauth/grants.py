"""The grants: authorization code (+ strict PKCE, + OpenID Connect), refresh, client credentials.

Every token-row write goes through portal.tokens; codes are claimed atomically and kept
after use, refresh tokens rotate, and a replay of either ends the whole grant.
"""

from authlib.oauth2.base import OAuth2Error, invalid_error_characters
from authlib.oauth2.rfc6749 import grants, scope_to_list
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import current_app
from joserfc.jwk import KeySet

from portal.auth import sessions
from portal.domain import clock
from portal import tokens
from portal.extensions import db
from portal.models import User
from portal.domain.signing import current_key
from portal.oauth.records import AuthlibToken, CodeRecord, user_claims
from portal.tokens import oauth_store
from portal.tokens.view import REFRESH
from portal.domain.signing import issuer

PUBLIC_AND_CONFIDENTIAL = ["client_secret_basic", "client_secret_post", "none"]


class StrictPKCE(CodeChallenge):
    """S256 only, the method always named; a challenge is required from public clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method")
        client = grant.request.client
        if not challenge and client is not None and client.is_public:
            raise InvalidRequestError("code_challenge is required for public clients (PKCE, S256)",
                                      redirect_uri=redirect_uri)
        if challenge and method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        if method and not challenge:
            raise InvalidRequestError("code_challenge_method without code_challenge", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


def quotable(text: str) -> bool:
    """Whether an error description may quote `text` (RFC 6749 §4.1.2.1: printable ASCII
    without `"` and `\\`; Authlib raises ValueError on anything else)."""
    return not invalid_error_characters(text)


class RegisteredScopes:
    """A client may ask only for scopes it was registered with: anything else is
    `invalid_scope` (RFC 6749 §3.3), never silently dropped or granted."""

    def validate_requested_scope(self):
        client = self.request.client
        allowed = set(scope_to_list(client.scope or "") or [])
        refused = [name for name in scope_to_list(self.request.payload.scope or "") or [] if name not in allowed]
        if refused:
            named = " ".join(refused)
            raise InvalidScopeError(f"This client may not ask for: {named}" if quotable(named)
                                    else "This client may not ask for some of these scopes.")


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: a resource the client may not ask for."""

    error = "invalid_target"


def target_error(says: str, refused: list[str]) -> InvalidTargetError:
    named = " ".join(refused)
    return InvalidTargetError(f"{says} the resource {named}" if quotable(named) else f"{says} some of these resources.")


class ResourceIndicators:
    """RFC 8707: the `resource` parameters of a request (each a resource server's audience
    URI) become the token's audience, its `aud`. A client may ask only for the resources it
    was registered with (`Application.resources`). What the user consented to at /authorize
    bounds the rest (§2.2): a code is exchanged, and its refresh tokens refreshed, for some
    or all of the resources asked for there, never another; anything else is
    `invalid_target`. Without `resource`, the token is for all of them."""

    def resolve_audience(self, granted: list[str] | None = None) -> list[str]:
        """The audience asked for, checked against the client's registration and, at /token,
        against what the grant was given (`granted`; None at /authorize)."""
        registered = self.request.client.resources or []
        asked = list(dict.fromkeys(v for v in self.request.payload.data.getlist("resource") if v))
        audience = asked or list(granted or [])  # a default too: a resource since taken off the client ends
        if refused := [uri for uri in audience if uri not in registered]:
            raise target_error("This client may not ask for", refused)
        if granted is not None and (refused := [uri for uri in audience if uri not in granted]):
            raise target_error("The user did not grant this client", refused)
        self.request.audience = audience
        return audience

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        return self.server.generate_token(
            grant_type=grant_type or self.GRANT_TYPE, client=self.request.client, user=user, scope=scope,
            expires_in=expires_in, include_refresh_token=include_refresh_token,
            audience=getattr(self.request, "audience", []))


class AuthorizationCodeGrant(ResourceIndicators, RegisteredScopes, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AND_CONFIDENTIAL

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        try:
            self.resolve_audience()
        except InvalidTargetError as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def validate_token_request(self):
        super().validate_token_request()
        self.request.granted_resources = (self.request.authorization_code.row.resource or "").split()
        self.resolve_audience(self.request.granted_resources)

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID request; refused with
        # our error page (no redirect), even for a client with a single registered URI.
        if not request.payload.redirect_uri and "openid" in (scope_to_list(request.payload.scope or "") or []):
            raise InvalidRequestError("redirect_uri is required when the scope includes openid")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code, request):
        data = request.payload.data
        oauth_store.save_code(
            code, application=request.client, user=request.user,
            redirect_uri=request.payload.redirect_uri or "", response_type=request.payload.response_type,
            scope=request.scope, nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"), auth_time=request.user.last_login_at,
            resource=" ".join(getattr(request, "audience", [])) or None,
            amr=" ".join(sessions.amr()), acr=sessions.acr(),
        )

    def query_authorization_code(self, code, client):
        row = oauth_store.find_code(code)
        if row is None or row.application_id != client.id:
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice ends every token issued from it.
            tokens.revoke_grant(row.grant_id, actor=client.client_id, reason="authorization code replayed")
            return None
        if row.expires_at <= clock.now():
            return None
        return CodeRecord(row)

    def authenticate_user(self, authorization_code: CodeRecord):
        # Runs after every check (client, redirect_uri, PKCE): claim the code now, and
        # write the token in the same transaction (see oauth_store).
        row = authorization_code.row
        if not oauth_store.claim_code(row):
            db.session.rollback()
            tokens.revoke_grant(row.grant_id, actor=self.request.client.client_id,
                                reason="authorization code replayed")
            raise InvalidGrantError("The code has already been used.")
        user = row.user
        if user is None or not user.active:
            db.session.rollback()
            raise InvalidGrantError("The user of this code is no longer active.")
        return user

    def delete_authorization_code(self, authorization_code):
        """Kept, marked used (claim_code), so a replay can end the grant's tokens."""


class RefreshTokenGrant(ResourceIndicators, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AND_CONFIDENTIAL
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self):
        super().validate_token_request()
        self.request.granted_resources = (self.request.refresh_token.view.granted_resources or "").split()
        self.resolve_audience(self.request.granted_resources)

    def authenticate_refresh_token(self, refresh_token):
        view = tokens.describe(refresh_token, REFRESH)
        if view is None:
            return None
        client = self.request.client
        if view.application_id != client.id:
            return None
        if view.revoked_at is not None:
            # A rotated (or revoked) refresh token presented again: end the family.
            tokens.revoke_grant(view.grant_id, actor=client.client_id, reason="refresh token reused")
            return None
        return AuthlibToken(view) if view.live else None

    def authenticate_user(self, refresh_token: AuthlibToken):
        view = refresh_token.view
        if not oauth_store.claim_refresh(view):
            db.session.rollback()
            tokens.revoke_grant(view.grant_id, actor=self.request.client.client_id, reason="refresh token reused")
            raise InvalidGrantError("The refresh token has already been used.")
        return db.session.get(User, view.user_id) if view.user_id else None

    def revoke_old_credential(self, refresh_token):
        """Done atomically by claim_refresh, in the transaction that saved the new token."""


class ClientCredentialsGrant(ResourceIndicators, RegisteredScopes, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self):
        super().validate_token_request()
        self.resolve_audience()  # no user, no consent: any resource the client is registered for


class TesseraOpenIDCode(OpenIDCode):
    """ID tokens: RS256 with the current key (its kid is in /jwks), iss = discovery issuer."""

    def resolve_client_private_key(self, client):
        return KeySet([current_key()])  # only the active key: joserfc picks at random in a set

    def get_client_claims(self, client):
        return {"iss": issuer(), "aud": [client.get_client_id()]}

    def get_client_algorithm(self, client):
        return "RS256"  # never what client metadata asks (no "none")

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": current_key().kid}

    def exists_nonce(self, nonce, request):
        return oauth_store.nonce_used(request.payload.client_id, nonce)

    def generate_user_info(self, user, scope):
        return user_claims(user, scope)

    def get_compatible_claims(self, request):
        claims = super().get_compatible_claims(request)
        claims["exp"] = claims["iat"] + current_app.config["OIDC_TOKEN_EXPIRE"]
        return claims
