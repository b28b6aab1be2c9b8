"""Shapes of the cash API: cash now, the agent's cash held, remittances."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.api.common import BaseSchema


class KeySchema(BaseSchema):
    idempotency_key = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$"))


class PaidOrderSchema(BaseSchema):
    number = fields.String(dump_only=True)
    total_fen = fields.Integer(dump_only=True)
    payment_status = fields.Function(lambda o: o.payment.status.value, dump_only=True)


class RemittanceSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    agent_id = fields.Integer(dump_only=True)
    node_id = fields.Integer(dump_only=True)
    county_code = fields.String(dump_only=True)
    declared_fen = fields.Integer(dump_only=True)
    counted_fen = fields.Integer(dump_only=True, allow_none=True)
    discrepancy_fen = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "declared − counted (> 0: still owed)"}
    )
    status = fields.Function(lambda r: r.status.value, dump_only=True)
    note = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    confirmed_by_id = fields.Integer(dump_only=True, allow_none=True)
    confirmed_at = fields.DateTime(dump_only=True, allow_none=True)


class CashHeldSchema(BaseSchema):
    held_fen = fields.Integer(dump_only=True, metadata={"description": "cash the agent holds (ledger)"})
    available_fen = fields.Integer(
        dump_only=True, metadata={"description": "held less declared, not yet counted"}
    )
    awaiting = fields.List(fields.Nested(PaidOrderSchema), dump_only=True)
    remittances = fields.List(fields.Nested(RemittanceSchema), dump_only=True)


class DeclareSchema(BaseSchema):
    amount_fen = fields.Integer(required=True, validate=validate.Range(min=1))
    note = fields.String(load_default="", validate=validate.Length(max=200))
    idempotency_key = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$"))


class ConfirmSchema(BaseSchema):
    counted_fen = fields.Integer(required=True, validate=validate.Range(min=0))


class RemittanceQuerySchema(BaseSchema):
    to_confirm = fields.Boolean(load_default=False)
