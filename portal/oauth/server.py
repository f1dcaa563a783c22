"""Authlib's authorization server, wired to the token core (hashed storage everywhere)."""

from dataclasses import fields
from datetime import timedelta
from functools import partial

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import current_app
from flask import request as flask_request
from sqlalchemy import bindparam, select

from portal.domain import clock
from portal.web import throttle
from portal import tokens
from portal.db.connections import hot_read
from portal.models import Application, ClientRecord
from portal.models.application import SECRET_METHODS
from portal.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    StrictPKCE,
    TesseraOpenIDCode,
)
from portal.oauth.records import AuthlibToken
from portal.domain.signing import issuer, request_host_url
from portal.tokens.jwt_format import jwt_format_enabled, sign_access_token, token_audience
from portal.tokens.view import ACCESS, REFRESH

GRANT_SOURCES = ("authorization_code", "refresh_token", "client_credentials")


_applications = Application.__table__
_CLIENT_BY_ID = (select(*(_applications.c[field.name] for field in fields(ClientRecord)))
                 .where(_applications.c.client_id == bindparam("client_id")))


def query_client(client_id) -> ClientRecord | None:
    if not isinstance(client_id, str) or not client_id:
        return None
    row = hot_read(_CLIENT_BY_ID, {"client_id": client_id}).first()
    return ClientRecord(*row) if row else None


def access_token_value(client, grant_type, user, scope, audience=()):
    if jwt_format_enabled():
        return sign_access_token(application=client, user=user, scope=scope or "", master=False, permissions=[],
                                 expires_in=current_app.config["OIDC_TOKEN_EXPIRE"], grant_type=grant_type,
                                 audience=audience)
    return tokens.generate_value()


def refresh_token_value(**kwargs):
    return tokens.generate_value()


def grant_expires_in(client, grant_type):
    return current_app.config["OIDC_TOKEN_EXPIRE"]


def save_token(token, request):
    """Store what Authlib generated as one row of the token table (hashes only).

    The dict is not changed: it is the response body, and the ID token is added later."""
    grant_type = request.payload.grant_type
    source = grant_type if grant_type in GRANT_SOURCES else "authorization_code"
    code = getattr(request, "authorization_code", None)
    old = getattr(request, "refresh_token", None)
    grant_id = parent = auth_time = refresh_expires_at = None
    if token.get("refresh_token"):
        lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_EXPIRE_SECONDS"])
        refresh_expires_at = clock.now() + lifetime
    if code is not None:
        grant_id, auth_time = code.row.grant_id, code.row.auth_time
    elif isinstance(old, AuthlibToken):
        grant_id, auth_time, parent = old.view.grant_id, old.view.auth_time, old.view
        # The refresh lifetime is absolute: it counts from the first code exchange.
        if refresh_expires_at:
            refresh_expires_at = min(refresh_expires_at, old.view.expires_at)
    tokens.store_grant_token(
        client=request.client, grant_type=source, user=request.user, value=token["access_token"],
        scope=token.get("scope", ""), expires_in=token["expires_in"], refresh_value=token.get("refresh_token"),
        refresh_expires_at=refresh_expires_at, grant_id=grant_id, parent=parent, auth_time=auth_time,
        audience=" ".join(getattr(request, "audience", [])) or None,
        granted_resources=" ".join(getattr(request, "granted_resources", [])) or None,
    )


def kinds_to_try(hint) -> tuple[str, str]:
    """The hinted kind first, then the other (RFC 7009 §2.1, RFC 7662 §2.1)."""
    return (REFRESH, ACCESS) if hint == REFRESH else (ACCESS, REFRESH)


def find_token(token_string, hint=None) -> AuthlibToken | None:
    """The token a presented value names, as an access or a refresh token, in any state."""
    for kind in kinds_to_try(hint):
        view = tokens.describe(token_string, kind)
        if view is not None:
            return AuthlibToken(view)
    return None


class TesseraRevocationEndpoint(RevocationEndpoint):
    """RFC 7009; public clients revoke their own tokens with `none`."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: AuthlibToken, request):
        actor = request.client.client_id
        if token.kind == REFRESH and token.view.grant_id:
            # RFC 7009 §2.1: ending a refresh token ends the access tokens of its grant.
            tokens.revoke_grant(token.view.grant_id, actor=actor, reason="refresh token revoked")
        else:
            tokens.revoke(token.view, actor=actor)


class TesseraIntrospectionEndpoint(IntrospectionEndpoint):
    """RFC 7662 for resource servers: confidential clients only, any token of this server."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return not client.is_public

    def introspect_token(self, token: AuthlibToken):
        facts = token.view
        body = {
            "active": True,
            "client_id": facts.client_id,
            "token_type": "Bearer" if token.kind == ACCESS else "refresh_token",
            "scope": facts.scope or "",
            "exp": clock.timestamp(facts.expires_at),
            "iat": clock.timestamp(facts.issued_at),
            "iss": issuer(),
            "aud": token_audience((facts.audience or "").split(), facts.client_id),
            "application": facts.application_name,
            "master": facts.master,
            "tenant_permissions": facts.tenant_permissions,
            "source": facts.source,
        }
        if facts.user is not None:
            body["sub"] = facts.user.sub
            body["username"] = facts.user.username
        return body


class TesseraIssuerParameter(IssuerParameter):
    """RFC 9207: `iss` on authorization responses (mix-up defence)."""

    def get_issuer(self):
        return issuer()


class TesseraOAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request, with `uri` joined from the cached host URL instead of
    werkzeug's `request.url` (an IRI conversion; docs/benchmark.md). Authlib reads it only
    for its https check. tests/test_library_overrides.py compares it with Authlib's."""

    def __init__(self, request):
        query = request.query_string.decode("latin-1")
        uri = request_host_url() + request.root_path + request.path + (f"?{query}" if query else "")
        OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


def sent_credentials(request) -> tuple[str, str | None]:
    """How a request tried to authenticate its client, and the client id it named."""
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    if basic_id or basic_secret:
        return "client_secret_basic", basic_id
    if request.form.get("client_secret"):
        return "client_secret_post", request.form.get("client_id")
    return "none", request.payload.client_id


def client_auth_problem(client: ClientRecord | None, sent: str, endpoint: str) -> str | None:
    """What was sent and what the client accepts, for a failed client authentication
    (None when the client is unknown: Authlib's own message says so)."""
    if client is None:
        return None
    if client.is_public:
        accepted = ("none",)
    else:
        accepted = client.token_auth_methods if endpoint == "token" else SECRET_METHODS
    if sent not in accepted:
        return (f"The request authenticated with {sent}; client {client.client_id!r} accepts "
                f"{' or '.join(accepted)}.")
    return f"The client secret sent with {sent} is wrong."


class TooManyFailedAuthentications(InvalidClientError):
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(description="Too many failed client authentications from this address: try again in "
                                     f"{retry_after} seconds.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class TesseraAuthorizationServer(AuthorizationServer):
    def generate_token(self, grant_type, client, user=None, scope=None, expires_in=None,
                       include_refresh_token=True, audience=()):
        """Authlib's bearer token, its access token made for `audience` (RFC 8707; a JWT's `aud`)."""
        generator = BearerTokenGenerator(access_token_generator=partial(access_token_value, audience=audience),
                                         refresh_token_generator=refresh_token_value,
                                         expires_generator=grant_expires_in)
        return generator.generate(grant_type, client, user, scope, expires_in, include_refresh_token)

    def create_oauth2_request(self, request):
        return TesseraOAuth2Request(flask_request)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib's check first: a right secret passes without a look at the counters. A
        failure counts against the address and, for a confidential client, its client id at
        that address; past a limit it answers 429 instead of 401 (portal.web.throttle)."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except throttle.Refused as refused:  # an imported slow hash, from an address over its limit
            raise TooManyFailedAuthentications(refused.retry_after) from None
        except InvalidClientError as error:
            sent, client_id = sent_credentials(request)
            client = query_client(client_id)
            error.description = client_auth_problem(client, sent, endpoint) or error.description
            confidential = client is not None and not client.is_public
            try:
                throttle.failed(throttle.CLIENT_SECRET, client_id if confidential else None)
            except throttle.Refused as refused:
                raise TooManyFailedAuthentications(refused.retry_after) from None
            raise


server = TesseraAuthorizationServer()
server.register_grant(AuthorizationCodeGrant, [StrictPKCE(required=True), TesseraOpenIDCode(require_nonce=False)])
server.register_grant(RefreshTokenGrant)
server.register_grant(ClientCredentialsGrant)
server.register_endpoint(TesseraRevocationEndpoint)
server.register_endpoint(TesseraIntrospectionEndpoint)
server.register_extension(TesseraIssuerParameter())


def init_server(app) -> None:
    server.init_app(app, query_client=query_client, save_token=save_token)
