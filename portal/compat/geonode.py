"""GeoNode's endpoints, for GeoServer's GeoNode OAuth2 module and its GeoNode REST role
service, in GeoNode's request and response shapes (docs/geonode-crafter.md: GeoNode and GeoServer).

- `/o/authorize`, `/o/token`: Tessera's own endpoints under django-oauth-toolkit's paths.
- `/api/o/v4/tokeninfo`: GeoServer checks a token (form field `token`; it also sends its
  client credentials as HTTP Basic, which GeoNode ignores and so does this).
- `/api/o/v4/userinfo`: the bearer token's user.
- `/api/roles`, `/api/adminRole`, `/api/users[/<username or email>]`: the role service,
  answered only to the addresses in AUTH_IP_WHITELIST (GeoNode's setting; portal.web.addresses).

tokeninfo and userinfo say of the user only what the token's scopes release (the rule of
/userinfo: records.released_claims), and accept only tokens made for an audience in
GEONODE_AUDIENCES (any, when it is empty).

A user's groups are the name of the user's tenant, and `admin` for administrators (who
belong to no tenant). A tenant named `admin` is never a group: its users would otherwise
become GeoServer administrators.
"""

from functools import wraps

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from portal.web import addresses
from portal.domain import clock
from portal.domain.applications import CLIENT_ID_PATTERN, ApplicationError, check_resources
from portal.config import ConfigError
from portal.extensions import csrf, db
from portal.models import Tenant, User
from portal.oauth import views as oauth_views
from portal.oauth.records import released_claims
from portal.tokens.bearer import BearerRefused, authenticate_value, bearer_of_request
from portal.tokens.jwt_format import token_audience
from portal.web.security import NO_STORE

# Not the whole blueprint CSRF-exempt: /o/authorize is the consent form's view too.
bp = Blueprint("geonode", __name__)

ADMIN_GROUP = "admin"
WRONG_AUDIENCE = "token for another audience"
# tokeninfo's fields about the user, each with the claim whose release lets it out.
TOKENINFO_CLAIMS = {"user_id": "sub", "username": "preferred_username", "issued_to": "preferred_username",
                    "email": "email"}

# django-oauth-toolkit's paths for Tessera's endpoints (GeoNode's OAUTH2_* settings point there).
bp.add_url_rule("/o/authorize", "authorize", oauth_views.authorize, methods=["GET", "POST"])
bp.add_url_rule("/o/token", "token", oauth_views.token, methods=["POST"])


def accepted_audiences(setting) -> frozenset[str] | None:
    """GEONODE_AUDIENCES: client ids or resource URIs, separated by commas or spaces; None
    (any audience) when empty."""
    entries = setting.replace(",", " ").split() if isinstance(setting, str) else list(setting or ())
    for entry in entries:
        if CLIENT_ID_PATTERN.match(entry):
            continue
        try:
            check_resources([entry])
        except ApplicationError:
            raise ConfigError(f"GEONODE_AUDIENCES: {entry[:100]!r} is neither a client id nor an absolute URI "
                              "without a fragment") from None
    return frozenset(entries) or None


def register(app) -> None:
    app.extensions["geonode_audiences"] = accepted_audiences(app.config["GEONODE_AUDIENCES"])
    app.register_blueprint(bp)


def error(status: int, message: str, headers: dict | None = None):
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def from_allowed_address(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not addresses.client_allowed("AUTH_IP_WHITELIST"):
            return error(403, "unauthorized_request")
        return view(*args, **kwargs)

    return wrapper


def groups_of(user: User) -> list[str]:
    groups = [user.tenant.name] if user.tenant and user.tenant.name != ADMIN_GROUP else []
    return groups + [ADMIN_GROUP] if user.is_admin else groups


def audiences_of(token) -> list[str]:
    """The token's audience, as introspection and JWTs state it (its RFC 8707 resources, else
    the client it was issued to), always as a list: GeoServer reads `aud` as a collection."""
    audience = token_audience((token.audience or "").split(), token.client_id)
    return audience if isinstance(audience, list) else [audience]


def for_geonode(token) -> bool:
    """Was the token made for an audience GEONODE_AUDIENCES names (or is any accepted)?"""
    accepted = current_app.extensions["geonode_audiences"]
    return accepted is None or not accepted.isdisjoint(audiences_of(token))


def granted(body: dict, scope: str, claim_of: dict[str, str]) -> dict:
    """`body` without the user fields (claim_of: field → claim) whose claim the scopes do not release."""
    released = released_claims(scope)
    return {field: value for field, value in body.items() if field not in claim_of or claim_of[field] in released}


@bp.route("/api/o/v4/tokeninfo", methods=["GET", "POST"])
@csrf.exempt
def tokeninfo():
    """GeoServer's check of a token: who it is for, and for how many milliseconds more."""
    values = request.form.getlist("token") if request.method == "POST" else []
    if len(values) != 1 or not values[0]:
        return error(403, "invalid_request")
    value = values[0]
    try:
        token = authenticate_value(value)
    except BearerRefused as refused:
        if refused.status == 429:
            return error(429, "too_many_requests", refused.headers)
        return error(403, refused.reason)
    if not for_geonode(token):
        return error(403, WRONG_AUDIENCE)  # not a guess: the token is real, so not counted as one
    if token.user is None:
        return error(403, "token has no user")
    # GeoNode's shape, less `verified_email`: GeoNode always said "true"; Tessera verifies no
    # address, GeoServer never reads the field, and absent is "not verified" to every reader.
    response = jsonify(granted({
        "client_id": token.client_id,
        "user_id": token.user.sub,
        "username": token.user.username,
        "issued_to": token.user.username,
        "access_token": value,
        "email": token.user.email or "",
        "access_type": "online",
        "expires_in": (token.expires_at - clock.now()).total_seconds() * 1000,
        "aud": audiences_of(token),
    }, token.scope, TOKENINFO_CLAIMS))
    response.headers.update(NO_STORE)
    response.headers["Authorization"] = f"Bearer {value}"
    return response


def not_authenticated(refused: BearerRefused):
    """GeoNode's error body, with the refusal's headers (RFC 6750's WWW-Authenticate)."""
    response = jsonify({"success": False, "status": "error", "errors": {"user": [refused.description]}})
    response.status_code = refused.status
    response.headers.update(NO_STORE)
    response.headers.update(refused.headers)
    return response


@bp.route("/api/o/v4/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """The bearer token's user, as GeoNode describes it (name split into given and family),
    each field an OIDC claim of the same name, there only if the token's scopes release it."""
    try:
        token = bearer_of_request(request)
    except BearerRefused as refused:
        return not_authenticated(refused)
    if not for_geonode(token):
        return not_authenticated(BearerRefused(401, "invalid_token", "This token was made for another audience."))
    if token.user is None:
        return not_authenticated(BearerRefused(401, "invalid_token", "This token has no user."))
    user = db.session.get(User, token.user.id)
    name = user.name or ""
    given_name, _, family_name = name.partition(" ")
    body = {
        "sub": user.sub,
        "name": name,
        "given_name": given_name,
        "family_name": family_name,
        "email": user.email or "",
        "preferred_username": user.username,
        "groups": groups_of(user),
    }
    response = jsonify(granted(body, token.scope, {field: field for field in body}))
    response.headers.update(NO_STORE)
    return response


@bp.route("/api/roles")
@from_allowed_address
def roles():
    """Every group: each tenant, and `admin`."""
    names = db.session.scalars(select(Tenant.name).where(Tenant.name != ADMIN_GROUP).order_by(Tenant.name))
    return jsonify({"groups": [*names, ADMIN_GROUP]})


@bp.route("/api/adminRole")
@from_allowed_address
def admin_role():
    return jsonify({"adminRole": ADMIN_GROUP})


@bp.route("/api/users")
@bp.route("/api/users/<path:name>")
@from_allowed_address
def users(name: str | None = None):
    """Active users and their groups: all, or those with this username (else this email)."""
    active = select(User).where(User.active.is_(True)).order_by(User.username)
    if name is None:
        found = db.session.scalars(active).all()
    else:
        found = (db.session.scalars(active.where(User.username == name)).all()
                 or db.session.scalars(active.where(User.email == name)).all())
    return jsonify({"users": [{"username": user.username, "groups": groups_of(user)} for user in found]})
