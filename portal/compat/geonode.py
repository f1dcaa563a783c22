"""GeoNode's endpoints, for GeoServer's GeoNode OAuth2 module and its GeoNode REST role
service, in GeoNode's request and response shapes (README: GeoNode and GeoServer).

- `/o/authorize`, `/o/token`: Tessera's own endpoints under django-oauth-toolkit's paths.
- `/api/o/v4/tokeninfo`: GeoServer checks a token (form field `token`; it also sends its
  client credentials as HTTP Basic, which GeoNode ignores and so does this).
- `/api/o/v4/userinfo`: the bearer token's user.
- `/api/roles`, `/api/adminRole`, `/api/users[/<username or email>]`: the role service,
  answered only to the addresses in AUTH_IP_WHITELIST (GeoNode's setting; portal.addresses).

A user's groups are the name of the user's tenant, and `admin` for administrators (who
belong to no tenant). A tenant named `admin` is never a group: its users would otherwise
become GeoServer administrators.
"""

from functools import wraps

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from portal import addresses, clock, metrics, throttle, tokens
from portal.extensions import csrf, db
from portal.models import Tenant, User
from portal.oauth import views as oauth_views
from portal.tokens.bearer import BearerRefused, bearer_of_request

# Not the whole blueprint CSRF-exempt: /o/authorize is the consent form's view too.
bp = Blueprint("geonode", __name__)

ADMIN_GROUP = "admin"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# django-oauth-toolkit's paths for Tessera's endpoints (GeoNode's OAUTH2_* settings point there).
bp.add_url_rule("/o/authorize", "authorize", oauth_views.authorize, methods=["GET", "POST"])
bp.add_url_rule("/o/token", "token", oauth_views.token, methods=["POST"])


def register(app) -> None:
    app.register_blueprint(bp)


def error(status: int, message: str, headers: dict | None = None):
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def too_many_failures():
    return error(429, "too_many_requests", {"Retry-After": str(throttle.RETRY_AFTER_SECONDS)})


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


@bp.route("/api/o/v4/tokeninfo", methods=["GET", "POST"])
@csrf.exempt
def tokeninfo():
    """GeoServer's check of a token: who it is for, and for how many milliseconds more."""
    values = request.form.getlist("token") if request.method == "POST" else []
    if len(values) != 1 or not values[0]:
        return error(403, "invalid_request")
    if throttle.blocked(throttle.BEARER):
        metrics.throttled("bearer")
        return too_many_failures()
    value = values[0]
    try:
        token = tokens.authenticate(value)
    except tokens.InvalidTokenError as refused:
        throttle.count_failure(throttle.BEARER)
        metrics.authentication_failed("bearer")
        return error(403, refused.reason)
    if token.user is None:
        return error(403, "token has no user")
    response = jsonify({
        "client_id": token.client_id,
        "user_id": token.user.sub,
        "username": token.user.username,
        "issued_to": token.user.username,
        "access_token": value,
        "email": token.user.email,
        "verified_email": "true",
        "access_type": "online",
        "expires_in": (token.expires_at - clock.now()).total_seconds() * 1000,
    })
    response.headers.update(NO_STORE)
    response.headers["Authorization"] = f"Bearer {value}"
    return response


def not_authenticated(status: int, message: str, challenge: str | None):
    """GeoNode's error body, with RFC 6750's WWW-Authenticate."""
    response = jsonify({"success": False, "status": "error", "errors": {"user": [message]}})
    response.status_code = status
    response.headers.update(NO_STORE)
    if status == 429:
        response.headers["Retry-After"] = str(throttle.RETRY_AFTER_SECONDS)
    elif challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    return response


@bp.route("/api/o/v4/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """The bearer token's user, as GeoNode describes it (name split into given and family)."""
    try:
        token = bearer_of_request(request)
    except BearerRefused as refused:
        realm = 'Bearer realm="tessera"'
        return not_authenticated(refused.status, refused.description,
                                 f'{realm}, error="{refused.error}"' if refused.error else realm)
    if token.user is None:
        return not_authenticated(401, "This token has no user.", 'Bearer realm="tessera", error="invalid_token"')
    user = db.session.get(User, token.user.id)
    name = user.name or ""
    given_name, _, family_name = name.partition(" ")
    response = jsonify({
        "sub": user.sub,
        "name": name,
        "given_name": given_name,
        "family_name": family_name,
        "email": user.email or "",
        "preferred_username": user.username,
        "groups": groups_of(user),
    })
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
