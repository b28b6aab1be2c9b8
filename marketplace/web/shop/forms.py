"""The shop's filter form: a GET form (no CSRF token), prices typed in yuan.

The form carries what the buyer chose and shows errors; services.browse checks the values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import HiddenField, SelectField, StringField, widgets

from services import catalog
from services.browse import CampaignOption, FilterOptions
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


class _Select(widgets.Select):
    """WTForms' select, its options written without a dict sorted for each: the same HTML
    (`selected` before `value`, both escaped alike), for the county list's 40-odd options."""

    @classmethod
    def render_option(cls, value: Any, label: Any, selected: bool, **kwargs: Any) -> Markup:
        if kwargs or isinstance(value, bool):
            return super().render_option(value, label, selected, **kwargs)  # type: ignore[no-any-return]
        selected_ = "selected " if selected else ""
        return Markup(f'<option {selected_}value="{escape(value)}">{escape(label)}</option>')  # noqa: S704 (escaped)


@lru_cache(maxsize=8)
def _texts(locale: str) -> dict[str, Any]:
    """The form's labels and fixed choices in one language, looked up once per process (called
    with the request's own locale, so the lazy texts resolve in it)."""
    return {
        "labels": {name: str(field.args[0]) for name, field in _LABELLED.items()},
        "all_counties": str(_l("All counties")),
        "all_campaigns": str(_l("All campaigns")),
        "certification": [(v, str(label)) for v, label in certification_choices()],
        "storage": [(v, str(label)) for v, label in storage_choices()],
    }


def campaign_choices(campaigns: list[CampaignOption], texts: dict[str, Any]) -> list[tuple[str, str]]:
    """The 活动 choice: any, then the campaigns running now (and a chosen one that is not)."""
    choices = [("", texts["all_campaigns"])]
    for c in campaigns:
        choices.append((str(c.id), c.name if c.running else str(_l("%(name)s (not on now)", name=c.name))))
    return choices


class _GetForm(FlaskForm):
    """A GET form of the shop's lists, with the 活动 (campaign) choice."""

    campaign_id = SelectField(_l("Campaign"), choices=[], default="", validate_choice=False, widget=_Select())

    class Meta:
        csrf = False

        def get_translations(self, form: Any) -> None:
            """No WTForms messages: the form is never validated (services.browse checks the
            values, in our own words), and Flask-WTF would read WTForms' catalogue from disk
            for every request that builds one."""
            return None

    def _offer_campaigns(self, campaigns: list[CampaignOption], texts: dict[str, Any]) -> None:
        self.campaign_id.label.text = texts["labels"]["campaign_id"]
        self.campaign_id.choices = campaign_choices(campaigns, texts)

    @property
    def campaigns_offered(self) -> bool:
        """Whether the 活动 choice is shown: a campaign runs (or one is chosen), or an error."""
        return len(self.campaign_id.choices or ()) > 1 or bool(self.campaign_id.errors)


class CampaignForm(_GetForm):
    """The search results' filter: the campaign only (the query and the order ride along)."""

    def __init__(self, campaigns: list[CampaignOption], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._offer_campaigns(campaigns, _texts(str(get_locale())))


class FilterForm(_GetForm):
    county = SelectField(
        _l("County of origin"), choices=[], default="", validate_choice=False, widget=_Select()
    )
    certification = SelectField(
        _l("Certification"), choices=[], default="", validate_choice=False, widget=_Select()
    )
    storage = SelectField(_l("Storage"), choices=[], default="", validate_choice=False, widget=_Select())
    price_min = StringField(_l("Lowest price (¥)"))
    price_max = StringField(_l("Highest price (¥)"))
    sort = HiddenField()

    def __init__(self, options: FilterOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        texts = _texts(str(get_locale()))
        for name, text in texts["labels"].items():
            self[name].label.text = text
        self.county.choices = [("", texts["all_counties"])] + [
            (c.code, f"{c.city_name}{c.name} ({c.count})") for c in options.counties
        ]
        self.certification.choices = texts["certification"]
        self.storage.choices = texts["storage"]
        self._offer_campaigns(options.campaigns, texts)

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
            "campaign_id": self.campaign_id.data or None,
        }

    @property
    def active(self) -> bool:
        return any(
            (f.data or "").strip()
            for f in (
                self.campaign_id,
                self.county,
                self.certification,
                self.storage,
                self.price_min,
                self.price_max,
            )
        )


_LABELLED = {
    name: field
    for name, field in (*vars(_GetForm).items(), *vars(FilterForm).items())
    if name in ("campaign_id", "county", "certification", "storage", "price_min", "price_max")
}
