from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter your username."), Length(max=150)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class CodeForm(FlaskForm):
    """A code from the authenticator app, or a recovery code (`method`)."""

    method = HiddenField(default="totp", id="totp-method")
    code = StringField("Code", validators=[DataRequired("Enter the code."), Length(max=64)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True,
                                  "spellcheck": "false", "autocapitalize": "off"})


class RecoveryForm(FlaskForm):
    method = HiddenField(default="recovery", id="recovery-method")
    code = StringField("Recovery code", validators=[DataRequired("Enter a recovery code."), Length(max=64)],
                       id="recovery-code",
                       render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"})


class ConfirmationForm(FlaskForm):
    """Before removing a factor or making new recovery codes: the password or a current code."""

    confirmation = PasswordField("Your password, or a code from your authenticator app",
                                 validators=[DataRequired("Enter your password or a code."), Length(max=1024)],
                                 render_kw={"autocomplete": "current-password"})


class PasskeyNameForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Give the passkey a name."), Length(max=100)])
