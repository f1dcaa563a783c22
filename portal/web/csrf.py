"""CSRF protection: Flask-WTF's token, plus a same-origin check that works with what
browsers send.

Flask-WTF's own HTTPS check wants a Referer, which a browser leaves out whenever the
page's referrer policy says so. Every current browser sends Sec-Fetch-Site on a form
POST, most send Origin: either one answers "did this form come from our own pages?".
A request with none of the three (a script, an old browser) is refused over HTTPS, as
Flask-WTF does, and allowed over plain HTTP, where the token alone protects it.
"""

from urllib.parse import urlsplit

from flask import g, request
from flask_wtf.csrf import CSRFError, CSRFProtect

OWN_SITE = ("same-origin", "none")  # "none": typed or bookmarked by the user, not a page's doing


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin_problem() -> str | None:
    """Why this request may have been sent by another site's page, or None."""
    site = request.host_url.rstrip("/").lower()
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site:
        return None if fetch_site in OWN_SITE else f"The form was sent from another site ({fetch_site})."
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        claimed = origin
    elif request.referrer:
        claimed = origin_of(request.referrer)
    elif request.is_secure:
        return "The browser sent neither Origin nor Referer; this form cannot be checked."
    else:
        return None
    if claimed.lower() == site:
        return None
    if origin_of(claimed).replace("https://", "http://", 1) == site:
        return (f"The form came from {claimed} but this server sees itself at {site}: "
                "behind a TLS proxy, set TRUSTED_PROXIES.")
    return "The form was sent from another site."


class SameOriginCSRFProtect(CSRFProtect):
    """CSRFProtect whose HTTPS referrer check (WTF_CSRF_SSL_STRICT, turned off in the config)
    is replaced by cross_origin_problem(), on every scheme."""

    def protect(self, apply_exemptions=False):
        super().protect(apply_exemptions)
        if not g.get("csrf_valid"):  # an exempt view, or a method CSRF does not cover
            return
        problem = cross_origin_problem()
        if problem:
            raise CSRFError(problem)
