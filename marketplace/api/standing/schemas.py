"""Shapes of the standing order API: setting one up, the standing orders and their cycles,
confirming a cycle (quantities for this time), skipping it."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.api.common import BaseSchema, BoundedInt, Id, Quantity
from services import standing
from services.orders.cart import MAX_LINE_QUANTITY
from services.proxy import METHODS

KEY = validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$")


def _key_field() -> fields.String:
    return fields.String(
        load_default=None, validate=KEY, metadata={"description": "Or the Idempotency-Key header"}
    )


class StandingItemSchema(BaseSchema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class StandingCreateSchema(BaseSchema):
    villager_id = Id(required=True)
    items = fields.List(
        fields.Nested(StandingItemSchema),
        required=True,
        validate=validate.Length(min=1, max=standing.MAX_LINES),
        metadata={"description": "Each product once, with how many each time"},
    )
    payment_method = fields.String(required=True, validate=validate.OneOf([m.value for m in METHODS]))
    cadence = fields.String(required=True, validate=validate.OneOf(["weekly", "monthly"]))
    repeat_every = BoundedInt(
        minimum=1,
        maximum=standing.MAX_EVERY,
        load_default=1,
        metadata={"description": "Every N weeks or months"},
    )
    weekday = BoundedInt(
        minimum=0,
        maximum=6,
        load_default=None,
        allow_none=True,
        metadata={"description": "weekly: 0 Monday … 6 Sunday"},
    )
    day_of_month = BoundedInt(
        minimum=1,
        maximum=standing.MAX_DAY_OF_MONTH,
        load_default=None,
        allow_none=True,
        metadata={"description": "monthly: 1-28"},
    )
    start_date = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={"description": "The first due date is on or after it; none: today"},
    )
    note = fields.String(load_default="", validate=validate.Length(max=200))
    idempotency_key = _key_field()


class StandingQuerySchema(BaseSchema):
    include_cancelled = fields.Boolean(load_default=False)


class StandingLineSchema(BaseSchema):
    product_id = fields.Integer()
    name = fields.String()
    unit = fields.String()
    unit_price_fen = fields.Integer()
    quantity = fields.Integer()
    problem = fields.String(allow_none=True, metadata={"description": "Why it cannot be ordered now"})


class StandingOrderSchema(BaseSchema):
    id = fields.Integer(attribute="standing.id")
    villager_id = fields.Integer(attribute="standing.villager_id")
    villager_name = fields.String()
    point_id = fields.Integer(attribute="standing.point_id")
    payment_method = fields.Function(lambda v: v.standing.payment_method.value)
    cadence = fields.Function(lambda v: v.standing.cadence.value)
    cadence_text = fields.Function(lambda v: str(v.cadence))
    repeat_every = fields.Integer(attribute="standing.repeat_every")
    weekday = fields.Integer(attribute="standing.weekday", allow_none=True)
    day_of_month = fields.Integer(attribute="standing.day_of_month", allow_none=True)
    start_date = fields.Date(attribute="standing.start_date")
    status = fields.Function(lambda v: v.standing.status.value)
    note = fields.String(attribute="standing.note")
    created_by_id = fields.Integer(attribute="standing.created_by_id")
    created_at = fields.DateTime(attribute="standing.created_at")
    lines = fields.List(fields.Nested(StandingLineSchema))
    total_fen = fields.Integer(metadata={"description": "Priced now, shipping to the point included"})
    next_due = fields.List(fields.Date(), metadata={"description": "The next due dates (active only)"})


class StandingCycleSchema(BaseSchema):
    id = fields.Integer(attribute="cycle.id")
    standing_order_id = fields.Integer(attribute="cycle.standing_order_id")
    due_date = fields.Date(attribute="cycle.due_date")
    cutoff_at = fields.DateTime(attribute="cycle.cutoff_at")
    state = fields.String(
        metadata={"description": "to_confirm, closed (past its cut-off), confirmed, skipped, expired"}
    )
    skip_reason = fields.String(
        attribute="cycle.skip_reason", metadata={"description": "agent, paused, cancelled"}
    )
    order_number = fields.Function(
        lambda c: c.cycle.order.number if c.cycle.order is not None else None, allow_none=True
    )
    villager_name = fields.String(attribute="standing.villager_name")
    payment_method = fields.Function(lambda c: c.standing.standing.payment_method.value)
    lines = fields.List(fields.Nested(StandingLineSchema), attribute="standing.lines")
    total_fen = fields.Integer(attribute="standing.total_fen")


class StandingDetailSchema(BaseSchema):
    standing_order = fields.Nested(StandingOrderSchema)
    cycles = fields.List(
        fields.Nested(StandingCycleSchema), metadata={"description": "Latest due date first"}
    )


class StandingCycleQuantitySchema(BaseSchema):
    product_id = Id(required=True)
    quantity = BoundedInt(
        minimum=0,
        maximum=MAX_LINE_QUANTITY,
        required=True,
        metadata={"description": "0 leaves it out this time"},
    )


class StandingConfirmSchema(BaseSchema):
    quantities = fields.List(
        fields.Nested(StandingCycleQuantitySchema),
        load_default=None,
        validate=validate.Length(max=standing.MAX_LINES),
        metadata={"description": "This time only; lines not named keep the standing order's quantity"},
    )
    idempotency_key = _key_field()
