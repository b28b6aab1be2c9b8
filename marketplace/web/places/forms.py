"""Forms of the places pages. The services validate; the forms carry input and keep it on errors."""

from __future__ import annotations

from datetime import time
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

# Every field of the details form, in the order the services know them.
DETAIL_FIELDS = (
    "name",
    "address",
    "phone",
    "opening_hours",
    "description",
    "has_cold_storage",
    "active",
    "longitude",
    "latitude",
    "delivery_days",
    "cutoff_time",
    "ready_time",
)


def weekday_choices() -> list[tuple[str, Any]]:
    return [
        ("1", _l("Mon")),
        ("2", _l("Tue")),
        ("3", _l("Wed")),
        ("4", _l("Thu")),
        ("5", _l("Fri")),
        ("6", _l("Sat")),
        ("7", _l("Sun")),
    ]


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes (a phone's multi-select is hard to use)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TimeOfDayField(StringField):
    """A time of day as "22:00": a phone shows its time picker, the service reads the text."""

    def _value(self) -> str:
        if isinstance(self.data, time):
            return self.data.strftime("%H:%M")
        return str(self.data or "")


class CountyFilterForm(FlaskForm):
    """The public directory's county filter: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    county = SelectField(_l("County"), choices=[], default="")

    def __init__(self, counties: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.county.choices = [("", _l("All counties"))] + [
            (c.code, f"{c.parent.name if c.parent else ''} {c.name}".strip()) for c in counties
        ]


class KindFilterForm(FlaskForm):
    class Meta:
        csrf = False

    kind = SelectField(
        _l("Show"),
        choices=[
            ("", _l("Everything")),
            ("county_center", _l("County service centers")),
            ("village_point", _l("Village service points")),
            ("distribution_center", _l("Distribution centers")),
        ],
        default="",
    )


class NodeForm(FlaskForm):
    """A node's details. Fields the actor may not change are removed before rendering."""

    name = StringField(_l("Name"))
    address = StringField(_l("Address"))
    phone = StringField(
        _l("Business phone"),
        description=_l("Shown to the public. A mobile number or a landline such as 0753-2222333."),
    )
    opening_hours = StringField(_l("Opening hours"), description=_l("For example 08:00-20:00."))
    description = TextAreaField(_l("Description"))
    has_cold_storage = BooleanField(_l("Has cold storage"))
    active = BooleanField(_l("Open (shown to the public)"))
    longitude = StringField(_l("Longitude"), description=_l("Leave empty to use the county's position."))
    latitude = StringField(_l("Latitude"), description=_l("For example 24.2659."))
    delivery_days = CheckboxesField(
        _l("Delivery days"),
        choices=weekday_choices(),
        default=list("1234567"),
        validate_choice=False,  # the service checks the days
        description=_l("The days the vehicle comes (a center or DC: the days its runs leave)."),
    )
    cutoff_time = TimeOfDayField(
        _l("Order cut-off"),
        render_kw={"type": "time"},
        default="22:00",
        description=_l("Orders placed by then go with the next delivery day's run, e.g. 22:00."),
    )
    ready_time = TimeOfDayField(
        _l("Ready for pickup from"),
        render_kw={"type": "time"},
        default="14:00",
        description=_l("On a delivery day, parcels can be collected from then, e.g. 14:00."),
    )
    served_county_codes = SelectMultipleField(
        _l("Counties served"),
        choices=[],
        validate_choice=False,  # the service checks the codes and says which are wrong
        description=_l("Hold Ctrl (or long-press on a phone) to choose several."),
    )
    division_code = HiddenField()

    def limit_to(self, fields: frozenset[str] | set[str], *, served_counties: bool, new: bool) -> None:
        """Keep only the fields this actor may change (and the division on the 'new' page)."""
        for name in DETAIL_FIELDS:
            if name not in fields or (new and name == "active"):
                del self[name]
        if not served_counties:
            del self["served_county_codes"]
        if not new:
            del self["division_code"]

    def set_county_choices(self, groups: list[tuple[Any, list[Any]]]) -> None:
        if "served_county_codes" in self:
            self.served_county_codes.choices = {
                city.name: [(c.code, c.name) for c in counties] for city, counties in groups
            }

    def details(self) -> dict[str, Any]:
        """What the user sent, for the service, limited to the fields on the form."""
        data = {name: self[name].data for name in DETAIL_FIELDS if name in self}
        for name in ("delivery_days", "cutoff_time", "ready_time"):
            if name in self and not self[name].raw_data:
                del data[name]  # not on the form that posted: left as it is
        if "delivery_days" in data:  # the hidden "" that makes "no day ticked" an error
            data["delivery_days"] = [d for d in data["delivery_days"] if d]
        if "division_code" in self:
            data["division_code"] = self.division_code.data
        return data

    def served(self) -> list[str] | None:
        return list(self["served_county_codes"].data or []) if "served_county_codes" in self else None
