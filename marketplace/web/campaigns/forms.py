"""Forms of the campaign pages. They carry what the user typed (and keep it on errors); the
services (services/campaigns/manage.py) parse yuan, percentages, tiers and China-time moments and
check every rule."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length

from domain import Campaign, TierBasisKind, clock
from services.campaigns.manage import CampaignInput, SignupInput

DECIMAL_ATTRS = {"inputmode": "decimal", "autocomplete": "off"}
NUMBER_ATTRS = {"inputmode": "numeric", "autocomplete": "off"}
# <input type="datetime-local" step="1">: the moment to the second, typed in China's time.
MOMENT_ATTRS = {"type": "datetime-local", "step": "1"}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"

# Service field → form field, where the form takes the value in other units.
CAMPAIGN_FIELDS = {
    "platform_bps": "platform_percent",
    "price_platform_bps": "price_platform_percent",
    "budget_fen": "budget_yuan",
    "percent_off_bps": "percent_off",
    "first_order_off_fen": "first_order_off_yuan",
}
SIGNUP_FIELDS = {"campaign_price_fen": "campaign_price"}


def yuan_text(fen: int | None) -> str:
    """1250 → "12.50" (integer arithmetic, no float)."""
    if fen is None:
        return ""
    return f"{fen // 100}.{fen % 100:02d}"


def tiers_text(tiers: Any) -> str:
    """[[10000, 2000], [20000, 5000]] → "满100减20, 满200减50" (whole yuan without decimals)."""

    def y(fen: int) -> str:
        return str(fen // 100) if fen % 100 == 0 else yuan_text(fen)

    return ", ".join(f"满{y(int(t))}减{y(int(o))}" for t, o in tiers or ())


class CampaignForm(FlaskForm):
    """Every field of a campaign (CampaignInput), in the admins' units: yuan, whole percent."""

    name = StringField(_l("Campaign name"), render_kw={"maxlength": 60, "autocomplete": "off"})
    description = TextAreaField(
        _l("Description (optional)"), validators=[Length(max=2000)], render_kw={"maxlength": 2000, "rows": 3}
    )
    starts_at = StringField(_l("Starts (Beijing time)"), render_kw=MOMENT_ATTRS)
    ends_at = StringField(_l("Ends (Beijing time)"), render_kw=MOMENT_ATTRS)
    county_codes = SelectMultipleField(
        _l("Counties (none chosen: all of Guangdong)"),
        choices=[],
        validate_choice=False,  # the service checks the codes and says which are wrong
        description=_l("Hold Ctrl (or long-press on a phone) to choose several."),
    )
    category_ids = SelectMultipleField(
        _l("Categories (none chosen: all)"),
        choices=[],
        validate_choice=False,
        description=_l("Hold Ctrl (or long-press on a phone) to choose several."),
    )
    certified_only = BooleanField(_l("Certified products only (绿色、有机、地理标志)"))
    gi_only = BooleanField(_l("Geographical Indication (地理标志) products only"))
    percent_off = StringField(
        _l("Percent off for products without their own campaign price (optional)"), render_kw=NUMBER_ATTRS
    )
    tiers = StringField(
        _l("满减 tiers (optional)"),
        render_kw={"placeholder": "满100减20, 满200减50", "autocomplete": "off"},
    )
    tier_basis = RadioField(
        _l("Tiers count"),
        choices=[
            (TierBasisKind.SELLER.value, _l("Per seller")),
            (TierBasisKind.CAMPAIGN.value, _l("Across the campaign")),
        ],
        default=TierBasisKind.SELLER.value,
        validate_choice=False,
    )
    first_order_off_yuan = StringField(
        _l("First-order discount, in yuan (optional)"), render_kw=DECIMAL_ATTRS
    )
    platform_percent = StringField(
        _l("Platform's share of the 满减 and first-order discounts, in %"),
        default="0",
        render_kw=NUMBER_ATTRS,
    )
    price_platform_percent = StringField(
        _l("Platform's share of the campaign prices, in %"), default="0", render_kw=NUMBER_ATTRS
    )
    budget_yuan = StringField(_l("Subsidy budget, in yuan"), default="0", render_kw=DECIMAL_ATTRS)

    def set_choices(self, counties: list[tuple[Any, list[Any]]], groups: list[tuple[Any, list[Any]]]) -> None:
        self.county_codes.choices = {  # type: ignore[assignment]
            city.name: [(c.code, c.name) for c in members] for city, members in counties
        }
        self.category_ids.choices = {  # type: ignore[assignment]
            top.name: [(str(c.id), c.name) for c in children] for top, children in groups
        }

    def fill_from(self, campaign: Campaign) -> None:
        """Show a campaign's current values (a GET of the edit page)."""
        self.name.data = campaign.name
        self.description.data = campaign.description
        self.starts_at.data = clock.local(campaign.starts_at).strftime(LOCAL_FORMAT)
        self.ends_at.data = clock.local(campaign.ends_at).strftime(LOCAL_FORMAT)
        self.county_codes.data = list(campaign.county_codes)
        self.category_ids.data = [str(c) for c in campaign.category_ids]
        self.certified_only.data = campaign.certified_only
        self.gi_only.data = campaign.gi_only
        self.percent_off.data = str(campaign.percent_off_bps // 100) if campaign.percent_off_bps else ""
        self.tiers.data = tiers_text(campaign.tiers)
        self.tier_basis.data = campaign.tier_basis.value
        self.first_order_off_yuan.data = yuan_text(campaign.first_order_off_fen)
        self.platform_percent.data = str(campaign.platform_bps // 100)
        self.price_platform_percent.data = str(campaign.price_platform_bps // 100)
        self.budget_yuan.data = yuan_text(campaign.budget_fen)

    def campaign_input(self) -> CampaignInput:
        return CampaignInput(
            name=self.name.data or "",
            description=self.description.data or "",
            starts_at=self.starts_at.data or "",
            ends_at=self.ends_at.data or "",
            county_codes=[c for c in self.county_codes.data or [] if c],
            category_ids=[c for c in self.category_ids.data or [] if c],
            certified_only=bool(self.certified_only.data),
            gi_only=bool(self.gi_only.data),
            platform_percent=self.platform_percent.data or "0",
            price_platform_percent=self.price_platform_percent.data or "0",
            budget_yuan=self.budget_yuan.data or "0",
            percent_off=self.percent_off.data or "",
            tiers=self.tiers.data or "",
            tier_basis=self.tier_basis.data or TierBasisKind.SELLER.value,
            first_order_off_yuan=self.first_order_off_yuan.data or "",
        )


class CancelForm(FlaskForm):
    reason = StringField(_l("Why it is cancelled"), render_kw={"maxlength": 200, "autocomplete": "off"})


class DecideForm(FlaskForm):
    """Approve, or reject with the reason the seller sees (the pressed button's value)."""

    decision = HiddenField()
    reason = StringField(
        _l("Reason (required to reject)"), render_kw={"maxlength": 200, "autocomplete": "off"}
    )


class SignupForm(FlaskForm):
    product_id = SelectField(_l("Product"), choices=[], validate_choice=False)
    campaign_price = StringField(_l("Campaign price of one unit, in yuan"), render_kw=DECIMAL_ATTRS)
    quota = StringField(_l("Flash-sale quota in units (optional)"), render_kw=NUMBER_ATTRS)
    per_buyer_limit = StringField(_l("Limit per buyer (optional)"), render_kw=NUMBER_ATTRS)

    def signup_input(self) -> SignupInput:
        return SignupInput(
            campaign_price_yuan=self.campaign_price.data or "",
            quota=self.quota.data or "",
            per_buyer_limit=self.per_buyer_limit.data or "",
        )


class ConfirmForm(FlaskForm):
    """A button that changes something (publish, withdraw): the CSRF token only."""
