"""Forms of the account pages. They check presence and agreement; the services check the rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.fields import TelField
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from domain import Role

_required = InputRequired(message=_l("This field is required."))

# Phones and codes: a numeric keypad on phones, and the browser's one-time-code autofill.
PHONE_ATTRS = {"inputmode": "numeric", "autocomplete": "tel-national", "maxlength": 20}
CODE_ATTRS = {"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": 6, "pattern": "[0-9]*"}


def _phone_field() -> TelField:
    return TelField(_l("Mobile number"), validators=[_required], render_kw=PHONE_ATTRS)


def _code_field() -> TelField:
    return TelField(_l("Verification code"), validators=[_required], render_kw=CODE_ATTRS)


def _new_password_fields() -> tuple[PasswordField, PasswordField]:
    return (
        PasswordField(
            _l("Password"),
            validators=[_required],
            render_kw={"autocomplete": "new-password", "maxlength": 128},
        ),
        PasswordField(
            _l("Password again"),
            validators=[_required, EqualTo("password", message=_l("The two passwords are not the same."))],
            render_kw={"autocomplete": "new-password", "maxlength": 128},
        ),
    )


class LoginForm(FlaskForm):
    phone = _phone_field()
    password = PasswordField(
        _l("Password"), validators=[_required], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField(_l("Stay logged in on this phone"), default=True)
    submit = SubmitField(_l("Log in"))


class RegisterForm(FlaskForm):
    """One page, two steps: the phone and "send code", then the rest."""

    phone = _phone_field()
    send_code = SubmitField(_l("Send code"))
    code = _code_field()
    password, password2 = _new_password_fields()
    display_name = StringField(
        _l("Your name (shown to others)"),
        validators=[Optional(), Length(max=40)],
        render_kw={"autocomplete": "name", "maxlength": 40},
    )
    role_buyer = BooleanField(_l("Buy farm produce and goods"), default=True)
    role_farmer = BooleanField(_l("Sell my farm produce"))
    role_merchant = BooleanField(_l("Sell farm inputs and daily goods (merchant)"))
    submit = SubmitField(_l("Register"))

    def chosen_roles(self) -> tuple[Role, ...]:
        chosen = [
            (self.role_buyer, Role.BUYER),
            (self.role_farmer, Role.FARMER),
            (self.role_merchant, Role.MERCHANT),
        ]
        return tuple(role for field, role in chosen if field.data)


class ResetPasswordForm(FlaskForm):
    phone = _phone_field()
    send_code = SubmitField(_l("Send code"))
    code = _code_field()
    password, password2 = _new_password_fields()
    submit = SubmitField(_l("Set the new password"))


class ProfileForm(FlaskForm):
    display_name = StringField(
        _l("Your name (shown to others)"),
        validators=[Optional(), Length(max=40)],
        render_kw={"autocomplete": "name", "maxlength": 40},
    )
    locale = SelectField(
        _l("Language"),
        choices=[("", _l("Automatic")), ("zh_Hans_CN", "中文"), ("en", "English")],
        validate_choice=True,
    )
    submit = SubmitField(_l("Save"))


class NotificationsForm(FlaskForm):
    """Which optional order messages to receive (the service knows the kinds and checks them)."""

    events = SelectMultipleField(choices=[], validate_choice=False)
    submit = SubmitField(_l("Save"))


class UserSearchForm(FlaskForm):
    """The GET search on the users page: no CSRF token, nothing is written."""

    class Meta:
        csrf = False

    # The whole number only (services.accounts.list_users): masked numbers cannot be read back
    # by searching digit by digit.
    phone = TelField(
        _l("Mobile number"),
        validators=[Optional()],
        render_kw={"inputmode": "numeric", "maxlength": 20, "autocomplete": "off"},
    )


def _int_or_none(value: object) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return -1  # matches no choice, so the field reports "Not a valid choice"


def _str_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


class GrantRoleForm(FlaskForm):
    """Choices are filled in by the view from what the actor may grant."""

    user_id = SelectField(_l("User"), coerce=int, validators=[_required])
    role = SelectField(_l("Role"), validators=[_required])
    village_point_id = SelectField(_l("Village service point (village agents)"), coerce=_int_or_none)
    distribution_center_id = SelectField(
        _l("Distribution center (distribution center staff)"), coerce=_int_or_none
    )
    county_code = SelectField(_l("County (county center staff)"), coerce=_str_or_none)
    submit = SubmitField(_l("Grant the role"))


class RevokeRoleForm(FlaskForm):
    """A revoke button: the CSRF token and where to come back to."""

    phone = HiddenField()
