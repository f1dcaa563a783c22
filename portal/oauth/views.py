"""Routes of the authorization server (no trailing slashes: a middleware maps `/token/`)."""

from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.auth import sessions
from portal.domain import audit, clock, factors
from portal.extensions import csrf, db
from portal.models import Consent
from portal.oauth import bp
from portal.oauth.grants import quotable
from portal.domain.signing import ensure_current_key, issuer, jwks_cache_seconds, published_keys
from portal.oauth.records import has_scope, user_claims
from portal.oauth.server import server
from portal.web.security import NO_STORE, basic_credentials
from portal.tokens.bearer import BearerRefused, bearer_of_request

SCOPE_WORDS = {
    "openid": "Confirm who you are (an identifier for your account)",
    "profile": "Your name, username and when your profile last changed",
    "email": "Your email address",
    # GeoNode's scopes (GeoServer asks for these); what they release: records.SCOPE_CLAIMS.
    "read": "Read on your behalf (so it learns your username)",
    "write": "Make changes on your behalf (so it learns your username)",
    "groups": "The groups you belong to",
}


# --- /authorize ---------------------------------------------------------------------------

def error_page(error: OAuth2Error):
    """Our own page, never a redirect: the client or its redirect URI is not trusted."""
    response = current_app.make_response((
        render_template("oauth/error.html", error=error.error, description=error.description or ""), 400))
    response.headers.update(NO_STORE)
    return response


def authorize_error(error: OAuth2Error):
    if not getattr(error, "redirect_uri", None):
        return error_page(error)
    response = server.handle_error_response(None, error)
    # RFC 9207 §2: `iss` on error responses too; Authlib runs this hook (the issuer
    # extension's) only on the responses create_authorization_response makes.
    server.execute_hook("after_create_authorization_response", response)
    return response


def consent_post() -> bool:
    """The consent form's POST (it sends `decision`); any other POST is an authorization
    request sent by POST (OIDC Core §3.1.2.1), read as a GET is."""
    return request.method == "POST" and "decision" in request.form


def as_get():
    """The same request by GET. A request posted from the client's page (another site)
    comes without the SameSite=Lax session cookie; the browser sends it on this GET."""
    return redirect(request.path + "?" + urlencode(list(request.form.items(multi=True))), code=303)


def request_parameters():
    """The authorization request as sent: the query string, or the form body of a request
    sent by POST (the consent form's POST carries the request in its action's query)."""
    return request.form if request.method == "POST" and not consent_post() else request.args


def args_without_login_prompt() -> list[tuple[str, str]]:
    """The request's parameters, with `login` taken out of `prompt` (so login does not loop)."""
    pairs = []
    for key, value in request_parameters().items(multi=True):
        if key == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
            if not value:
                continue
        pairs.append((key, value))
    return pairs


def back_here() -> str:
    return request.path + ("?" + urlencode(args_without_login_prompt()) if request_parameters() else "")


def to_login(again: bool = False):
    """The login page, then back here; `again`: ask a logged-in user for the password anew."""
    return redirect(url_for("auth.login", next=back_here(), **({"again": 1} if again else {})))


def max_age_passed(user) -> bool:
    raw = request_parameters().get("max_age")
    if raw is None or not raw.strip().isdigit():
        return False
    if user.last_login_at is None:
        return True
    return (clock.now() - user.last_login_at).total_seconds() > int(raw)


ACR_VALUES = ["pwd", "mfa"]  # a password alone; a password and a second factor (or a verified passkey)


def needs_second_factor() -> bool:
    """The client asked for `mfa` (acr_values, in its order of preference) and this session
    has only `pwd`: a client that accepts `pwd` too gets what the session has."""
    asked = [value for value in (request_parameters().get("acr_values") or "").split() if value in ACR_VALUES]
    return bool(asked) and "pwd" not in asked and sessions.acr() != "mfa"


def to_second_factor(user):
    """Show a second factor now (or set one up first), then come back here."""
    if factors.has_factor(user):
        return redirect(url_for("auth.confirm_factor", next=back_here()))
    return redirect(url_for("auth.security", next=back_here(), asked="mfa"))


def stored_consent(user, client) -> Consent | None:
    return db.session.scalar(
        select(Consent).where(Consent.user_id == user.id, Consent.application_id == client.id))


def granted_scopes(consent: Consent, resource: str | None) -> set[str] | None:
    """The scopes the consent grants for tokens meant for `resource` (None: tokens that
    name no resource); None when it grants nothing for that resource."""
    if resource is None:
        return set(scope_to_list(consent.scope) or [])
    granted = (consent.resource_scopes or {}).get(resource)
    return None if granted is None else set(scope_to_list(granted) or [])


def consent_covers(consent: Consent | None, scope: str, resources: list[str]) -> bool:
    """Whether the user granted these scopes for each of these resources (RFC 8707; none:
    for tokens that name no resource)."""
    if consent is None:
        return False
    asked = set(scope_to_list(scope) or [])
    return all((granted := granted_scopes(consent, resource)) is not None and asked <= granted
               for resource in resources or [None])


def merged(granted: str | None, scope: str) -> str:
    return " ".join(dict.fromkeys((scope_to_list(granted or "") or []) + (scope_to_list(scope) or [])))


def remember_consent(user, client, scope: str, resources: list[str]) -> None:
    """Add these scopes to what the user granted the client, for each resource asked for
    (or for tokens that name none)."""
    consent = stored_consent(user, client)
    if consent is None:
        consent = Consent(user_id=user.id, application_id=client.id, scope="", resource_scopes={})
        db.session.add(consent)
    if resources:
        by_resource = dict(consent.resource_scopes or {})  # a new dict: the JSON column sees the change
        for resource in resources:
            by_resource[resource] = merged(by_resource.get(resource), scope)
        consent.resource_scopes = by_resource
    else:
        consent.scope = merged(consent.scope, scope)
    consent.granted_at = clock.now()
    audit.record("consent.granted", actor=user.username, target=client, scope=scope,
                 **({"resources": resources} if resources else {}))
    db.session.commit()


def unquotable_parameter() -> str | None:
    """The first parameter Authlib quotes in an error description (RFC 6749 §4.1.2.1 allows
    only printable ASCII without `"` and `\\` there) that holds another character: Authlib
    would raise ValueError building that error."""
    for name in ("redirect_uri", "response_type"):
        value = request.values.get(name)
        if value and not quotable(value):
            return name
    return None


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # an authorization request may come by POST from the client's page; the consent form is checked below
def authorize():
    if consent_post():
        csrf.protect()
    user = current_user._get_current_object() if current_user.is_authenticated else None
    if user is None and request.method == "POST" and not consent_post():
        return as_get()
    if name := unquotable_parameter():
        return error_page(InvalidRequestError(f"The {name} parameter holds characters it cannot have."))
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return authorize_error(error)
    client, redirect_uri = grant.request.client, grant.redirect_uri
    scope = grant.request.scope or ""
    resources = getattr(grant.request, "audience", [])
    parameters = request_parameters()
    prompts = set((parameters.get("prompt") or "").split())
    try:
        if "request" in parameters:
            raise RequestNotSupportedError(redirect_uri=redirect_uri)
        if "request_uri" in parameters:
            raise RequestURINotSupportedError(redirect_uri=redirect_uri)
        if "none" in prompts and len(prompts) > 1:
            raise InvalidRequestError("prompt=none cannot be combined with other values",
                                      redirect_uri=redirect_uri)
        if not consent_post():
            if user is None or "login" in prompts or max_age_passed(user):
                if "none" in prompts:
                    raise LoginRequiredError(redirect_uri=redirect_uri)
                # Re-authentication keeps the current session until the password is given
                # (a cross-site link with prompt=login must not log anyone out).
                return to_login(again=user is not None)
            if needs_second_factor():
                if "none" in prompts:
                    raise InteractionRequiredError(redirect_uri=redirect_uri)
                return to_second_factor(user)
            consent = stored_consent(user, client)
            if consent_covers(consent, scope, resources) and "consent" not in prompts:
                return server.create_authorization_response(grant=grant, grant_user=user)
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=redirect_uri)
            return render_consent(client, scope, resources)
        # The consent form (its CSRF token checked above).
        if user is None:
            return to_login()
        if needs_second_factor():
            return to_second_factor(user)
        if request.form.get("decision") == "allow":
            remember_consent(user, client, scope, resources)
            return server.create_authorization_response(grant=grant, grant_user=user)
        audit.record("consent.denied", actor=user.username, target=client, scope=scope,
                     **({"resources": resources} if resources else {}))
        db.session.commit()
        return server.create_authorization_response(grant=grant, grant_user=None)
    except OAuth2Error as error:
        error.state = request.values.get("state")
        return authorize_error(error)


def render_consent(client, scope: str, resources: list[str]):
    """The consent page: the scopes asked for, and the resource servers (RFC 8707) the
    tokens would be meant for."""
    scopes = [(name, SCOPE_WORDS.get(name, name)) for name in scope_to_list(scope) or []]
    response = current_app.make_response(render_template(
        "oauth/consent.html", client=client, scopes=scopes, resources=resources, action=back_here()))
    response.headers.update(NO_STORE)
    return response


# --- token endpoints ----------------------------------------------------------------------

def request_error() -> InvalidRequestError | None:
    """What makes a request to /token, /revoke or /introspect malformed before Authlib reads it."""
    credentials = basic_credentials()
    if credentials is not None:
        try:
            credentials.decode("utf-8")
        except UnicodeDecodeError:  # Authlib would raise it (a 500)
            return InvalidRequestError("The Basic credentials are not UTF-8 (RFC 6749, 2.3.1: percent-encode "
                                       "other characters).")
    return repeated_parameter_error()


def repeated_parameter_error() -> InvalidRequestError | None:
    """RFC 6749 §3.2: parameters MUST NOT be included more than once (else a good and a
    bad client_secret, first one wins, could authenticate)."""
    for parameters in (request.args, request.form) if request.query_string else (request.form,):
        # `resource` alone may repeat: one per resource server the token is for (RFC 8707 §2).
        if any(len(values) > 1 for name, values in parameters.lists() if name != "resource"):
            name = next(name for name, values in parameters.lists() if len(values) > 1 and name != "resource")
            named = f"The {name} parameter" if quotable(name) else "A parameter"
            return InvalidRequestError(f"{named} was sent more than once.")
    return None


@bp.route("/token", methods=["POST"])
@csrf.exempt
def token():
    if error := request_error():
        return server.handle_error_response(None, error)
    ensure_current_key()
    return server.create_token_response()


@bp.route("/revoke", methods=["POST"])
@csrf.exempt
def revoke():
    if error := request_error():
        return server.handle_error_response(None, error)
    return server.create_endpoint_response("revocation")


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    if error := request_error():
        return server.handle_error_response(None, error)
    return server.create_endpoint_response("introspection")


# --- userinfo -----------------------------------------------------------------------------

def bearer_error(refused: BearerRefused):
    """RFC 6750 §3: the error in the body, with the refusal's headers."""
    response = jsonify({"error": refused.error or "missing_token", "error_description": refused.description})
    response.status_code = refused.status
    response.headers.update(NO_STORE)
    response.headers.update(refused.headers)
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    try:
        token = bearer_of_request(request)
    except BearerRefused as refused:
        return bearer_error(refused)
    if token.user is None or not has_scope(token.scope, "openid"):
        return bearer_error(BearerRefused(403, "insufficient_scope", "The token was not granted the openid scope."))
    response = jsonify(dict(user_claims(token.user, token.scope)))
    response.headers.update(NO_STORE)
    return response


# --- keys and metadata --------------------------------------------------------------------

@bp.route("/jwks")
def jwks():
    response = jsonify(published_keys().as_dict(private=False))
    response.headers["Cache-Control"] = f"public, max-age={jwks_cache_seconds()}"
    return response


def metadata() -> dict:
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "userinfo_endpoint": base + "/userinfo",
        "jwks_uri": base + "/jwks",
        "revocation_endpoint": base + "/revoke",
        "introspection_endpoint": base + "/introspect",
        "end_session_endpoint": base + "/end_session",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "name",
                             "preferred_username", "updated_at", "email", "email_verified"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ACR_VALUES,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


@bp.route("/.well-known/openid-configuration")
def openid_configuration():
    return jsonify(metadata())


@bp.route("/.well-known/oauth-authorization-server")
def oauth_authorization_server():
    return jsonify(metadata())
