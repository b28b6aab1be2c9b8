"""Forms of a hub's day: a vehicle, a pallet's code scanned at loading, planning, a stop's lock."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField

KIND_CHOICES = [("ambient", _l("Ambient")), ("refrigerated", _l("Refrigerated"))]
SHORT = {"autocomplete": "off", "maxlength": 16}


class VehicleForm(FlaskForm):
    plate = StringField(
        _l("Plate"), render_kw={**SHORT, "placeholder": "粤M·12345", "autocapitalize": "characters"}
    )
    kind = RadioField(_l("Kind"), choices=KIND_CHOICES, default="ambient")
    capacity_kg = StringField(_l("Capacity (kg)"), render_kw={**SHORT, "inputmode": "numeric"})
    capacity_m3 = StringField(_l("Load volume (m³)"), render_kw={**SHORT, "inputmode": "decimal"})
    shift_start = StringField(_l("Shift starts"), render_kw={**SHORT, "placeholder": "07:00"})
    shift_end = StringField(_l("Shift ends"), render_kw={**SHORT, "placeholder": "18:00"})
    active = BooleanField(_l("On the road"), default=True)


class ActionForm(FlaskForm):
    """A button: building pallets, planning the day (both idempotent: a repeat changes nothing
    more, so they carry no key)."""

    day = HiddenField()


class LoadedForm(FlaskForm):
    code = StringField(
        _l("Pallet code"), render_kw={"autocomplete": "off", "maxlength": 32, "autocapitalize": "characters"}
    )


class LockForm(FlaskForm):
    day = HiddenField()
    stop = HiddenField()
    vehicle = SelectField(_l("Vehicle"), choices=[], validate_choice=False)
