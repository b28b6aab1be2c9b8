"""Forms of the sell pages. They carry what the user typed (and keep it on errors); prices, stocks
and weights are parsed exactly by services.catalog, and the services check every rule."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields import TelField
from wtforms.validators import InputRequired, Length, Optional

from domain import CertificationKind, SellerKind, StorageClass, Unit
from marketplace.web.auth.forms import CODE_ATTRS, PHONE_ATTRS
from services import catalog
from services.catalog import ListingInput
from services.errors import ValidationError
from services.validation import id_or_none

_required = InputRequired(message=_l("This field is required."))

# Steps of the "new listing" form, by the fields the services know.
STEP_FIELDS = {
    1: ("category_id", "name", "description", "unit", "net_weight_g"),
    2: (
        "price_fen",
        "stock",
        "storage_class",
        "harvest_start",
        "harvest_end",
        "presale",
        "ships_from",
        "certifications",
    ),
}
# Service field → form field, where the form takes the value as text in other units.
FORM_FIELD = {"price_fen": "price", "net_weight_g": "net_weight"}
SERVICE_FIELD = {v: k for k, v in FORM_FIELD.items()}
CERT_FIELDS = {
    CertificationKind.GREEN_FOOD: "cert_green_food",
    CertificationKind.ORGANIC: "cert_organic",
    CertificationKind.GEOGRAPHICAL_INDICATION: "cert_geographical_indication",
}
DECIMAL_ATTRS = {"inputmode": "decimal", "autocomplete": "off"}


def unit_choices() -> list[tuple[str, Any]]:
    return [
        (Unit.JIN.value, _l("jin (斤, 500 g)")),
        (Unit.KG.value, _l("kg (公斤)")),
        (Unit.BOX.value, _l("box (箱)")),
        (Unit.BAG.value, _l("bag (袋)")),
        (Unit.PIECE.value, _l("piece (个)")),
    ]


def storage_choices() -> list[tuple[str, Any]]:
    return [
        (StorageClass.AMBIENT.value, _l("Room temperature")),
        (StorageClass.CHILLED.value, _l("Chilled, 0 to 4 °C")),
        (StorageClass.FROZEN.value, _l("Frozen, −18 °C or colder")),
    ]


def yuan_text(fen: int | None) -> str:
    """1250 → "12.50": a price as the seller types it (integer arithmetic, no float)."""
    if fen is None:
        return ""
    return f"{fen // 100}.{fen % 100:02d}"


class _DateField(DateField):
    """A date from <input type="date"> (or typed as 2026-07-01), with a message in our words."""

    def __init__(self, label: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [Optional()])
        kwargs.setdefault("render_kw", {"type": "date"})
        super().__init__(label, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Enter a date such as 2026-07-01.")) from None


def _int_or_none(value: object) -> int | None:
    if value in (None, ""):
        return None
    found = id_or_none(value)
    return -1 if found is None else found  # -1: no such category, the service says so


class ListingForm(FlaskForm):
    """Every field of a listing. The "new" page shows it in steps; the edit page all at once."""

    key = HiddenField()  # the idempotency key, made when the form is first shown
    step = HiddenField()
    # Step 1: what
    category_id = SelectField(_l("Category"), coerce=_int_or_none, validate_choice=False)
    name = StringField(_l("Product name"), render_kw={"maxlength": 60, "autocomplete": "off"})
    description = TextAreaField(
        _l("Description (optional)"), validators=[Length(max=2000)], render_kw={"maxlength": 2000, "rows": 3}
    )
    unit = RadioField(
        _l("Sold by the"), choices=unit_choices(), default=Unit.JIN.value, validate_choice=False
    )
    net_weight = StringField(_l("Net weight of one unit"), render_kw=DECIMAL_ATTRS)
    weight_unit = SelectField(
        _l("in"),
        choices=[("jin", _l("jin")), ("kg", _l("kg")), ("g", _l("g"))],
        default="jin",
        validate_choice=False,
    )
    # Step 2: price and stock, storage, harvest, certifications
    price = StringField(_l("Price of one unit, in yuan"), render_kw=DECIMAL_ATTRS)
    stock = StringField(
        _l("How many units you can sell"), render_kw={"inputmode": "numeric", "autocomplete": "off"}
    )
    storage_class = RadioField(
        _l("Keep it"), choices=storage_choices(), default=StorageClass.AMBIENT.value, validate_choice=False
    )
    harvest_start = _DateField(_l("Harvest from"))
    harvest_end = _DateField(_l("Harvest until"))
    presale = BooleanField(_l("Pre-sale: buyers order before the harvest"))
    ships_from = _DateField(_l("Ships from"))
    cert_green_food = StringField(_l("Green Food (绿色食品) certificate number"), render_kw={"maxlength": 64})
    cert_organic = StringField(_l("Organic (有机) certificate number"), render_kw={"maxlength": 64})
    cert_geographical_indication = StringField(
        _l("Geographical Indication (地理标志) certificate number"), render_kw={"maxlength": 64}
    )
    certifications = HiddenField()  # never sent: carries the services' message for the group

    def fill_from(self, product: Any) -> None:
        """Show a listing's current values (a GET of the edit page)."""
        self.category_id.data = product.category_id
        self.name.data = product.name
        self.description.data = product.description
        self.unit.data = product.unit.value
        if product.unit.value not in catalog.UNIT_WEIGHT_G:
            grams = product.net_weight_g
            if grams % 500 == 0:
                self.net_weight.data, self.weight_unit.data = str(grams // 500), "jin"
            else:
                self.net_weight.data, self.weight_unit.data = str(grams), "g"
        self.price.data = yuan_text(product.price_fen)
        self.stock.data = str(product.stock)
        self.storage_class.data = product.storage_class.value
        self.harvest_start.data = product.harvest_start
        self.harvest_end.data = product.harvest_end
        self.presale.data = product.presale
        self.ships_from.data = product.ships_from
        for cert in product.certifications:
            self[CERT_FIELDS[cert.kind]].data = cert.number

    def listing_input(self) -> tuple[ListingInput, dict[str, list[Any]]]:
        """The listing as the services take it, and the errors of values that did not parse
        (keyed by the services' field names; such a value is sent as an invalid placeholder)."""
        errors: dict[str, list[Any]] = {}

        def parse(field: str, fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except ValidationError as exc:
                errors[field] = list(exc.field_errors.get(field) or [exc.message])
                return None

        price = parse("price_fen", catalog.parse_yuan, self.price.data)
        stock = parse("stock", catalog.parse_count, self.stock.data)
        weight = None
        if self.unit.data in (Unit.BOX, Unit.BAG, Unit.PIECE) and not (self.net_weight.data or "").strip():
            errors["net_weight_g"] = [_l("Enter the net weight of one unit, such as 5 jin.")]
        elif (self.unit.data or "") not in catalog.UNIT_WEIGHT_G:
            weight = parse(
                "net_weight_g", catalog.parse_weight_g, self.net_weight.data, self.weight_unit.data
            )
        certs = tuple(
            (kind, (self[name].data or "").strip())
            for kind, name in CERT_FIELDS.items()
            if (self[name].data or "").strip()
        )
        data = ListingInput(
            name=self.name.data or "",
            category_id=self.category_id.data if self.category_id.data is not None else -1,
            unit=self.unit.data or "",  # type: ignore[arg-type]  # the service says if it is no unit
            price_fen=price if price is not None else -1,
            stock=stock if stock is not None else -1,
            description=self.description.data or "",
            net_weight_g=weight,
            storage_class=self.storage_class.data or "",  # type: ignore[arg-type]
            harvest_start=self.harvest_start.data,
            harvest_end=self.harvest_end.data,
            presale=bool(self.presale.data),
            ships_from=self.ships_from.data,
            certifications=certs,
        )
        return data, errors


class PriceStockForm(FlaskForm):
    """The one-tap change on "my listings"."""

    price = StringField(_l("Price (yuan)"), render_kw=DECIMAL_ATTRS)
    stock = StringField(_l("Stock"), render_kw={"inputmode": "numeric", "autocomplete": "off"})


class StatusForm(FlaskForm):
    status = HiddenField()
    next = HiddenField()


class SellerProfileForm(FlaskForm):
    kind = RadioField(
        _l("I sell as"),
        choices=[
            (SellerKind.FARMER.value, _l("A farmer (my own produce)")),
            (SellerKind.COOPERATIVE.value, _l("A cooperative")),
        ],
        default=SellerKind.FARMER.value,
        validate_choice=False,
    )
    shop_name = StringField(
        _l("Shop name (shown to buyers)"), render_kw={"maxlength": 60, "autocomplete": "organization"}
    )
    intro = TextAreaField(
        _l("About you and your farm (optional)"), validators=[Length(max=500)], render_kw={"maxlength": 500}
    )
    next = HiddenField()


class EnrollFarmerForm(FlaskForm):
    """An agent enrolls a farmer: the farmer's phone and "send code", then the code the farmer
    reads out, their name and village."""

    phone = TelField(_l("The farmer's mobile number"), validators=[_required], render_kw=PHONE_ATTRS)
    send_code = SubmitField(_l("Send the consent code"))
    code = TelField(_l("The code the farmer reads out"), validators=[_required], render_kw=CODE_ATTRS)
    display_name = StringField(
        _l("The farmer's name"), validators=[_required, Length(max=40)], render_kw={"maxlength": 40}
    )
    village_code = SelectField(_l("Village"), validate_choice=False)
    submit = SubmitField(_l("Enroll the farmer"))


class ConfirmForm(FlaskForm):
    """A button that changes something (remove a photo, end a consent): the CSRF token only."""

    next = HiddenField()
