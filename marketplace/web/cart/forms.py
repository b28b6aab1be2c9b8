"""Forms of the cart and checkout pages. They carry what the buyer typed (and keep it on errors);
quantities, addresses, delivery and payment choices are checked by services.orders, and prices
are never read from a form: the server prices the cart itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField
from wtforms.fields import TelField

from marketplace.web.auth.forms import PHONE_ATTRS
from marketplace.web.forms import form_id, typed_quantity
from services.errors import ValidationError

QUANTITY_ATTRS = {"inputmode": "numeric", "autocomplete": "off", "maxlength": 4, "pattern": "[0-9]*"}


class QuantityForm(FlaskForm):
    """How many of one product: adding to the cart, or changing a cart line."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST; one form per cart line needs no second token

    quantity = StringField(_l("Quantity"), render_kw=QUANTITY_ATTRS)


def delivery_choices() -> list[tuple[str, Any]]:
    return [("home", _l("Delivered to my door")), ("pickup", _l("I pick it up at a service point"))]


def payment_choices() -> list[tuple[str, Any]]:
    return [("card", _l("Bank card")), ("wechat_pay", _l("WeChat Pay")), ("alipay", _l("Alipay"))]


class CheckoutForm(FlaskForm):
    """Delivery, address or pickup point, and how to pay. The village picker's lists are plain
    <select>s named by level (city, county, town, village), as on the seller profile."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST

    # Made when the page is first shown: a double tap or a resent form places one order.
    key = HiddenField()
    # The cart as the page showed it ("product:quantity,..."): a resent form asks for the same
    # goods. Prices are not in it; the server prices them again.
    items = HiddenField()
    # What the goods cost on the page shown (after campaign discounts): if a campaign started or
    # ended, or a quota ran out since, the order is refused with the new price (PriceChanged).
    items_fen = HiddenField()
    # The flash-sale prices among them ("item,item"): refused at once when one has sold out.
    flash_items = HiddenField()
    delivery = RadioField(
        _l("How it reaches you"), choices=delivery_choices(), default="home", validate_choice=False
    )
    # A saved address's id, or "new" for the fields below.
    address_id = RadioField(_l("Deliver to"), choices=[], validate_choice=False)
    recipient = StringField(_l("Recipient"), render_kw={"maxlength": 40, "autocomplete": "name"})
    phone = TelField(_l("Recipient's mobile number"), render_kw=PHONE_ATTRS)
    detail = StringField(
        _l("Street, house number, landmark"), render_kw={"maxlength": 120, "autocomplete": "street-address"}
    )
    save_address = BooleanField(_l("Save this address for next time"), default=True)
    division_code = HiddenField()  # never sent: carries the services' message for the village picker
    pickup_county = SelectField(_l("County"), choices=[], default="", validate_choice=False)
    pickup_node_id = RadioField(_l("Service point"), choices=[], validate_choice=False)
    pickup_recipient = StringField(_l("Who collects it"), render_kw={"maxlength": 40, "autocomplete": "name"})
    pickup_phone = TelField(_l("Their mobile number (for the pickup code)"), render_kw=PHONE_ATTRS)
    payment_method = RadioField(
        _l("Pay with"), choices=payment_choices(), default="card", validate_choice=False
    )


def encode_items(items: Mapping[int, int]) -> str:
    return ",".join(f"{product_id}:{quantity}" for product_id, quantity in items.items())


def decode_items(raw: str | None) -> dict[int, int]:
    """The posted cart ("product:quantity,..."), each id and quantity checked as typed input;
    services.orders.cart.parse_items judges the whole. A ValidationError on "items" otherwise."""
    pairs: dict[int, int] = {}
    try:
        for part in (raw or "").split(","):
            if part.strip():
                product_id, _sep, quantity = part.partition(":")
                pairs[form_id(product_id, "items")] = typed_quantity(quantity)
    except ValidationError as exc:
        messages = [m for ms in exc.field_errors.values() for m in ms] or [exc.message]
        raise ValidationError(exc.message, field_errors={"items": messages}) from None
    return pairs
