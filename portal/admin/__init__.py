"""The admin portal: one blueprint, one module per feature, one guard."""

from flask import Blueprint, abort, current_app, redirect, request, url_for
from markupsafe import Markup
from flask_login import current_user
from werkzeug.exceptions import default_exceptions

from portal.domain.words import plural

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The portal's menu; an entry shows once its page exists.
NAVIGATION = [
    ("admin.index", "Dashboard"),
    ("admin.tokens", "Tokens"),
    ("admin.applications", "Applications"),
    ("admin.users", "Users"),
    ("admin.sessions", "Sessions"),
    ("admin.tenants", "Tenants"),
    ("admin.audit", "Audit log"),
]


@bp.app_context_processor
def navigation():
    return {"admin_nav": lambda: [(e, label) for e, label in NAVIGATION if e in current_app.view_functions]}


@bp.app_context_processor
def current_section():
    """`nav_section()`: the menu entry this page belongs to (its list, for a detail page),
    which the menu marks with aria-current="page"."""
    def nav_section() -> str | None:
        endpoint = request.endpoint or ""
        for entry, _ in NAVIGATION:
            if endpoint == entry or (entry != "admin.index" and endpoint.startswith(entry + "_")):
                return entry
        return None
    return {"nav_section": nav_section}


@bp.app_template_global()
def error_way_out() -> tuple[str, str] | None:
    """For an error page under /admin/<list>/...: the list to go back to, as (url, label)."""
    if not current_user.is_authenticated or not current_user.is_admin:
        return None
    parts = request.path.split("/")
    for endpoint, label in NAVIGATION[1:]:
        if len(parts) > 3 and parts[1] == "admin" and url_for(endpoint) == "/admin/" + parts[2]:
            return url_for(endpoint), f"All {label.lower()}" if label != "Audit log" else "The audit log"
    return None


@bp.app_template_global()
def generic_error_text(status: int) -> str:
    """Werkzeug's own sentence for a status, which a page replaces with a plainer one."""
    try:
        return default_exceptions[status].description
    except KeyError:
        return ""


bp.add_app_template_filter(plural, "plural")


@bp.app_template_filter("breakable")
def breakable(text) -> Markup:
    """`MANAGE_PROFILES` that may wrap after its underscores (narrow table headers)."""
    return Markup("_<wbr>").join(str(text).split("_"))


@bp.before_request
def admins_only():
    """Only logged-in admins reach /admin/; others log in or get 403."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not current_user.is_admin:
        abort(403, "This page is for administrators.")
    return None


from portal.admin import applications, audit, factors, sessions, tenants, tokens, users, views  # noqa: E402,F401
