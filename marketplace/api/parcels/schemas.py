"""Shapes of the parcels API: parcels arriving and waiting at the agent's point, their hand-over
(services.parcels checks every rule)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from domain import IdentityReason
from marketplace.api.catalog.schemas import ListedErrorsSchema, _enum, _text
from marketplace.api.common import BaseSchema

KEY = fields.String(
    load_default=None,
    validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$", error=_l("Not a valid idempotency key.")),
    metadata={"description": "Makes a repeated request apply once (or the Idempotency-Key header)"},
)


class HandoverSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    sub_order_number = fields.Function(lambda h: h.sub_order.number, dump_only=True)
    point_id = fields.Integer(dump_only=True)
    handed_by_id = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "None: returned by the job"}
    )
    method = fields.Function(
        lambda h: h.method.value, dump_only=True, metadata={"description": "code, reason or returned"}
    )
    reason = fields.Function(lambda h: h.reason.value if h.reason else None, dump_only=True, allow_none=True)
    reason_text = fields.String(dump_only=True)
    collected_by = fields.String(dump_only=True)
    cash_collected_fen = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class ParcelSchema(BaseSchema):
    number = fields.String(dump_only=True, metadata={"description": "The sub-order's number"})
    order_number = fields.String(dump_only=True)
    status = fields.Function(lambda p: p.status.value, dump_only=True)
    point_name = fields.String(dump_only=True)
    recipient = fields.String(dump_only=True, metadata={"description": "As the agent may see it"})
    recipient_phone = fields.String(attribute="phone", dump_only=True, metadata={"description": "Masked"})
    villager = fields.Boolean(dump_only=True, metadata={"description": "A proxy order's villager"})
    items = fields.String(dump_only=True)
    arrived_at = fields.DateTime(dump_only=True, allow_none=True)
    age_days = fields.Integer(dump_only=True, metadata={"description": "Whole days since it arrived"})
    flagged = fields.Boolean(dump_only=True, metadata={"description": "Uncollected for the reminder days"})
    returns_on = fields.DateTime(dump_only=True, allow_none=True)
    collect_fen = fields.Integer(
        dump_only=True, metadata={"description": "Cash to collect at hand-over (an order on credit)"}
    )
    handover = fields.Nested(HandoverSchema, dump_only=True, allow_none=True)


class ArrivedSchema(ListedErrorsSchema):
    number = _text(
        required=True,
        validate=validate.Length(min=1, max=40, error=_l("At most 40 characters.")),
        metadata={
            "description": "The parcel's (sub-order's) number as scanned or typed",
            "example": "2026112600001234-1",
        },
    )
    idempotency_key = KEY


class HandoverInputSchema(ListedErrorsSchema):
    pickup_code = _text(
        load_default="",
        validate=validate.Length(max=16, error=_l("At most 16 characters.")),
        metadata={"description": "The order's 6-digit pickup code; leave empty to give a reason instead"},
    )
    reason = _enum(
        IdentityReason,
        load_default=None,
        allow_none=True,
        metadata={"description": "Without the code: how the agent confirmed who collects it"},
    )
    reason_text = _text(
        load_default="", validate=validate.Length(max=200, error=_l("At most 200 characters."))
    )
    collected_by = _text(
        load_default="",
        validate=validate.Length(max=40, error=_l("At most 40 characters.")),
        metadata={"description": "Who collects it (required without the code)"},
    )
    cash_received = fields.Boolean(
        load_default=False, metadata={"description": "An order on the agent's credit: the cash was received"}
    )
    idempotency_key = KEY


class ParcelListsSchema(BaseSchema):
    arriving = fields.List(fields.Nested(ParcelSchema), dump_only=True)
    waiting = fields.List(fields.Nested(ParcelSchema), dump_only=True)
    remind_days = fields.Integer(dump_only=True)
    return_days = fields.Integer(dump_only=True)
