"""Forms of the villager pages: what the agent typed, kept on errors; services.villagers checks
every rule."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields import TelField
from wtforms.validators import InputRequired, Length

from domain import ConsentMethod
from marketplace.web.auth.forms import CODE_ATTRS

_required = InputRequired(message=_l("This field is required."))

CONSENT_CHOICES = [
    (ConsentMethod.IN_PERSON.value, _l("Said so in person")),
    (ConsentMethod.PAPER.value, _l("Signed the paper form")),
    (ConsentMethod.SMS.value, _l("Read out the SMS code")),
]


class VillagerForm(FlaskForm):
    """An agent registers a villager; `key` makes a resent form register them once."""

    key = HiddenField()
    name = StringField(_l("Full name"), validators=[_required, Length(max=40)], render_kw={"maxlength": 40})
    village_code = SelectField(_l("Village"), validate_choice=False)
    phone = TelField(
        _l("Mobile number (optional, may be the family's)"),
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 11},
    )
    notes = TextAreaField(_l("Notes"), validators=[Length(max=200)], render_kw={"maxlength": 200, "rows": 2})
    consent_method = RadioField(
        _l("How the villager agreed"), choices=CONSENT_CHOICES, default=ConsentMethod.IN_PERSON.value
    )
    code = TelField(_l("The code read out from the text message"), render_kw=CODE_ATTRS)
    send_code = SubmitField(_l("Send the consent code"))
    submit = SubmitField(_l("Register the villager"))


class NotesForm(FlaskForm):
    notes = TextAreaField(_l("Notes"), validators=[Length(max=200)], render_kw={"maxlength": 200, "rows": 2})
    submit = SubmitField(_l("Save the notes"))
