"""Marshmallow schemas of the orders API. Shapes only: the services check the rules (quantities,
stock, addresses, who may move what). Money is integer fen in fields ending in _fen; a request
never carries a price (unknown fields are refused), the server prices every order itself.

What depends on the caller (the moves they may make, the phone masked but for the buyer) is
asked of the services by the route, which hands it over with the order (see routes.py)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from domain import (
    AttemptStatus,
    DeliveryMethod,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    StorageClass,
    Unit,
)
from marketplace.api.catalog.schemas import ListedErrorsSchema
from marketplace.api.common import Id, Quantity

_ERRORS = {
    "required": _l("This field is required."),
    "null": _l("This field is required."),
    "invalid": _l("Not a valid value."),
}
_INT_ERRORS = {**_ERRORS, "invalid": _l("Enter a whole number.")}


def _text(**kwargs: Any) -> fields.String:
    return fields.String(error_messages=_ERRORS, **kwargs)


def _int(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, error_messages=_INT_ERRORS, **kwargs)


def _enum(enum: type, **kwargs: Any) -> fields.Enum:
    return fields.Enum(
        enum,
        by_value=True,
        error_messages={**_ERRORS, "unknown": _l("Not one of the allowed values.")},
        **kwargs,
    )


def _reason(**kwargs: Any) -> fields.String:
    return _text(
        validate=validate.Length(max=200, error=_l("At most 200 characters.")),
        metadata={"description": "At most 200 characters, no HTML"},
        **kwargs,
    )


def _key(description: str) -> fields.String:
    return _text(
        load_default=None,
        allow_none=True,
        metadata={"description": description, "pattern": "^[A-Za-z0-9_-]{8,64}$"},
    )


# --- requests ------------------------------------------------------------------------------------


class ItemSchema(ListedErrorsSchema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


def _items(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Nested(ItemSchema),
        error_messages={**_ERRORS, "invalid": _l("Enter a list.")},
        metadata={"description": "Each product once: [{product_id, quantity}]"},
        **kwargs,
    )


def _each_product_once(items: list[dict[str, Any]]) -> None:
    # Runs on what loaded: an item whose product_id failed is reported on its own already.
    ids = [item["product_id"] for item in items if "product_id" in item]
    if len(ids) != len(set(ids)):
        raise ValidationError(_l("List each product once."))


class CartPutSchema(ListedErrorsSchema):
    items = _items(required=True)

    @validates("items")
    def once(self, value: list[dict[str, Any]], **kwargs: Any) -> None:
        _each_product_once(value)


class CartQuerySchema(ListedErrorsSchema):
    delivery = _enum(
        DeliveryMethod,
        load_default=DeliveryMethod.HOME,
        metadata={"description": "Shipping is quoted for home delivery or pickup at a point"},
    )
    pickup_node_id = Id(
        strict=False,
        metadata={"description": "With delivery=pickup: the point each parcel's expected_at is for"},
    )


class AddressSchema(ListedErrorsSchema):
    recipient = _text(required=True, metadata={"example": "陈小姐"})
    phone = _text(required=True, metadata={"example": "13912345678"})
    division_code = _text(required=True, metadata={"description": "The town or village (9 or 12 digits)"})
    detail = _text(required=True, metadata={"description": "Street and number", "example": "幸福路8号"})


class ContactSchema(ListedErrorsSchema):
    recipient = _text(required=True, metadata={"description": "Who collects the parcel"})
    phone = _text(required=True, metadata={"description": "Receives the pickup code"})


class PlaceOrderSchema(ListedErrorsSchema):
    items = _items(required=True)
    expected_total_fen = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        metadata={
            "description": "The total the buyer was shown (GET /cart's total_fen): when prices moved "
            "since (a campaign began or ended, a quota or budget ran out), 409 price_changed, nothing placed"
        },
    )
    flash_items = fields.List(
        Id(),
        load_default=list,
        metadata={
            "description": "The cart's flash_item_ids (GET /cart): the flash-sale prices the buyer "
            "buys at; once one has sold out, 409 campaign_quota_gone at once, nothing placed"
        },
    )
    idempotency_key = _key("Or the Idempotency-Key header: a repeated request returns the same order")
    payment_method = _enum(PaymentMethod, load_default=PaymentMethod.CARD)
    delivery = _enum(DeliveryMethod, load_default=DeliveryMethod.HOME)
    address = fields.Nested(
        AddressSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "home delivery: a new address (or address_id)"},
    )
    address_id = Id(
        load_default=None, allow_none=True, metadata={"description": "One of the buyer's addresses"}
    )
    pickup_node_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "pickup: a village point or distribution center"},
    )
    pickup_contact = fields.Nested(ContactSchema, load_default=None, allow_none=True)

    @validates("items")
    def once(self, value: list[dict[str, Any]], **kwargs: Any) -> None:
        _each_product_once(value)


class PaymentRequestSchema(ListedErrorsSchema):
    payment_method = _text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=100),
        metadata={
            "description": "A PaymentMethod id (pm_…) the client tokenised: confirm with it. "
            "Without it: the PaymentIntent and its client_secret / next_action."
        },
    )
    method = _enum(
        PaymentMethod,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Pay (again) this way, on the same order: a wallet answers with its new "
            "QR code or redirect in next_action; card waits for payment_method (in this request or "
            "a later one). Needs an idempotency key. Not while a payment is processing (409).",
        },
    )
    idempotency_key = _key("With method: or the Idempotency-Key header; a repeated request switches once")

    @validates_schema
    def card_with_card(self, data: dict[str, Any], **kwargs: Any) -> None:
        method = data.get("method")
        if data.get("payment_method") and method is not None and method != PaymentMethod.CARD:
            raise ValidationError(_l("A card goes with method card."), field_name="payment_method")


class SubOrdersQuerySchema(ListedErrorsSchema):
    status = _enum(OrderStatus, load_default=None)
    # A query string is text: "12" is the number 12 here.
    seller_id = Id(
        strict=False,
        load_default=None,
        metadata={"description": "Village agents: a consenting farmer's orders"},
    )
    role = fields.String(
        load_default="seller",
        validate=validate.OneOf(["seller", "staff"], error=_l("Not one of the allowed values.")),
        metadata={"description": "seller: orders to fulfil; staff: the orders in the caller's reach"},
    )


class TransitionSchema(ListedErrorsSchema):
    to = _enum(
        OrderStatus,
        required=True,
        metadata={"description": "accepted, in_transit, ready_for_pickup, out_for_delivery or completed"},
    )
    note = _reason(load_default="")
    pickup_code = _text(
        load_default="",
        validate=validate.Length(max=16),
        metadata={"description": "Staff handing a pickup parcel over (completed): the buyer's 6-digit code"},
    )


class ReasonSchema(ListedErrorsSchema):
    reason = _reason(required=True)


class RefundUnitsSchema(ListedErrorsSchema):
    line_id = Id(required=True, metadata={"description": "An order line of this sub-order (its id)"})
    quantity = Quantity(required=True, metadata={"description": "Units of the line to give back"})


class StaffRefundSchema(ListedErrorsSchema):
    amount_fen = _int(
        load_default=None,
        allow_none=True,
        metadata={
            "minimum": 1,
            "description": "In fen; absent or null: all that is left, or with units what they were paid",
        },
    )
    units = fields.List(
        fields.Nested(RefundUnitsSchema),
        load_default=None,
        allow_none=True,
        error_messages={**_ERRORS, "invalid": _l("Enter a list.")},
        metadata={
            "description": "A refund of units, each line once: [{line_id, quantity}]. The amount is "
            "what those units were paid (campaign discounts included, shipping not); an amount_fen "
            "beside it must be that amount. At most the units not refunded or being refunded"
        },
    )
    reason = _reason(required=True)
    idempotency_key = _key("Or the Idempotency-Key header: a repeated request refunds once")

    @validates("units")
    def each_line_once(self, value: list[dict[str, Any]] | None, **kwargs: Any) -> None:
        if value is None:
            return
        if not value:
            raise ValidationError(_l("Enter the units to refund."))
        ids = [item["line_id"] for item in value if "line_id" in item]
        if len(ids) != len(set(ids)):
            raise ValidationError(_l("List each line once."))


# --- responses -----------------------------------------------------------------------------------


class DiscountSchema(Schema):
    campaign_id = fields.Integer()
    kind = fields.Function(
        lambda d: str(d.kind if hasattr(d, "kind") else d["kind"]),
        metadata={"enum": ["fixed_price", "percent_off", "tier", "first_order"]},
    )
    amount_fen = fields.Function(lambda d: d.amount_fen if hasattr(d, "amount_fen") else d["amount_fen"])


class QuoteLineSchema(Schema):
    product_id = fields.Function(lambda line: line.product.id)
    name = fields.Function(lambda line: line.product.name)
    unit = fields.Function(lambda line: line.product.unit.value, metadata={"enum": [u.value for u in Unit]})
    unit_price_fen = fields.Integer(metadata={"description": "The list price of one unit"})
    quantity = fields.Integer()
    line_fen = fields.Integer(metadata={"description": "At list price"})
    discount_fen = fields.Integer(metadata={"description": "Campaign discounts on the line"})
    paid_fen = fields.Integer(metadata={"description": "What the line costs: line_fen − discount_fen"})
    campaign_unit_fen = fields.Integer(allow_none=True, metadata={"description": "The campaign's unit price"})
    discounted_units = fields.Integer(metadata={"description": "Units at the campaign's unit price"})
    flash_item_id = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The flash sale whose price the line got: send it in the order's flash_items"
        },
    )
    discounts = fields.Function(
        lambda line: DiscountSchema(many=True).dump(line.breakdown.discounts if line.breakdown else [])
    )
    presale = fields.Function(lambda line: line.product.presale)
    problem = fields.Function(
        lambda line: str(line.problem) if line.problem is not None else None,
        metadata={"description": "Why it cannot be bought as asked (sold out, only n left)"},
    )


class SellerGroupSchema(Schema):
    seller_id = fields.Integer()
    shop_name = fields.String()
    lines = fields.List(fields.Nested(QuoteLineSchema))
    items_fen = fields.Function(lambda g: g.price.items_fen)
    shipping_fen = fields.Function(lambda g: g.price.shipping_fen)
    total_fen = fields.Function(lambda g: g.price.total_fen)
    weight_g = fields.Function(lambda g: g.price.weight_g)
    storage_class = fields.Function(lambda g: g.price.storage_class.value)
    expected_at = fields.Function(
        lambda g: _instant(g, "ready_at"),
        metadata={
            "description": "When the parcel, ordered now, can be collected at the pickup point (or is at "
            "the door of the default address); null when unknown (no point chosen, no address, no route)"
        },
    )
    order_by = fields.Function(
        lambda g: _instant(g, "order_by"),
        metadata={"description": "Ordered by then (the cut-off), it is expected at expected_at"},
    )


def _instant(group: Any, name: str) -> str | None:
    estimate = getattr(group, "expected", None)
    return getattr(estimate, name).isoformat() if estimate is not None else None


class CartSchema(Schema):
    items = fields.List(fields.Nested(ItemSchema), metadata={"description": "The saved cart"})
    delivery = fields.Enum(DeliveryMethod, by_value=True)
    groups = fields.List(fields.Nested(SellerGroupSchema), metadata={"description": "One parcel per seller"})
    problems = fields.List(
        fields.Nested(QuoteLineSchema), metadata={"description": "Lines that cannot be bought"}
    )
    list_fen = fields.Integer(metadata={"description": "The goods at list price"})
    discount_fen = fields.Integer(metadata={"description": "Campaign discounts"})
    items_fen = fields.Integer(metadata={"description": "The goods after campaign discounts"})
    shipping_fen = fields.Integer()
    total_fen = fields.Integer()


class OrderLineSchema(Schema):
    id = fields.Integer(metadata={"description": "line_id in a staff refund of units"})
    product_id = fields.Integer()
    name = fields.String()
    unit = fields.Enum(Unit, by_value=True)
    unit_price_fen = fields.Integer(metadata={"description": "The list price of one unit"})
    quantity = fields.Integer()
    line_fen = fields.Integer(metadata={"description": "At list price"})
    discount_fen = fields.Integer()
    paid_fen = fields.Integer(metadata={"description": "What the buyer paid for the line"})
    discounted_units = fields.Integer()
    discounts = fields.List(fields.Nested(DiscountSchema))
    net_weight_g = fields.Integer()
    presale = fields.Boolean()


class OrderEventSchema(Schema):
    from_status = fields.Enum(OrderStatus, by_value=True, allow_none=True)
    to_status = fields.Enum(OrderStatus, by_value=True)
    note = fields.String()
    created_at = fields.DateTime()


class SubOrderSchema(Schema):
    number = fields.String(metadata={"example": "20261126000001234-1"})
    order_number = fields.Function(lambda s: s.order.number)
    seller_id = fields.Integer()
    seller_name = fields.Function(lambda s: s.seller.display_name)
    status = fields.Enum(OrderStatus, by_value=True)
    status_changed_at = fields.DateTime()
    items_fen = fields.Integer()
    shipping_fen = fields.Integer()
    total_fen = fields.Integer()
    refunded_fen = fields.Integer()
    released_fen = fields.Integer(
        metadata={"description": "Authorised but not charged: a pre-sale captured for less (weighed)"}
    )
    weight_g = fields.Integer()
    storage_class = fields.Enum(StorageClass, by_value=True)
    decline_reason = fields.String()
    ready_at = fields.DateTime(allow_none=True, metadata={"description": "The seller packed it"})
    completed_at = fields.DateTime(allow_none=True)
    presale = fields.Function(lambda s: s.order.presale)
    delivery = fields.Function(lambda s: s.order.delivery_method.value)
    pickup_node_id = fields.Function(lambda s: s.order.pickup_node_id)
    recipient = fields.Function(lambda s: s.order.recipient)
    recipient_phone = fields.String(metadata={"description": "Masked but for the buyer"})
    lines = fields.List(fields.Nested(OrderLineSchema))
    moves = fields.List(
        fields.Enum(OrderStatus, by_value=True),
        metadata={"description": "The generic moves (POST …/transition) the caller may make now"},
    )


class SubOrderDetailSchema(SubOrderSchema):
    events = fields.List(
        fields.Nested(OrderEventSchema), metadata={"description": "The history, oldest first"}
    )


class OrderSchema(Schema):
    number = fields.String(metadata={"example": "20261126000001234"})
    created_at = fields.DateTime()
    payment_method = fields.Enum(PaymentMethod, by_value=True)
    payment_status = fields.Function(
        lambda o: o.payment.status.value if o.payment is not None else None,
        metadata={"enum": [s.value for s in PaymentStatus]},
    )
    pay_by = fields.DateTime(metadata={"description": "Unpaid after this moment, the stock goes back"})
    delivery = fields.Enum(DeliveryMethod, by_value=True, attribute="delivery_method")
    pickup_node_id = fields.Integer(allow_none=True)
    pickup_node_name = fields.Function(lambda o: o.pickup_node.name if o.pickup_node is not None else None)
    recipient = fields.String()
    recipient_phone = fields.String(metadata={"description": "Masked but for the buyer"})
    division_code = fields.String()
    division_name = fields.Function(lambda o: o.division.name if o.division is not None else None)
    address_detail = fields.String()
    presale = fields.Boolean()
    items_fen = fields.Integer()
    shipping_fen = fields.Integer()
    total_fen = fields.Integer()
    refunded_fen = fields.Function(lambda o: sum(s.refunded_fen for s in o.sub_orders))
    pickup_code = fields.String(
        allow_none=True,
        metadata={"description": "The buyer's own pickup order, while a parcel waits: its pickup code"},
    )
    sub_orders = fields.List(fields.Nested(SubOrderSchema))


class PaymentAttemptSchema(Schema):
    number = fields.Integer()
    method = fields.Enum(PaymentMethod, by_value=True)
    status = fields.Enum(
        AttemptStatus,
        by_value=True,
        metadata={"description": "failed: declined or abandoned; superseded: the buyer tried again"},
    )
    error = fields.String(metadata={"description": "The gateway's code, when it failed"})
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)


class PaymentSchema(Schema):
    order_number = fields.Function(lambda p: p.order.number)
    method = fields.Enum(PaymentMethod, by_value=True)
    status = fields.Enum(
        PaymentStatus,
        by_value=True,
        metadata={"description": "succeeded: paid; requires_capture: a pre-sale authorised (paid)"},
    )
    amount_fen = fields.Integer()
    amount_received_fen = fields.Integer()
    amount_refunded_fen = fields.Integer()
    currency = fields.String()
    client_secret = fields.String(
        allow_none=True, metadata={"description": "For Stripe.js on the buyer's device"}
    )
    next_action = fields.Dict(
        allow_none=True, metadata={"description": "A 3-D Secure page or a wallet QR code"}
    )
    last_error = fields.String(metadata={"description": "The gateway's code of the last failed attempt"})
    attempts = fields.List(
        fields.Nested(PaymentAttemptSchema),
        metadata={"description": "Every try to pay this order, oldest first"},
    )


class PlacedOrderSchema(OrderSchema):
    """The answer to placing an order: the order and, for its buyer, the payment to finish."""

    payment = fields.Nested(PaymentSchema, allow_none=True)
