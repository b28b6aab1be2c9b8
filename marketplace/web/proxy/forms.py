"""Forms of the proxy order pages: a quantity in the villager's cart, placing the order with how
the villager pays, paying again another way, cancelling, and county staff's credit limit."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField
from wtforms.validators import InputRequired

_required = InputRequired(message=_l("This field is required."))


class QuantityForm(FlaskForm):
    quantity = StringField(_l("Quantity"), render_kw={"inputmode": "numeric", "maxlength": 4, "size": 3})


class PlaceForm(FlaskForm):
    key = HiddenField()
    payment_method = RadioField(
        _l("How the villager pays"),
        choices=[
            ("wechat_pay", _l("WeChat Pay: the villager scans the QR code")),
            ("alipay", _l("Alipay: the villager scans the QR code")),
            ("cash", _l("Cash now: I take the cash")),
            ("credit", _l("Cash on pickup, on my credit")),
        ],
        validators=[_required],
    )


class KeyForm(FlaskForm):
    key = HiddenField()


class CreditLimitForm(FlaskForm):
    key = HiddenField()
    limit = StringField(
        _l("Credit limit (yuan)"),
        validators=[_required],
        render_kw={"inputmode": "decimal", "maxlength": 16, "autocomplete": "off"},
    )
