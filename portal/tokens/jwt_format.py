"""RFC 9068 JWT access tokens (ACCESS_TOKEN_FORMAT=jwt), built on Authlib's rfc9068 module.

A JWT access token carries `client_id`, `scope`, `master` and `tenant_permissions`, so an
outside resource server can validate it against /jwks with no call back. It is still a
row of the token table (by hash): Tessera's own endpoints check the row, so a deleted
token stops working here at once, while a signature-only validator elsewhere accepts it
until `exp`. Keep such tokens short-lived.
"""

from datetime import timedelta

from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import current_app
from joserfc.jwk import KeySet

from portal.domain import clock
from portal.domain.signing import current_key, grant_token_lifetime, issuer, keep_published
from portal.tokens.permissions import Permission


def jwt_format_enabled() -> bool:
    return current_app.config["ACCESS_TOKEN_FORMAT"] == "jwt"


class TesseraJWTGenerator(JWTBearerTokenGenerator):
    """Signs with the current key only (its `kid` is in JWKS); `sub` is the user's stable sub;
    `aud` is the resources asked for (RFC 8707), or the client id when none was."""

    def __init__(self, *, master: bool = False, permissions: list[Permission] = (), audience: list[str] = (),
                 **kwargs):
        super().__init__(issuer(), alg="RS256", **kwargs)
        self.master = master
        self.permissions = list(permissions)
        self.audience = list(audience)

    def get_jwks(self) -> KeySet:
        return KeySet([current_key()])

    def get_audiences(self, client, user, scope):
        return token_audience(self.audience, client.get_client_id())

    def get_extra_claims(self, client, grant_type, user, scope) -> dict:
        return {
            "sub": user.sub if user is not None else client.get_client_id(),
            "master": self.master,
            "tenant_permissions": [p.as_dict() for p in self.permissions],
        }


def token_audience(resources: list[str], client_id: str) -> str | list[str]:
    """A token's `aud` (JWT and introspection alike): the resources it was issued for, one
    as a string, several as a list; the client id when none was asked for."""
    if not resources:
        return client_id
    return resources[0] if len(resources) == 1 else list(resources)


def sign_access_token(*, application, user, scope: str, master: bool, permissions: list[Permission],
                      expires_in: int, grant_type: str, audience: list[str] = ()) -> str:
    generator = TesseraJWTGenerator(master=master, permissions=permissions, audience=audience,
                                    expires_generator=expires_in)
    value = generator.access_token_generator(application, grant_type, user, scope)
    if timedelta(seconds=expires_in) > grant_token_lifetime():
        keep_published(current_key().kid, clock.now() + timedelta(seconds=expires_in))
    return value
