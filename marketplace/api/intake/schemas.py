"""Shapes of the intake API: produce to receive, the intake recorded line by line, lots, and a
lot's public trace."""

from __future__ import annotations

from typing import Any

from flask import url_for
from marshmallow import fields, validate

from domain import Grade
from marketplace.api.catalog.schemas import ListedErrorsSchema, PhotoSchema
from marketplace.api.common import BaseSchema, BoundedInt, Id
from services import intake

KEY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
GRADES = [g.value for g in Grade]
# The API takes whole grams; the service refuses more than MAX_WEIGHT_FACTOR × the order.
MAX_WEIGHT_G = 100_000_000


class ReceivedLineSchema(BaseSchema):
    id = fields.Integer(dump_only=True, metadata={"description": "line_id in an intake"})
    product_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    unit = fields.Function(lambda line: line.unit.value, dump_only=True)
    quantity = fields.Integer(dump_only=True)
    unit_price_fen = fields.Integer(dump_only=True)
    line_fen = fields.Integer(dump_only=True)
    net_weight_g = fields.Integer(dump_only=True, metadata={"description": "of one unit"})
    by_weight = fields.Function(
        lambda line: intake.sold_by_weight(line.unit),
        dump_only=True,
        metadata={"description": "charged for the weighed weight (the unit is 斤 or 公斤)"},
    )
    max_weight_g = fields.Function(
        lambda line: intake.MAX_WEIGHT_FACTOR * line.net_weight_g * line.quantity,
        dump_only=True,
        metadata={"description": "the largest weighed weight taken for this line"},
    )


class ToReceiveSchema(BaseSchema):
    number = fields.String(dump_only=True)
    status = fields.Function(lambda s: s.status.value, dump_only=True)
    seller_id = fields.Integer(dump_only=True)
    seller_name = fields.Function(lambda s: s.seller.display_name, dump_only=True)
    presale = fields.Function(lambda s: s.order.presale, dump_only=True)
    ready_at = fields.DateTime(dump_only=True, allow_none=True)
    items_fen = fields.Integer(dump_only=True)
    shipping_fen = fields.Integer(dump_only=True)
    total_fen = fields.Integer(dump_only=True)
    lines = fields.List(fields.Nested(ReceivedLineSchema), dump_only=True)


class IntakeLineInSchema(ListedErrorsSchema):
    line_id = Id(required=True)
    weight_g = BoundedInt(
        minimum=0,
        maximum=MAX_WEIGHT_G,
        required=True,
        metadata={"description": "weighed, whole grams; 0 only when nothing of the line is accepted"},
    )
    grade = fields.String(
        required=True, validate=validate.OneOf(GRADES), metadata={"description": "rejected: 不合格"}
    )
    accepted_quantity = BoundedInt(
        minimum=0,
        maximum=intake.MAX_QUANTITY,
        load_default=None,
        allow_none=True,
        metadata={"description": "units accepted; absent: all that was ordered"},
    )
    photo_id = Id(load_default=None, allow_none=True, metadata={"description": "a photo you uploaded"})


class IntakeInSchema(ListedErrorsSchema):
    lines = fields.List(fields.Nested(IntakeLineInSchema), required=True, validate=validate.Length(1, 100))
    idempotency_key = fields.String(load_default=None, validate=validate.Regexp(KEY_PATTERN))


class LotSchema(BaseSchema):
    code = fields.String(dump_only=True, metadata={"description": "the lot's trace code"})
    product_id = fields.Integer(dump_only=True)
    product_name = fields.Function(lambda lot: lot.product.name, dump_only=True)
    seller_id = fields.Integer(dump_only=True)
    node_id = fields.Integer(dump_only=True, metadata={"description": "the origin node"})
    sub_order_number = fields.Function(lambda lot: lot.sub_order.number, dump_only=True)
    order_line_id = fields.Integer(dump_only=True)
    weight_g = fields.Integer(dump_only=True)
    grade = fields.Function(lambda lot: lot.grade.value, dump_only=True)
    quantity = fields.Integer(dump_only=True)
    photo_id = fields.Integer(dump_only=True, allow_none=True)
    received_at = fields.DateTime(dump_only=True)
    received_by_id = fields.Integer(dump_only=True)
    trace_url = fields.Function(
        lambda lot: url_for("trace.trace_page", code=lot.code, _external=True), dump_only=True
    )


class IntakeLineSchema(BaseSchema):
    line_id = fields.Integer(attribute="order_line_id", dump_only=True)
    product_name = fields.Function(lambda line: line.order_line.name, dump_only=True)
    weight_g = fields.Integer(attribute="weighed_g", dump_only=True)
    grade = fields.Function(lambda line: line.grade.value, dump_only=True)
    accepted_quantity = fields.Integer(dump_only=True)
    by_weight = fields.Boolean(dump_only=True)
    charged_fen = fields.Integer(dump_only=True, metadata={"description": "what the line costs now"})
    photo_id = fields.Integer(dump_only=True, allow_none=True)


def _refund_status(i: Any) -> str | None:
    return i.refund.status.value if i.refund is not None else None


class IntakeSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    sub_order_number = fields.Function(lambda i: i.sub_order.number, dump_only=True)
    sub_order_status = fields.Function(lambda i: i.sub_order.status.value, dump_only=True)
    node_id = fields.Integer(dump_only=True)
    node_name = fields.Function(lambda i: i.node.name, dump_only=True)
    received_by_id = fields.Integer(dump_only=True)
    received_at = fields.DateTime(dump_only=True)
    goods_fen = fields.Integer(dump_only=True, metadata={"description": "the goods as received"})
    difference_fen = fields.Integer(
        dump_only=True, metadata={"description": "what the buyer does not pay: released or refunded"}
    )
    settlement = fields.String(dump_only=True, metadata={"description": "capture, void, refund or none"})
    refund_status = fields.Function(_refund_status, dump_only=True, allow_none=True)
    released_fen = fields.Function(lambda i: i.sub_order.released_fen, dump_only=True)
    refunded_fen = fields.Function(lambda i: i.sub_order.refunded_fen, dump_only=True)
    lines = fields.List(fields.Nested(IntakeLineSchema), dump_only=True)
    lots = fields.List(fields.Nested(LotSchema), dump_only=True)


class ReceivableSchema(ToReceiveSchema):
    intake = fields.Method("get_intake", dump_only=True, allow_none=True)

    def get_intake(self, sub: Any) -> Any:
        from marketplace.db import get_session

        found = intake.intake_of(get_session(), sub)
        return IntakeSchema().dump(found) if found is not None else None


class IntakePhotoSchema(PhotoSchema):
    pass


class TraceStepSchema(BaseSchema):
    kind = fields.String(
        dump_only=True, metadata={"description": "received, departed, arrived, delivered, exception"}
    )
    at = fields.AwareDateTime(dump_only=True)
    node = fields.String(dump_only=True, metadata={"description": "where (empty: at the buyer's door)"})
    division = fields.String(dump_only=True)
    hash = fields.String(dump_only=True, metadata={"description": "the event's SM3 chain hash (hex)"})


class TraceSchema(BaseSchema):
    """A lot's public trace (services/logistics/trace.lot_trace): nothing personal."""

    code = fields.String(attribute="base.code", dump_only=True)
    product = fields.String(attribute="base.product", dump_only=True)
    category = fields.String(attribute="base.category", dump_only=True)
    origin = fields.Function(
        lambda t: [d.name for d in t.base.origin],
        dump_only=True,
        metadata={"description": "city, county, town, village of the product's origin"},
    )
    village = fields.String(attribute="base.village", dump_only=True)
    town = fields.String(attribute="base.town", dump_only=True)
    farmer = fields.String(
        dump_only=True, metadata={"description": "the shop's name, or the farmer's masked"}
    )
    grade = fields.Function(lambda t: t.base.grade.value, dump_only=True)
    weight_g = fields.Integer(attribute="base.weight_g", dump_only=True)
    quantity = fields.Integer(attribute="base.quantity", dump_only=True)
    unit = fields.String(attribute="base.unit", dump_only=True)
    harvest_start = fields.Date(dump_only=True, allow_none=True)
    harvest_end = fields.Date(dump_only=True, allow_none=True)
    certifications = fields.Function(
        lambda t: [{"kind": kind, "number": number} for kind, number in t.certifications], dump_only=True
    )
    received_on = fields.Date(attribute="base.received_on", dump_only=True)
    point = fields.String(attribute="base.point", dump_only=True)
    storage_class = fields.String(attribute="base.storage_class", dump_only=True)
    steps = fields.List(fields.Nested(TraceStepSchema), dump_only=True)
    verified = fields.Function(
        lambda t: t.check.ok, dump_only=True, metadata={"description": "the chain verifies"}
    )
    verification = fields.Function(lambda t: str(t.check.message), dump_only=True)
    chain_head = fields.Function(
        lambda t: t.check.head, dump_only=True, metadata={"description": "newest hash"}
    )
