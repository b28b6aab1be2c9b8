"""The scan form: the node, what happens to the parcel, its label as a USB scanner types it (or
the camera reads it), a note for an exception."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import Length

from domain import ScanKind

KIND_CHOICES = [
    (ScanKind.ARRIVED.value, _l("Arrived")),
    (ScanKind.DEPARTED.value, _l("Departed")),
    (ScanKind.DELIVERED.value, _l("Delivered at the door")),
    (ScanKind.EXCEPTION.value, _l("Exception")),
]


class ScanForm(FlaskForm):
    key = HiddenField()
    scanned_at = HiddenField()  # set by the page's script when the scan is made (an offline scan)
    node_id = SelectField(_l("Where I scan"), coerce=str, validate_choice=False)
    kind = RadioField(_l("What happens"), choices=KIND_CHOICES, validate_choice=False)
    label = StringField(
        _l("Parcel label"),
        validators=[Length(max=40)],
        render_kw={
            "maxlength": 40,
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
        },
    )
    # A departure's vehicle (the node's active ones; listed only where there are some).
    vehicle_id = SelectField(_l("Vehicle (for a departure)"), coerce=str, validate_choice=False)
    note = StringField(
        _l("Note (required for an exception)"), validators=[Length(max=200)], render_kw={"maxlength": 200}
    )
