"""Shapes of the proxy order API: the villager's cart, placing, the orders an agent placed with
where their payment stands (the QR to show), and the agents' credit."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.api.browse.schemas import ProductCardSchema
from marketplace.api.common import BaseSchema, Id, Quantity
from services.orders.cart import MAX_CART_LINES
from services.proxy import MAX_CREDIT_LIMIT_FEN, METHODS, QR_METHODS, STATUS_FILTERS

KEY = validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$")


def _key_field() -> fields.String:
    return fields.String(
        load_default=None, validate=KEY, metadata={"description": "Or the Idempotency-Key header"}
    )


class ProxyCatalogQuerySchema(BaseSchema):
    q = fields.String(load_default="", validate=validate.Length(max=60))
    after = fields.String(load_default=None, validate=validate.Length(max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 50))


class ProxyCatalogSchema(BaseSchema):
    items = fields.List(fields.Nested(ProductCardSchema))
    next_cursor = fields.String(allow_none=True)


class ProxyCartItemSchema(BaseSchema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class ProxyCartPutSchema(BaseSchema):
    items = fields.List(
        fields.Nested(ProxyCartItemSchema), required=True, validate=validate.Length(max=MAX_CART_LINES)
    )


class ProxyCartLineSchema(BaseSchema):
    product_id = fields.Integer(attribute="product.id")
    name = fields.String(attribute="product.name")
    quantity = fields.Integer()
    unit_price_fen = fields.Integer()
    line_fen = fields.Integer()
    problem = fields.String(allow_none=True)


class ProxyCartSchema(BaseSchema):
    villager_id = fields.Integer()
    lines = fields.List(fields.Nested(ProxyCartLineSchema))
    problems = fields.List(
        fields.Nested(ProxyCartLineSchema), metadata={"description": "Lines that cannot be bought as asked"}
    )
    items_fen = fields.Integer()
    shipping_fen = fields.Integer()
    total_fen = fields.Integer()


class ProxyPlaceSchema(BaseSchema):
    payment_method = fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in METHODS]),
        metadata={
            "description": "wechat_pay / alipay: the villager scans the QR (qr_text or alipay_url); "
            "cash: the agent takes the cash now; credit: cash on pickup, on the agent's credit"
        },
    )
    items = fields.List(
        fields.Nested(ProxyCartItemSchema),
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CART_LINES),
        metadata={"description": "The items; without them, the villager's saved proxy cart"},
    )
    idempotency_key = _key_field()


class ProxySubOrderBriefSchema(BaseSchema):
    number = fields.String()
    status = fields.Function(lambda s: s.status.value)
    total_fen = fields.Integer()
    refunded_fen = fields.Integer()


class ProxyOrderSchema(BaseSchema):
    number = fields.String(attribute="order.number")
    villager_id = fields.Integer(attribute="order.villager_id")
    placed_by_id = fields.Integer(attribute="order.placed_by_id")
    buyer_id = fields.Integer(attribute="order.buyer_id")
    recipient = fields.String(attribute="order.recipient")
    recipient_phone = fields.String(attribute="order.recipient_phone")
    pickup_node_id = fields.Integer(attribute="order.pickup_node_id")
    created_at = fields.DateTime(attribute="order.created_at")
    pay_by = fields.DateTime(attribute="order.pay_by")
    total_fen = fields.Integer(attribute="order.total_fen")
    payment_method = fields.Function(lambda f: f.order.payment_method.value)
    payment_status = fields.Function(lambda f: f.order.payment.status.value)
    state = fields.String(
        metadata={
            "description": "awaiting_cash, on_credit, collected (paid at pickup), paid, wechat / alipay "
            "(show the QR), wallet_retry (failed: switch), processing, expired, cancelled"
        }
    )
    qr_text = fields.String(allow_none=True, metadata={"description": "WeChat Pay: draw this as a QR code"})
    alipay_url = fields.String(allow_none=True)
    choices = fields.Function(
        lambda f: [m.value for m in f.choices], metadata={"description": "Wallets to pay again with"}
    )
    may_cancel = fields.Boolean()
    collected_fen = fields.Integer(metadata={"description": "On credit: cash taken at pickup so far"})
    sub_orders = fields.Function(lambda f: ProxySubOrderBriefSchema(many=True).dump(f.order.sub_orders))


class ProxyOrdersQuerySchema(BaseSchema):
    villager_id = Id(strict=False, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(list(STATUS_FILTERS)))


class ProxySwitchSchema(BaseSchema):
    method = fields.String(required=True, validate=validate.OneOf([m.value for m in QR_METHODS]))
    idempotency_key = _key_field()


class ProxyCreditSchema(BaseSchema):
    agent_id = fields.Integer(attribute="agent.id")
    agent_name = fields.String(attribute="agent.display_name")
    point_ids = fields.Function(lambda c: [p.id for p in c.points])
    limit_fen = fields.Integer()
    used_fen = fields.Integer(metadata={"description": "What villagers owe through the agent (ledger)"})
    available_fen = fields.Integer()


class ProxyCreditLimitSchema(BaseSchema):
    limit_fen = fields.Integer(required=True, strict=True, validate=validate.Range(0, MAX_CREDIT_LIMIT_FEN))
    idempotency_key = _key_field()
