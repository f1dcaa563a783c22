"""OpenID Connect RP-Initiated Logout 1.0: an application sends the browser to
/end_session to end the user's Tessera session, then gets it back at a registered URI."""

from dataclasses import dataclass
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from flask import current_app, redirect, render_template, request, session
from flask_login import current_user, logout_user
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select

from portal.domain import audit
from portal.auth.sessions import AUTHENTICATED_AT_KEY, end_session
from portal.extensions import csrf, db
from portal.models import Application
from portal.oauth import bp
from portal.domain.signing import issuer, published_keys
from portal.web.security import NO_STORE


class LogoutRefused(Exception):
    """A logout request we will not follow (and never redirect for)."""


@dataclass
class LogoutRequest:
    client: Application | None
    post_logout_redirect_uri: str | None
    state: str | None
    hint_sub: str | None = None  # the hint's subject, when a valid hint came
    hint_iat: int | None = None


# What every ID token of this server carries (the code flow: at_hash binds it to the
# access token issued with it); a JWT access token (RFC 9068) has no at_hash.
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "at_hash")


def verified_hint(hint: str) -> dict:
    """The claims of an ID token this server signed (with a key it still publishes) for
    this issuer. An expired one is fine: a logout often comes after the ID token's life.
    Only an ID token is a hint: a JWT access token is signed with the same keys, and any
    resource server holding one must not be able to log its user out."""
    try:
        token = jwt.decode(hint, published_keys(), algorithms=["RS256"])
    except (JoseError, ValueError) as error:
        raise LogoutRefused("The id_token_hint is not an ID token signed by this server.") from error
    claims = token.claims
    if str(token.header.get("typ", "JWT")).lower() != "jwt" or any(name not in claims for name in ID_TOKEN_CLAIMS):
        raise LogoutRefused("The id_token_hint is not an ID token (an access token is no logout hint).")
    if claims.get("iss") != issuer():
        raise LogoutRefused("The id_token_hint was issued by another server.")
    if not isinstance(claims.get("sub"), str):
        raise LogoutRefused("The id_token_hint names no subject.")
    if not registered_clients(audiences(claims)):
        raise LogoutRefused("The id_token_hint is not an ID token: its audience is not an application.")
    return claims


def audiences(claims: dict) -> list:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else list(aud or [])


def registered_clients(client_ids: list) -> bool:
    """Whether there is at least one, and each is the client id of an application."""
    if not client_ids or not all(isinstance(value, str) for value in client_ids):
        return False
    wanted = set(client_ids)
    return set(db.session.scalars(select(Application.client_id).where(Application.client_id.in_(wanted)))) == wanted


def read_logout_request(parameters) -> LogoutRequest:
    """Check the parameters (OIDC RP-Initiated Logout 1.0 §2-3); raise LogoutRefused."""
    hint, client_id = parameters.get("id_token_hint"), parameters.get("client_id")
    claims = verified_hint(hint) if hint else {}
    if claims and client_id and client_id not in audiences(claims):
        raise LogoutRefused("The client_id is not the audience of the id_token_hint.")
    if claims and not client_id and len(audiences(claims)) == 1:
        client_id = audiences(claims)[0]
    client = None
    if client_id:
        client = db.session.scalar(select(Application).where(Application.client_id == client_id))
        if client is None:
            raise LogoutRefused("No application has this client_id.")
    uri = parameters.get("post_logout_redirect_uri")
    if uri:
        if client is None:
            raise LogoutRefused("A post_logout_redirect_uri needs a client_id or an id_token_hint.")
        if uri not in (client.post_logout_redirect_uris or []):
            raise LogoutRefused("The post_logout_redirect_uri is not registered for this application.")
    return LogoutRequest(client, uri or None, parameters.get("state"), claims.get("sub"), claims.get("iat"))


def hint_is_current(logout: LogoutRequest, user) -> bool:
    """The hint names this user and was issued during this session (not a stale token
    from an earlier one, or another user's): then no confirmation is asked."""
    started = session.get(AUTHENTICATED_AT_KEY)
    return (logout.hint_sub == user.sub and isinstance(logout.hint_iat, int)
            and isinstance(started, int) and logout.hint_iat >= started)


def page(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, **context), status))
    response.headers.update(NO_STORE)
    return response


def back_to_client(logout: LogoutRequest):
    """The registered URI with the client's state, or our own "signed out" page."""
    if logout.post_logout_redirect_uri:
        params = {"state": logout.state} if logout.state else {}
        return redirect(add_params_to_uri(logout.post_logout_redirect_uri, params), code=303)
    return page("oauth/logged_out.html", client=logout.client)


@bp.route("/end_session", methods=["GET", "POST"])
@csrf.exempt  # a logout request may come by POST from the client's page; the confirmation form is checked below
def end_session_endpoint():
    """Log out (at once with a current id_token_hint, else after the user confirms), then
    go back to the application's registered post-logout URI."""
    confirmed = request.method == "POST" and "confirm" in request.form
    if confirmed:
        csrf.protect()
    try:
        logout = read_logout_request(request.form if request.method == "POST" else request.args)
    except LogoutRefused as refused:
        return page("oauth/logout_error.html", 400, description=str(refused))
    user = current_user._get_current_object() if current_user.is_authenticated else None
    if user is None and request.method == "POST" and not confirmed:
        # Posted from the application's page (another site): without the SameSite=Lax
        # session cookie. The browser sends it on the GET this redirect makes.
        return redirect(request.path + "?" + urlencode(list(request.form.items(multi=True))), code=303)
    if user is not None and not (confirmed or hint_is_current(logout, user)):
        return page("oauth/logout_confirm.html", logout=logout)
    if user is not None:
        audit.record("logout", actor=user.username, target=user,
                     client=logout.client.client_id if logout.client else None)
        end_session(user)  # this browser's session token goes (portal.tokens), the cookie is emptied
        logout_user()
    return back_to_client(logout)
