"""Admin forms. The tenant-permission editor is parsed by hand (rows come and go)."""

import re
from datetime import timedelta
from types import SimpleNamespace

from flask import current_app
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import (BooleanField, DateTimeLocalField, EmailField, PasswordField, RadioField, SelectField,
                     SelectMultipleField, StringField, TextAreaField)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget, TextInput

from portal.domain import clock, users
from portal.domain.applications import GRANT_TYPES
from portal.extensions import db
from portal.models import Application, Tenant, User
from portal.tokens import ANY, TokenError, check_custom_value
from portal.tokens import permissions as perms
from portal.tokens.values import MAX_VALUE_LENGTH
from portal.domain.users import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, PASSWORD_RULE

# Dates are typed and shown as the rest of the portal shows them, in UTC; the form of
# <input type=datetime-local> is accepted too (scripts and older pages send it).
DATETIME_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]


class MaxLength:
    """At most `max` characters, checked here and said next to the field. Unlike WTForms'
    Length(max=) it puts no `maxlength` on the input: a browser cuts a longer paste to that
    length without a word (a 600-character legacy token value was saved as 512)."""

    def __init__(self, max: int, message: str | None = None):
        self.max = max
        self.message = message

    def __call__(self, form, field):
        length = len(field.data or "")
        if length > self.max:
            raise ValidationError(self.message or f"Too long: at most {self.max:,} characters (this has {length:,}).")


# portal.domain.users' password rule as form validators, so the form says it next to the field
# (Length with only a minimum sets `minlength`, which cuts nothing).
PASSWORD_LENGTH = [Length(min=PASSWORD_MIN_LENGTH, message=f"A password needs {PASSWORD_RULE}."),
                   MaxLength(PASSWORD_MAX_LENGTH, f"A password needs {PASSWORD_RULE}.")]
ROW_KEY = re.compile(r"^perm-(\d{1,3})-tenant$")
MAX_ROWS = 50


class UTCDateTimeField(DateTimeLocalField):
    """A date and time in UTC, as text ("2027-03-01 14:30"). Not <input type=datetime-local>:
    the browser shows that in the reader's own locale's form (03/01/2027, 02:30 PM) on a
    page where every other date is UTC, year first."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"placeholder": "YYYY-MM-DD HH:MM", "autocomplete": "off", "spellcheck": "false",
                     **kwargs.pop("render_kw", {})}
        super().__init__(label, validators, format=DATETIME_FORMATS, render_kw=render_kw, **kwargs)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def options(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms 3.3 wants them."""
    return [SelectChoice(str(value), label) for value, label in pairs]


def application_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(select(Application.id, Application.name).order_by(Application.name))
    return [(row.id, row.name) for row in rows]


def tenant_names() -> list[str]:
    return list(db.session.scalars(select(Tenant.name).order_by(Tenant.name)))


def find_user(text: str) -> User | None:
    """The user named by username or email (exact, case-insensitive)."""
    text = (text or "").strip().lower()
    if not text:
        return None
    return db.session.scalars(
        select(User).where(or_(func.lower(User.username) == text, func.lower(User.email) == text)).limit(2)
    ).first()


def default_expiry():
    return clock.now() + timedelta(seconds=current_app.config["ACCESS_TOKEN_EXPIRE_SECONDS"])


EXPIRY_PRESETS = (7, 30, 90)  # days
CUSTOM, KEEP = "custom", "keep"


def core_message(error: TokenError) -> str:
    """A token core refusal as a sentence."""
    return error.message[0].upper() + error.message[1:] + ("" if error.message.endswith(".") else ".")


class ExpiryMixin:
    """An expiry chosen as a preset (7 / 30 / 90 days after `expiry_base`) or typed
    (`custom`); the presets' labels say the date they give. The field `expires_at` holds
    the resulting moment after validation."""

    expiry = RadioField("Expires", validate_choice=False)
    expires_at = UTCDateTimeField("Custom expiry (UTC)")
    past_message = "The expiry must be in the future."

    def setup_expiry(self, base, keep=None):
        """`base`: when the presets count from; `keep`: the current expiry, offered first."""
        self.expiry_base = base
        choices = [(KEEP, f"Keep ({keep:%Y-%m-%d})")] if keep else []
        choices += [(str(days), f"{days} days ({base + timedelta(days=days):%Y-%m-%d})") for days in EXPIRY_PRESETS]
        self.expiry.choices = options(choices + [(CUSTOM, "Custom date")])
        self.keep_expiry = keep

    def preselect_expiry(self, days: int | None, custom=None):
        """The choice a fresh form shows (and the custom field's text)."""
        self.expiry.data = KEEP if self.keep_expiry and days is None else (str(days) if days else CUSTOM)
        self.expires_at.data = custom or self.expiry_base + timedelta(days=days or EXPIRY_PRESETS[1])

    def validate_expiry(self, field):
        if field.data and field.data not in {choice.value for choice in field.choices}:
            raise ValidationError("Choose an expiry.")

    def validate_expires_at(self, field):
        choice = self.expiry.data or CUSTOM  # a script that sends only expires_at, as before the presets
        if choice == KEEP:
            field.errors[:], field.data = [], self.keep_expiry
        elif choice in {str(days) for days in EXPIRY_PRESETS}:
            field.errors[:] = []  # a preset wins over whatever the hidden custom field holds
            field.data = (self.expiry_base + timedelta(days=int(choice))).replace(second=0, microsecond=0)
        elif field.data is None:
            if not field.errors:
                raise ValidationError("Give an expiry date and time (YYYY-MM-DD HH:MM).")
        elif field.data <= clock.now():
            raise ValidationError(self.past_message)


class TokenSettingsForm(ExpiryMixin, FlaskForm):
    """What a token is: shared by create and replace."""

    application = SelectField("Application", coerce=int, validators=[DataRequired("Choose an application.")],
                              validate_choice=False)
    user = StringField("User (username or email)", validators=[Optional(), MaxLength(254)],
                       render_kw={"list": "user-options", "autocomplete": "off",
                                  "placeholder": "type to search; leave blank for no user"})
    master = BooleanField("Master token (may manage other tokens through the API)")
    scope = StringField("Scope", validators=[Optional(), MaxLength(1000)])
    current_password = PasswordField("Your password", validators=[Optional(), MaxLength(1024)],
                                     render_kw={"autocomplete": "current-password"})

    def __init__(self, *args, keep=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.application.choices = options([(0, "— choose an application —")] + application_choices())
        self.resolved_user = None
        self.resolved_application = None
        self.setup_expiry(clock.now(), keep)

    def validate_application(self, field):
        application = db.session.get(Application, field.data) if field.data else None
        if application is None:
            raise ValidationError("Choose an application.")
        self.resolved_application = application

    def validate_user(self, field):
        if field.data and field.data.strip():
            self.resolved_user = find_user(field.data)
            if self.resolved_user is None:
                raise ValidationError(f"No user with username or email {field.data.strip()!r}.")


class TokenCreateForm(TokenSettingsForm):
    value = StringField("Token value", validators=[Optional(), MaxLength(MAX_VALUE_LENGTH)],
                        render_kw={"autocomplete": "off", "placeholder": "blank = generate a new value"})
    refresh_value = StringField("Source refresh token (optional)", validators=[Optional(), MaxLength(MAX_VALUE_LENGTH)],
                                render_kw={"autocomplete": "off"})

    def validate_value(self, field):
        if field.data and field.data.strip():
            try:  # the token core's rule for a typed value
                check_custom_value(field.data)
            except TokenError as error:
                raise ValidationError(core_message(error)) from None


class TokenReplaceForm(TokenSettingsForm):
    """The replaced token's settings; its expiry is kept unless another is chosen."""


class ExtendForm(ExpiryMixin, FlaskForm):
    """A new expiry: presets count from the current expiry, or from now if it has passed."""

    expires_at = UTCDateTimeField("New expiry (UTC)")
    past_message = "The new expiry must be in the future."

    def __init__(self, *args, current=None, **kwargs):
        super().__init__(*args, **kwargs)
        now = clock.now().replace(second=0, microsecond=0)
        self.setup_expiry(max(now, current) if current else now)


class ConfirmForm(FlaskForm):
    """A POST with only a CSRF token: for confirmed deletes and other one-click actions."""


class LogEveryoneOutForm(FlaskForm):
    include_me = BooleanField("Log me out too (this browser's session ends as well)")


# --- the tenant-permission editor ----------------------------------------------------

class PermissionRows:
    """Rows of (tenant, actions) read from `perm-N-tenant` / `perm-N-actions` fields."""

    def __init__(self, rows=None):
        self.rows = rows if rows is not None else []
        self.errors: list[str] = []
        self.row_errors: dict[int, str] = {}

    @classmethod
    def default(cls):
        return cls([{"tenant": "", "actions": list(perms.NEW_ROW_ACTIONS)}])

    @classmethod
    def from_token(cls, token):
        return cls([{"tenant": p.tenant, "actions": p.action_list} for p in token.permissions])

    @classmethod
    def from_form(cls, form_data):
        indexes = sorted(int(m.group(1)) for key in form_data if (m := ROW_KEY.match(key)))
        rows = []
        for index in indexes[:MAX_ROWS]:
            rows.append({
                "tenant": (form_data.get(f"perm-{index}-tenant") or "").strip(),
                "actions": form_data.getlist(f"perm-{index}-actions"),
            })
        return cls(rows)

    def add_row(self, tenant: str = ""):
        """A row for `tenant` (blank: to be chosen); a named tenant fills the first blank row
        rather than leave it to be removed, and one that has a row already adds none."""
        if tenant and any(row["tenant"] == tenant for row in self.rows):
            return
        blank = next((row for row in self.rows if not row["tenant"]), None) if tenant else None
        if blank is not None:
            blank["tenant"] = tenant
        else:
            self.rows.append({"tenant": tenant, "actions": list(perms.NEW_ROW_ACTIONS)})

    def remove_row(self, index: int):
        if 0 <= index < len(self.rows):
            del self.rows[index]

    def validate(self) -> bool:
        known = set(tenant_names()) | {ANY}
        seen: dict[str, int] = {}
        for index, row in enumerate(self.rows):
            tenant = row["tenant"]
            if not tenant:
                self.row_errors[index] = "Choose a tenant (or * for any tenant), or remove the row."
            elif tenant not in known:
                self.row_errors[index] = f"Unknown tenant {tenant!r}."
            elif tenant in seen:
                self.row_errors[index] = f"Tenant {tenant} already has a row: give each tenant one row."
            else:
                seen[tenant] = index
            if index not in self.row_errors:
                try:  # the token core's rules for one entry: its actions, and where they can be granted
                    perms.check_grantable(perms.normalize([row]))
                except TokenError as error:
                    self.row_errors[index] = core_message(error)
        if self.row_errors:
            self.errors.append("Fix the tenant permissions below.")
        return not self.errors

    def summary(self) -> list:
        """The editor's errors as error_summary lists a field's: each links to its row's tenant."""
        label = SimpleNamespace(text="Tenant permissions")
        items = [SimpleNamespace(id="perm-rows", label=label, errors=[e]) for e in self.errors
                 if not self.row_errors]
        items += [SimpleNamespace(id=f"perm-{i}-tenant", label=SimpleNamespace(text=f"Tenant row {i + 1}"),
                                  errors=[message]) for i, message in sorted(self.row_errors.items())]
        return items

    def entries(self) -> list[dict]:
        return [{"tenant": r["tenant"], "actions": r["actions"]} for r in self.rows]


# --- applications, users, tenants ----------------------------------------------------

class ApplicationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Give the application a name."), MaxLength(100)])
    client_type = SelectField("Type", choices=options([("confidential", "Confidential (has a secret)"),
                                                       ("public", "Public (no secret; PKCE)")]))
    redirect_uris = TextAreaField("Redirect URIs (one per line)", validators=[Optional()])
    post_logout_redirect_uris = TextAreaField("Post-logout redirect URIs (one per line; optional)",
                                              validators=[Optional()])
    grant_types = MultiCheckboxField("Grant types", choices=options((g, g) for g in GRANT_TYPES),
                                     validate_choice=False)
    response_types = MultiCheckboxField("Response types", choices=options([("code", "code")]), validate_choice=False)
    scope = StringField("Allowed scopes", default="openid email profile")
    resources = TextAreaField("Resource servers it may ask tokens for (audience URIs, one per line; optional)",
                              validators=[Optional()])
    token_endpoint_auth_method = SelectField(
        "Client authentication at /token", choices=options([
            ("", "Default: HTTP Basic or the form body (public clients: none)"),
            ("client_secret_basic", "HTTP Basic only (client_secret_basic)"),
            ("client_secret_post", "Form body only (client_secret_post)"),
            ("none", "None (public clients)"),
        ]),
        validate_choice=False)  # register_application() checks it, with a clearer message
    client_id = StringField("Client id (optional; blank = generated)", validators=[Optional(), MaxLength(100)])
    description = StringField("Description", validators=[Optional(), MaxLength(500)])


class ApplicationEditForm(ApplicationForm):
    """The settings that may change after registration: not the client id, nor the type."""
    client_type = None
    client_id = None

    @classmethod
    def of(cls, application: Application) -> "ApplicationEditForm":
        method = application.token_endpoint_auth_method
        return cls(formdata=None, data={
            "name": application.name, "redirect_uris": "\n".join(application.redirect_uris or []),
            "post_logout_redirect_uris": "\n".join(application.post_logout_redirect_uris or []),
            "resources": "\n".join(application.resources or []),
            "grant_types": list(application.grant_types or []), "scope": application.scope,
            "response_types": list(application.response_types or []), "description": application.description,
            "token_endpoint_auth_method": "" if " " in method else method})


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Give a username.")])
    email = EmailField("Email", validators=[DataRequired("Give an email address."),
                                            Email("Give a valid email address."), MaxLength(254)])
    name = StringField("Full name", validators=[Optional(), MaxLength(200)])
    tenant = SelectField("Tenant", validate_choice=False)
    password = PasswordField("Password", validators=[DataRequired("Give a password."),
                                                     *PASSWORD_LENGTH])
    is_admin = BooleanField("Administrator (belongs to no tenant)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant.choices = options([("", "— none —")] + [(n, n) for n in tenant_names()])
        self.resolved_tenant = None

    def validate_username(self, field):
        try:
            users.new_username(field.data)
        except users.UsernameTakenError:
            raise ValidationError("That username is taken.") from None
        except users.UserError:
            raise ValidationError(f"Use {users.USERNAME_RULE}.") from None

    def validate_tenant(self, field):
        if field.data:
            self.resolved_tenant = db.session.scalar(select(Tenant).where(Tenant.name == field.data))
            if self.resolved_tenant is None:
                raise ValidationError("Unknown tenant.")
        try:
            users.check_membership(self.is_admin.data, self.resolved_tenant)
        except users.UserError:
            raise ValidationError("An administrator belongs to no tenant: choose — none — or untick "
                                  "Administrator.") from None


class UserEditForm(UserForm):
    """What may change after creation: not the username, and the password has its own form."""
    username = None
    password = None
    email = EmailField("Email", validators=[Optional(), Email("Give a valid email address."), MaxLength(254)])
    active = BooleanField("Active (may log in; their tokens work)")

    @classmethod
    def of(cls, user: User) -> "UserEditForm":
        return cls(formdata=None, data={"email": user.email, "name": user.name, "is_admin": user.is_admin,
                                        "tenant": user.tenant.name if user.tenant else "", "active": user.active})


class PasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Give a password."),
                                                         *PASSWORD_LENGTH])


class TenantForm(FlaskForm):
    # The rules (slug, uniqueness) are portal.domain.tenants'; the view shows their refusals here.
    name = StringField("Name (a slug; never changes)", validators=[DataRequired("Give the tenant a name.")])
    label = StringField("Label (display name)", validators=[Optional()])


class TenantLabelForm(FlaskForm):
    label = StringField("Label (display name)", validators=[DataRequired("Give a label.")])
