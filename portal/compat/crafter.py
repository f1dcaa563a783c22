"""Crafter Profile's v1 access-token API, for Crafter's clients (docs/geonode-crafter.md: Crafter clients).

The caller's token comes as `accessTokenId` (the bearer door, portal.tokens.bearer); the
answers and errors are Crafter's JSON (`{"errorCode", "message"}`); the rules are the
JSON API's, from the token core (portal.tokens.master): only master tokens manage tokens,
and a master token reaches only the tokens it may see, and grants only what it holds.

`<id>` is a token's value, as in Crafter; Tessera keeps only hashes, so it is looked up
by hash, and the list (`all`) cannot give values back: its `id`s are null. As in Crafter,
reading an unknown id answers `null` and deleting one changes nothing. Only tokens people
made (admin, API, CLI) are Crafter access tokens: OAuth grants' and login sessions' are
not listed, read or deleted here, nor are revoked ones. The value in the path never
reaches a log (portal.web.logging.redact).
"""

from datetime import datetime, timedelta

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from portal.domain import audit
from portal import tokens
from portal.extensions import csrf, db
from portal.models import AccessToken
from portal.models.token import EXPIRED, INACTIVE_USER, WHY_NOT_LIVE
from portal.tokens import master
from portal.tokens import permissions as perms
from portal.tokens.bearer import BearerRefused, bearer_of_request
from portal.tokens.core import PERSON_SOURCES
from portal.web.security import NO_STORE

bp = Blueprint("crafter", __name__, url_prefix="/crafter-profile")
csrf.exempt(bp)

TOKENS = "/api/1/access_token"
EPOCH = datetime(1970, 1, 1)
MILLISECOND = timedelta(milliseconds=1)


class CrafterError(Exception):
    """An error as Crafter Profile answers it: an HTTP status, an error code, a message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@bp.errorhandler(CrafterError)
def crafter_error(error: CrafterError):
    response = jsonify({"errorCode": error.code, "message": error.message})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Werkzeug's and Tessera's own refusals (a NUL byte, a body too large) in Crafter's shape."""
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return crafter_error(CrafterError(error.code or 500, "OTHER", error.description or error.name, headers))


def refused(refusal: BearerRefused) -> CrafterError:
    """The bearer door's refusal in Crafter's words: its codes for a missing, unknown or
    expired accessTokenId (Crafter has no revocation: a revoked token is no such token)."""
    if refusal.status in (400, 429):
        return CrafterError(refusal.status, "OTHER", refusal.description, refusal.headers)
    if refusal.error is None:
        return CrafterError(401, "MISSING_ACCESS_TOKEN_ID_PARAM", "The accessTokenId parameter is required.")
    if refusal.reason == WHY_NOT_LIVE[EXPIRED]:
        return CrafterError(403, "EXPIRED_ACCESS_TOKEN", "The access token has expired.")
    if refusal.reason == WHY_NOT_LIVE[INACTIVE_USER]:
        return CrafterError(403, "DISABLED_PROFILE", "The access token's user is deactivated.")
    return CrafterError(403, "NO_SUCH_ACCESS_TOKEN_ID", "No access token with that accessTokenId.")


def master_caller(action: str):
    """The calling token, which must be a live master token."""
    try:
        caller = bearer_of_request(request)
    except BearerRefused as refusal:
        raise refused(refusal) from None
    if not caller.master:
        raise CrafterError(403, "ACTION_DENIED", f"Action {action} denied: only a master token manages access tokens.")
    return caller


def epoch_millis(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


def crafter_token(token: AccessToken, value: str | None) -> dict:
    return {
        "id": value,
        "application": token.application.name,
        "master": token.master,
        "tenantPermissions": [{"tenant": p.tenant, "allowedActions": p.action_list} for p in token.permissions],
        "expiresOn": epoch_millis(token.expires_at),
    }


def crafter_tokens(caller) -> list:
    """SQL: the Crafter access tokens this master token may see and delete."""
    return [*master.visible_to(caller), AccessToken.source.in_(PERSON_SOURCES), AccessToken.revoked_at.is_(None)]


def token_named(caller, value: str, action: str) -> AccessToken | None:
    """The Crafter access token whose value is `value` (None: there is none); a token beyond
    the caller's reach is refused (the caller holds its value, so this tells it nothing)."""
    token = tokens.find_by_value(value)
    if token is None or token.revoked_at is not None or token.source not in PERSON_SOURCES:
        return None
    if db.session.scalar(select(AccessToken.id).where(AccessToken.id == token.id, *crafter_tokens(caller))) is None:
        raise CrafterError(403, "ACTION_DENIED", f"Action {action} denied: that token holds more than this one.")
    return token


def bad_request(message: str) -> CrafterError:
    return CrafterError(400, "OTHER", message)


def crafter_field(field: str) -> str:
    """A token-core field name as Crafter's JSON names it."""
    return (field.replace("tenant_permissions", "tenantPermissions").replace(".actions", ".allowedActions")
            .replace("expires_at", "expiresOn"))


def request_body() -> dict:
    if not request.is_json:
        raise CrafterError(415, "OTHER", "Send the access token as JSON (Content-Type: application/json).")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes
        body = None
    if body is None:
        raise bad_request("The body is not valid JSON.")
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object (an access token).")
    return body


def requested_permissions(entries) -> list[dict]:
    """Crafter's `tenantPermissions` as the token core takes them (a missing tenant is `*`,
    as in Crafter); the core checks the entries."""
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise bad_request("tenantPermissions must be a list of {\"tenant\", \"allowedActions\"} objects.")
    return [{"tenant": entry.get("tenant", perms.ANY), "actions": entry.get("allowedActions")} for entry in entries]


def requested_expiry(expires_on) -> datetime | None:
    """`expiresOn` in milliseconds since the epoch (None: Tessera's default lifetime)."""
    if expires_on is None:
        return None
    if isinstance(expires_on, bool) or not isinstance(expires_on, int):
        raise bad_request("expiresOn must be a whole number of milliseconds since 1970-01-01 UTC.")
    try:
        return EPOCH + expires_on * MILLISECOND
    except OverflowError:
        raise bad_request("expiresOn is out of range: the expiry may be at most ten years from now.") from None


@bp.post(f"{TOKENS}/create")
def create_token():
    """Create an access token; the answer is the token with its value as `id` (shown once)."""
    caller = master_caller("CREATE_TOKEN")
    body = request_body()
    name = body.get("application")
    master_flag = False if body.get("master") is None else body["master"]  # null is false, as Crafter reads it
    if not isinstance(name, str) or not name:
        raise bad_request("application must name an application.")
    if not isinstance(master_flag, bool):
        raise bad_request("master must be true or false.")
    requested = requested_permissions(body.get("tenantPermissions"))
    expires_at = requested_expiry(body.get("expiresOn"))
    try:
        issued = master.create(caller, application=name, master=master_flag, expires_at=expires_at,
                               tenant_permissions=requested)
    except tokens.NotPermittedError as error:
        raise CrafterError(403, "ACTION_DENIED", f"Action CREATE_TOKEN denied: {error.message}.") from None
    except tokens.UnknownTenantError as error:
        raise CrafterError(400, "NO_SUCH_TENANT", f"{error.message.capitalize()}.") from None
    except tokens.TokenError as error:
        if error.field == "application":
            raise bad_request(f"Unknown application {name}: register it first (portal create-application).") from None
        raise bad_request(f"{crafter_field(error.field)}: {error.message}.") from None
    return jsonify(crafter_token(issued.token, issued.value)), 200, NO_STORE


@bp.get(f"{TOKENS}/all")
def all_tokens():
    """The access tokens this master token may see (values are not kept: `id` is null)."""
    caller = master_caller("READ_TOKEN")
    found = db.session.scalars(select(AccessToken).where(*crafter_tokens(caller)).order_by(AccessToken.id))
    return jsonify([crafter_token(token, None) for token in found])


@bp.get(f"{TOKENS}/<path:token_id>")
def get_token(token_id: str):
    """The access token whose value is `token_id`, or null."""
    if token_id == "create" or token_id.endswith("/delete"):
        raise wrong_method()
    caller = master_caller("READ_TOKEN")
    token = token_named(caller, token_id, "READ_TOKEN")
    return jsonify(crafter_token(token, token_id) if token else None), 200, NO_STORE


@bp.post(f"{TOKENS}/<path:token_id>/delete")
def delete_token(token_id: str):
    """Delete the access token whose value is `token_id` (an unknown one: nothing to do)."""
    caller = master_caller("DELETE_TOKEN")
    token = token_named(caller, token_id, "DELETE_TOKEN")
    if token is not None:
        tokens.delete(token, actor=audit.token_actor(caller))
    return "", 200


def wrong_method() -> CrafterError:
    return CrafterError(405, "OTHER", "Method not allowed: GET all and <id>, POST create and <id>/delete.")


@bp.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def elsewhere(rest: str):
    """Anything else under /crafter-profile, answered in Crafter's shape."""
    if rest.startswith(TOKENS.lstrip("/") + "/"):
        raise wrong_method()
    raise CrafterError(404, "OTHER", "Tessera serves only Crafter Profile's access-token API "
                                     f"(/crafter-profile{TOKENS}/...).")
