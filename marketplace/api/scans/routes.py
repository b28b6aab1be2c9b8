"""Scans API: the staff of a node scan a parcel's label as it leaves, arrives or is delivered (one
scan, or a device's queued batch), and whoever follows a parcel reads its shipment: legs, ETA and
every scan (services/logistics/scans.py has the rules)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.api.scans.schemas import (
    ScanBatchInSchema,
    ScanBatchSchema,
    ScanInSchema,
    ScanResultSchema,
    ShipmentSchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from services.logistics import scans

blp = Blueprint("api_scans", __name__, description="Parcels scanned from node to node, and their journey")


def _shipment(shipment: Any) -> dict[str, Any]:
    session = get_session()
    return {
        "sub_order_number": shipment.sub_order.number,
        "flow": shipment.flow.value,
        "status": shipment.status.value,
        "origin_node_id": shipment.origin_node_id,
        "destination_node_id": shipment.destination_node_id,
        "current_node_id": shipment.current_node_id,
        "eta_at": shipment.eta_at,
        "legs": shipment.legs,
        "scans": scans.timeline(session, shipment),
    }


@blp.route("/scans", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ScanInSchema)
@blp.response(200, ScanResultSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the staff of the node scanned at")
@blp.alt_response(404, description="No parcel with this label, or no such node")
@blp.alt_response(
    409,
    description="illegal_scan: out of order (the message says what comes next), or the order was cancelled;"
    " conflict: the key was used for another scan",
)
@blp.alt_response(
    422,
    description="No label, kind or idempotency key; a node missing; a vehicle not of the node, off the"
    " road, or named on anything but a departure",
)
def scan(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """One scan. The same key again, or the same move scanned again, answers with the first scan
    (`applied` false) and changes nothing."""
    session = get_session()
    done = scans.record_scan(
        session,
        actor(),
        body["label"],
        body["kind"],
        request_key(body),
        node_id=body["node_id"],
        scanned_at=body["scanned_at"],
        latitude=body["latitude"],
        longitude=body["longitude"],
        note=body["note"],
        vehicle_id=body["vehicle_id"],
    )
    return {"applied": done.applied, "scan": done.scan, "shipment": _shipment(done.scan.shipment)}


@blp.route("/scans/batch", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ScanBatchInSchema)
@blp.response(200, ScanBatchSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(422, description="No scans, more than the batch takes, or a scan without its fields")
def batch(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A device's queued scans, applied one by one in order; each result says applied, repeated
    or refused (code and message), so the device keeps only what was refused."""
    results = scans.record_batch(get_session(), actor(), body["scans"])
    return {
        "results": [
            {
                "index": r.index,
                "ok": r.error is None,
                "applied": r.result.applied if r.result else None,
                "scan": r.result.scan if r.result else None,
                "code": r.error.code if r.error else None,
                "message": str(r.error.message) if r.error else None,
            }
            for r in results
        ]
    }


@blp.route("/shipments/<label>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ShipmentSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such parcel, or not one you follow")
def shipment(label: str):  # type: ignore[no-untyped-def]
    """A parcel's journey: its legs (planned and actual times), ETA and every scan, for its buyer,
    the agent who placed it, its seller, the staff of the nodes on its way, and admins."""
    return _shipment(scans.visible_shipment(get_session(), actor(), label))
