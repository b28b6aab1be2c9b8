"""Shapes of the scans API: a scan of a parcel's label at a node, a device's batch of them, and a
shipment's legs and timeline (services/logistics/scans.py checks every rule)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from domain import ScanKind, clock
from marketplace.api.catalog.schemas import ListedErrorsSchema, _text
from marketplace.api.common import BaseSchema
from marketplace.api.parcels.schemas import KEY
from services.logistics.scans import MAX_BATCH

KINDS = [k.value for k in ScanKind if k != ScanKind.COLLECTED]


class ScanInSchema(ListedErrorsSchema):
    label = _text(
        required=True,
        validate=validate.Length(min=1, max=40, error=_l("At most 40 characters.")),
        metadata={"description": "The parcel's label as scanned or typed: its sub-order number"},
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS, error=_l("Not one of the allowed values.")),
        metadata={"description": "departed, arrived, delivered (at the door) or exception"},
    )
    node_id = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={"description": "Where the scan is made; none only for a delivery at the door"},
    )
    scanned_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        default_timezone=clock.CHINA,
        metadata={"description": "When it happened (a scan queued offline); none: now. Never later than now"},
    )
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    vehicle_id = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A departure only: the vehicle it leaves on, an active vehicle of the node"
            " scanned at (it becomes the leg's vehicle, over the route plan's)"
        },
    )
    note = _text(load_default="", validate=validate.Length(max=200, error=_l("At most 200 characters.")))
    idempotency_key = KEY


class ScanBatchInSchema(ListedErrorsSchema):
    scans = fields.List(
        fields.Nested(ScanInSchema), required=True, validate=validate.Length(min=1, max=MAX_BATCH)
    )


class ScanSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    kind = fields.Function(lambda s: s.kind.value, dump_only=True)
    node_id = fields.Integer(dump_only=True, allow_none=True)
    leg_seq = fields.Function(lambda s: s.leg.seq if s.leg else None, dump_only=True, allow_none=True)
    scanned_at = fields.DateTime(dump_only=True)
    recorded_at = fields.DateTime(dump_only=True)
    latitude = fields.Float(dump_only=True, allow_none=True)
    longitude = fields.Float(dump_only=True, allow_none=True)
    note = fields.String(dump_only=True)


class LegSchema(BaseSchema):
    seq = fields.Integer(dump_only=True)
    from_node_id = fields.Integer(dump_only=True)
    to_node_id = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "None: the door"})
    reverse = fields.Boolean(dump_only=True)
    status = fields.Function(lambda leg: leg.status.value, dump_only=True)
    planned_depart_at = fields.DateTime(dump_only=True, allow_none=True)
    planned_arrive_at = fields.DateTime(dump_only=True, allow_none=True)
    departed_at = fields.DateTime(dump_only=True, allow_none=True)
    arrived_at = fields.DateTime(dump_only=True, allow_none=True)
    vehicle_id = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "The vehicle carrying it"}
    )


class ShipmentSchema(BaseSchema):
    sub_order_number = fields.String(dump_only=True)
    flow = fields.String(dump_only=True, metadata={"description": "first_km, last_km or other"})
    status = fields.String(dump_only=True)
    origin_node_id = fields.Integer(dump_only=True)
    destination_node_id = fields.Integer(dump_only=True, allow_none=True)
    current_node_id = fields.Integer(dump_only=True, allow_none=True)
    eta_at = fields.DateTime(dump_only=True, allow_none=True)
    legs = fields.List(fields.Nested(LegSchema), dump_only=True)
    scans = fields.List(fields.Nested(ScanSchema), dump_only=True)


class ScanResultSchema(BaseSchema):
    applied = fields.Boolean(dump_only=True, metadata={"description": "False: a repeat, nothing changed"})
    scan = fields.Nested(ScanSchema, dump_only=True)
    shipment = fields.Nested(ShipmentSchema, dump_only=True)


class BatchItemSchema(BaseSchema):
    index = fields.Integer(dump_only=True)
    ok = fields.Boolean(dump_only=True)
    applied = fields.Boolean(dump_only=True, allow_none=True)
    scan = fields.Nested(ScanSchema, dump_only=True, allow_none=True)
    code = fields.String(dump_only=True, allow_none=True, metadata={"description": "Why it was refused"})
    message = fields.String(dump_only=True, allow_none=True)


class ScanBatchSchema(BaseSchema):
    results = fields.List(fields.Nested(BatchItemSchema), dump_only=True)
