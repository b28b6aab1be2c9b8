"""Forms of the standing order pages: setting one up for a villager (products picked from the
proxy search, cadence, how the villager pays), confirming a cycle, and the one-button actions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import Length

from services import standing

PAYMENT_CHOICES = [
    ("cash", _l("Cash now: I take the cash")),
    ("credit", _l("Cash on pickup, on my credit")),
    ("wechat_pay", _l("WeChat Pay: the villager scans the QR code")),
    ("alipay", _l("Alipay: the villager scans the QR code")),
]


class SetUpForm(FlaskForm):
    """Checked by the service (it names the wrong field); the choices only shape the page. A search
    re-renders it as typed; only setting up is checked (CSRF included)."""

    key = HiddenField()
    q = StringField(_l("Search goods"), validators=[Length(max=60)], render_kw={"maxlength": 60})
    cadence = RadioField(
        _l("How often"),
        choices=[("weekly", _l("Every week")), ("monthly", _l("Every month"))],
        default="weekly",
        validate_choice=False,
    )
    repeat_every = SelectField(
        _l("Every how many weeks or months"),
        choices=[(str(n), str(n)) for n in range(1, standing.MAX_EVERY + 1)],
        default="1",
        validate_choice=False,
    )
    weekday = SelectField(
        _l("On (weekly)"),
        choices=[(str(n), name) for n, name in enumerate(standing.WEEKDAY_NAMES)],
        default="0",
        validate_choice=False,
    )
    day_of_month = SelectField(
        _l("On day (monthly)"),
        choices=[(str(n), str(n)) for n in range(1, standing.MAX_DAY_OF_MONTH + 1)],
        default="1",
        validate_choice=False,
    )
    start_date = StringField(_l("Starting from"), render_kw={"maxlength": 10})
    payment_method = RadioField(
        _l("How the villager pays"), choices=PAYMENT_CHOICES, default="cash", validate_choice=False
    )
    note = StringField(_l("Note (optional)"), validators=[Length(max=200)], render_kw={"maxlength": 200})


class KeyForm(FlaskForm):
    key = HiddenField()
