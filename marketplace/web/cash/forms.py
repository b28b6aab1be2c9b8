"""Forms of the cash pages: take the cash for an order, declare a remittance, confirm one."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import InputRequired, Length

_required = InputRequired(message=_l("This field is required."))
MONEY_ATTRS = {"inputmode": "decimal", "maxlength": 16, "autocomplete": "off"}


class TakeCashForm(FlaskForm):
    key = HiddenField()


class DeclareForm(FlaskForm):
    key = HiddenField()
    amount = StringField(_l("Cash handed in (yuan)"), validators=[_required], render_kw=MONEY_ATTRS)
    note = StringField(_l("Note (optional)"), validators=[Length(max=200)], render_kw={"maxlength": 200})


class ConfirmForm(FlaskForm):
    counted = StringField(_l("Counted (yuan)"), validators=[_required], render_kw=MONEY_ATTRS)
