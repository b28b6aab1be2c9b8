"""Shapes of the commissions API: an agent's earnings, a county's rates."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.api.common import BaseSchema


class MonthQuerySchema(BaseSchema):
    month = fields.String(
        load_default=None, validate=validate.Regexp(r"^\d{4}-\d{2}$"), metadata={"description": "2026-12"}
    )


class CommissionSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    kind = fields.Function(lambda c: c.kind.value, dump_only=True)
    sub_order_number = fields.Function(lambda c: c.sub_order.number, dump_only=True)
    base_fen = fields.Integer(dump_only=True, metadata={"description": "goods price it was earned on"})
    amount_fen = fields.Integer(dump_only=True)
    reversed_fen = fields.Integer(dump_only=True, metadata={"description": "taken back by refunds"})
    earned_at = fields.DateTime(dump_only=True)
    paid = fields.Function(lambda c: c.payout_id is not None, dump_only=True)


class MonthTotalSchema(BaseSchema):
    month = fields.String(dump_only=True)
    earned_fen = fields.Integer(dump_only=True)
    reversed_fen = fields.Integer(dump_only=True)
    net_fen = fields.Integer(dump_only=True)
    count = fields.Integer(dump_only=True)


class EarningsSchema(BaseSchema):
    month = fields.String(dump_only=True)
    owed_fen = fields.Integer(dump_only=True, metadata={"description": "earned, not yet paid (ledger)"})
    paid_fen = fields.Integer(dump_only=True)
    months = fields.List(fields.Nested(MonthTotalSchema), dump_only=True)
    rows = fields.List(fields.Nested(CommissionSchema), dump_only=True)


class RateSchema(BaseSchema):
    kind = fields.Function(lambda r: r.kind.value, dump_only=True)
    category_id = fields.Function(lambda r: r.category.id if r.category else None, dump_only=True)
    category = fields.Function(lambda r: r.category.name if r.category else None, dump_only=True)
    rate_bp = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "150 = 1.5 %"})


class CountyRatesSchema(BaseSchema):
    county_code = fields.Function(lambda v: v.county.code, dump_only=True)
    can_edit = fields.Boolean(dump_only=True)
    rows = fields.List(fields.Nested(RateSchema), dump_only=True)


class SetRateSchema(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["proxy", "intake"]))
    category_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**31 - 1)
    )
    rate_percent = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=8),
        metadata={"description": 'percent, 0 to 30, two decimals ("1.5"); null or empty clears the rate'},
    )
