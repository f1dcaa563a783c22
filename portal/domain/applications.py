"""Registering applications (OAuth clients): the checks the CLI and the admin form share."""

import re
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select

from portal.domain import audit
from portal.extensions import db
from portal.domain.hashing import django_hash_problem
from portal.models import Application
from portal.models.application import CONFIDENTIAL, EITHER_SECRET_METHOD, PUBLIC, SECRET_METHODS
from portal.domain.rules import RuleError

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
RESPONSE_TYPES = ("code",)
AUTH_METHODS = (EITHER_SECRET_METHOD, *SECRET_METHODS, "none")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
# Letters and marks that render as nothing: str.isprintable() lets them through (it refuses
# control, format (bidirectional, zero-width), separator and unassigned characters).
INVISIBLE_CHARACTERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")


class ApplicationError(RuleError):
    """Input the application rules refuse; `field` names the part at fault."""


def check_redirect_uri(uri: str, field: str = "redirect_uris") -> str | None:
    """Raise for a URI we refuse; return a warning for one we accept reluctantly (also the
    rule for post-logout redirect URIs, `field` naming the list at fault)."""
    uri = (uri or "").strip()
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc and parts.scheme in ("http", "https"):
        raise ApplicationError(f"{uri!r} is not an absolute URI", field)
    # RFC 8252 §7.1: a native app's private-use scheme is a reverse domain name (com.example.app);
    # javascript:, data:, vbscript: and other one-word schemes are never a client's address.
    if parts.scheme not in ("http", "https") and "." not in parts.scheme:
        raise ApplicationError(f"{uri!r}: use http(s), or a native app's scheme in reverse-domain form "
                               "(com.example.app:/callback)", field)
    if "#" in uri:
        raise ApplicationError(f"{uri!r} has a fragment; redirect URIs may not", field)
    if "*" in uri:
        raise ApplicationError(f"{uri!r} has a wildcard; register each URI exactly", field)
    if any(c.isspace() for c in uri):
        raise ApplicationError(f"{uri!r} contains spaces", field)
    if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
        return f"{uri} uses plain http on a non-loopback host: codes and tokens can be intercepted"
    return None


def check_resources(resources) -> list[str]:
    """The resource servers a client may ask tokens for (RFC 8707 §2: an absolute URI
    without a fragment), as stored: trimmed, each once. A token asked for one carries it
    as `aud`, which the resource server compares exactly with its own URI."""
    checked = []
    for uri in resources or ():
        uri = (uri or "").strip()
        if not uri:
            continue
        parts = urlsplit(uri)
        if not parts.scheme or not parts.netloc or any(c.isspace() for c in uri) or len(uri) > 500:
            raise ApplicationError(f"{uri[:100]!r} is not an absolute URI (https://api.example/)", "resources")
        if "#" in uri:
            raise ApplicationError(f"{uri!r} has a fragment; a resource URI may not (RFC 8707)", "resources")
        checked.append(uri)
    return list(dict.fromkeys(checked))


def default_grant_types(client_type: str, redirect_uris: list[str]) -> list[str]:
    if client_type == PUBLIC:
        return ["authorization_code", "refresh_token"]
    if redirect_uris:
        return ["authorization_code", "refresh_token", "client_credentials"]
    return ["client_credentials"]


def register_application(*, name: str, client_type: str = CONFIDENTIAL, client_id: str | None = None,
                         client_secret: str | None = None, redirect_uris: list[str] = (),
                         grant_types: list[str] = (), response_types: list[str] = (),
                         scope: str = "openid email profile", token_endpoint_auth_method: str | None = None,
                         description: str = "", post_logout_redirect_uris: list[str] = (),
                         actor: str | None = None, resources: list[str] = (),
                         client_secret_hash: str | None = None) -> tuple[Application, str | None]:
    """Validate and store an application; return it with its secret (shown once).
    `client_secret_hash`: a secret kept as django-oauth-toolkit hashed it (`portal import dot`)."""
    if client_type not in (CONFIDENTIAL, PUBLIC):
        raise ApplicationError("the type must be confidential or public", "client_type")
    name = check_name(name)
    client_id = (client_id or "").strip() or secrets.token_urlsafe(18)
    if not CLIENT_ID_PATTERN.match(client_id):
        raise ApplicationError("the client id may use letters, digits and . _ ~ - (at most 100)", "client_id")
    if db.session.scalar(select(Application.id).where(Application.client_id == client_id)):
        raise ApplicationError(f"the client id {client_id!r} is taken", "client_id")
    settings = check_settings(client_type, redirect_uris, grant_types, response_types, token_endpoint_auth_method,
                              post_logout_redirect_uris)
    if client_secret is not None and client_type == PUBLIC:
        raise ApplicationError("a public client has no secret", "client_secret")
    if client_secret is not None and len(client_secret) < 16:
        raise ApplicationError("a client secret needs at least 16 characters", "client_secret")
    warnings = settings.pop("warnings")
    application = Application(name=name, client_id=client_id, client_type=client_type,
                              scope=" ".join((scope or "").split()), description=description or "",
                              resources=check_resources(resources), **settings)
    if client_secret_hash is not None:
        if client_type == PUBLIC or client_secret is not None:
            raise ApplicationError("a kept secret is a Django password hash of a confidential client's secret",
                                   "client_secret")
        problem = django_hash_problem(client_secret_hash)
        if problem is not None:
            raise ApplicationError(f"the kept secret hash is refused: {problem}", "client_secret")
        application.client_secret_hash, secret = client_secret_hash, None
    else:
        secret = application.set_secret(client_secret)
    db.session.add(application)
    db.session.flush()
    audit.record("application.created", actor=actor, target=application, client_id=client_id,
                 warnings=warnings or None)
    db.session.commit()
    application.warnings = warnings
    return application, secret


def update_application(application: Application, *, name: str, redirect_uris: list[str] = (),
                       grant_types: list[str] = (), response_types: list[str] = (), scope: str = "",
                       token_endpoint_auth_method: str | None = None, description: str = "",
                       post_logout_redirect_uris: list[str] = (), actor: str | None = None,
                       resources: list[str] = ()) -> list[str]:
    """Change a registered application's settings (not its client id, type or secret) by the
    rules registration checks; audited with the fields that changed. Returns the warnings."""
    settings = check_settings(application.client_type, redirect_uris, grant_types, response_types,
                              token_endpoint_auth_method, post_logout_redirect_uris)
    warnings = settings.pop("warnings")
    settings.update(name=check_name(name, application.id), scope=" ".join((scope or "").split()),
                    description=description or "", resources=check_resources(resources))
    changed = sorted(field for field, value in settings.items() if getattr(application, field) != value)
    for field in changed:
        setattr(application, field, settings[field])
    if changed:
        audit.record("application.updated", actor=actor, target=application, fields=changed,
                     warnings=warnings or None)
    db.session.commit()
    return warnings


def check_name(name: str, application_id: int | None = None) -> str:
    """A name 1 to 100 characters long, made of visible characters and spaces (consent
    pages show it: no control, bidirectional or zero-width characters), that no other
    application has."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ApplicationError("the name must be 1 to 100 characters", "name")
    if not name.isprintable() or INVISIBLE_CHARACTERS.intersection(name):
        raise ApplicationError("the name may hold only visible characters and spaces (no control, "
                               "bidirectional or invisible characters)", "name")
    if db.session.scalar(select(Application.id).where(Application.name == name, Application.id != application_id)):
        raise ApplicationError(f"an application named {name!r} already exists", "name")
    return name


def check_settings(client_type: str, redirect_uris, grant_types, response_types,
                   token_endpoint_auth_method: str | None, post_logout_redirect_uris=()) -> dict:
    """The OAuth settings as stored (redirect URIs, grant and response types, client
    authentication, post-logout redirect URIs), checked together, plus `warnings` for URIs
    accepted reluctantly."""
    uris = [u.strip() for u in redirect_uris if u and u.strip()]
    logout_uris = list(dict.fromkeys(u.strip() for u in post_logout_redirect_uris if u and u.strip()))
    warnings = [w for w in (check_redirect_uri(u) for u in uris) if w]
    warnings += [w for w in (check_redirect_uri(u, "post_logout_redirect_uris") for u in logout_uris) if w]
    grant_types = list(dict.fromkeys(grant_types)) or default_grant_types(client_type, uris)
    unknown = sorted(set(grant_types) - set(GRANT_TYPES))
    if unknown:
        raise ApplicationError(f"unsupported grant type {', '.join(unknown)}; use {', '.join(GRANT_TYPES)}",
                               "grant_types")
    if client_type == PUBLIC and "client_credentials" in grant_types:
        raise ApplicationError("a public client cannot use client_credentials", "grant_types")
    if "authorization_code" in grant_types and not uris:
        raise ApplicationError("the authorization_code grant needs at least one redirect URI", "redirect_uris")
    response_types = list(dict.fromkeys(response_types)) or (["code"] if "authorization_code" in grant_types else [])
    unknown = sorted(set(response_types) - set(RESPONSE_TYPES))
    if unknown:
        raise ApplicationError(f"unsupported response type {', '.join(unknown)}; only code", "response_types")
    method = token_endpoint_auth_method or ("none" if client_type == PUBLIC else EITHER_SECRET_METHOD)
    if method not in AUTH_METHODS or (method == "none") != (client_type == PUBLIC):
        raise ApplicationError("public clients use none; confidential clients client_secret_basic, "
                               "client_secret_post, or both (the default)", "token_endpoint_auth_method")
    return {"redirect_uris": uris, "grant_types": grant_types, "response_types": response_types,
            "token_endpoint_auth_method": method, "post_logout_redirect_uris": logout_uris, "warnings": warnings}
