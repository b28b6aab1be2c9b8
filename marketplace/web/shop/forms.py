"""The shop's filter form: a GET form (no CSRF token), prices typed in yuan.

The form carries what the buyer chose and shows errors; services.browse checks the values.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField

from services import catalog
from services.browse import FilterOptions
from services.errors import ValidationError

SORTS = ("new", "price_asc", "price_desc", "sales")


def certification_choices() -> list[tuple[str, Any]]:
    return [
        ("", _l("Any")),
        ("geographical_indication", _l("Geographical indication")),
        ("green_food", _l("Green food")),
        ("organic", _l("Organic")),
    ]


def storage_choices() -> list[tuple[str, Any]]:
    return [
        ("", _l("Any")),
        ("ambient", _l("Room temperature")),
        ("chilled", _l("Chilled")),
        ("frozen", _l("Frozen")),
    ]


class FilterForm(FlaskForm):
    class Meta:
        csrf = False

    county = SelectField(_l("County of origin"), choices=[], default="", validate_choice=False)
    certification = SelectField(_l("Certification"), choices=[], default="", validate_choice=False)
    storage = SelectField(_l("Storage"), choices=[], default="", validate_choice=False)
    price_min = StringField(_l("Lowest price (¥)"))
    price_max = StringField(_l("Highest price (¥)"))
    sort = HiddenField()

    def __init__(self, options: FilterOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.county.choices = [("", _l("All counties"))] + [
            (c.code, f"{c.city_name}{c.name} ({c.count})") for c in options.counties
        ]
        self.certification.choices = certification_choices()
        self.storage.choices = storage_choices()

    def filters(self) -> dict[str, Any]:
        """The chosen filters as services.browse takes them (prices in fen).

        Raises ValidationError (with field errors) for a price that is not an amount in yuan.
        """
        errors: dict[str, list[Any]] = {}
        prices: dict[str, int | None] = {}
        for name in ("price_min", "price_max"):
            raw = (getattr(self, name).data or "").strip()
            try:
                prices[name] = catalog.parse_yuan(raw, name) if raw else None
            except ValidationError as exc:
                errors.update(exc.field_errors)
        if errors:
            raise ValidationError(_l("Please correct the marked fields."), field_errors=errors)
        return {
            "county_code": self.county.data or None,
            "certification": self.certification.data or None,
            "storage_class": self.storage.data or None,
            "price_min_fen": prices["price_min"],
            "price_max_fen": prices["price_max"],
        }

    @property
    def active(self) -> bool:
        return any(
            (f.data or "").strip()
            for f in (self.county, self.certification, self.storage, self.price_min, self.price_max)
        )
