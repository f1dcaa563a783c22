"""RFC 9068 JWT access tokens (ACCESS_TOKEN_FORMAT=jwt), built on Authlib's rfc9068 module.

A JWT access token carries `client_id`, `scope`, `master` and `tenant_permissions`, so an
outside resource server can validate it against /jwks with no call back. It is still a
row of the token table (by hash): Tessera's own endpoints check the row, so a deleted
token stops working here at once, while a signature-only validator elsewhere accepts it
until `exp`. Keep such tokens short-lived.
"""

from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import current_app
from joserfc.jwk import KeySet

from portal.signing import current_key, issuer
from portal.tokens.permissions import Permission


def jwt_format_enabled() -> bool:
    return current_app.config["ACCESS_TOKEN_FORMAT"] == "jwt"


class TesseraJWTGenerator(JWTBearerTokenGenerator):
    """Signs with the current key only (its `kid` is in JWKS); `sub` is the user's stable sub."""

    def __init__(self, *, master: bool = False, permissions: list[Permission] = (), **kwargs):
        super().__init__(issuer(), alg="RS256", **kwargs)
        self.master = master
        self.permissions = list(permissions)

    def get_jwks(self) -> KeySet:
        return KeySet([current_key()])

    def get_extra_claims(self, client, grant_type, user, scope) -> dict:
        return {
            "sub": user.sub if user is not None else client.get_client_id(),
            "master": self.master,
            "tenant_permissions": [p.as_dict() for p in self.permissions],
        }


def sign_access_token(*, application, user, scope: str, master: bool, permissions: list[Permission],
                      expires_in: int, grant_type: str) -> str:
    generator = TesseraJWTGenerator(master=master, permissions=permissions, expires_generator=expires_in)
    return generator.access_token_generator(application, grant_type, user, scope)
