"""Forms of the parcel pages: a parcel arrived (scanned, typed or tapped), and its hand-over."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields import TelField
from wtforms.validators import Length

from domain import IdentityReason

REASON_CHOICES = [
    (IdentityReason.ID_CARD.value, _l("ID card seen")),
    (IdentityReason.KNOWN_VILLAGER.value, _l("A villager I know")),
    (IdentityReason.FAMILY_MEMBER.value, _l("A family member I know")),
]


class ArrivedForm(FlaskForm):
    """A parcel arrived: its number scanned (a USB scanner types it and presses Enter), typed, or
    sent by the "arrived" button beside it."""

    key = HiddenField()
    number = StringField(
        _l("Parcel number"),
        validators=[Length(max=40)],
        render_kw={"maxlength": 40, "autocomplete": "off", "inputmode": "numeric", "autocapitalize": "off"},
    )


class HandoverForm(FlaskForm):
    """Hand a parcel over: the pickup code, or (code lost) how the agent knows who collects it."""

    key = HiddenField()
    pickup_code = TelField(
        _l("Pickup code"),
        validators=[Length(max=16)],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 16},
    )
    reason = RadioField(
        _l("No code: how I know who collects it"), choices=REASON_CHOICES, validate_choice=False
    )
    reason_text = TextAreaField(
        _l("Details (optional)"), validators=[Length(max=200)], render_kw={"maxlength": 200, "rows": 2}
    )
    collected_by = StringField(
        _l("Name of the person collecting"), validators=[Length(max=40)], render_kw={"maxlength": 40}
    )
    cash_received = BooleanField(_l("I received the cash"))
