"""Parcels API: an agent lists the parcels arriving at and waiting at their point, marks one
arrived (scanned or typed number), and hands one over with the pickup code or, the code lost,
a recorded reason; an order on the agent's credit takes the cash at hand-over
(services/parcels.py has the rules)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.api.parcels.schemas import (
    ArrivedSchema,
    HandoverInputSchema,
    HandoverSchema,
    ParcelListsSchema,
    ParcelSchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import pickup_code_keys
from marketplace.web.parcels.routes import days
from services import parcels

blp = Blueprint("api_parcels", __name__, description="Parcels arriving at the village point and handed over")


@blp.route("/agent/parcels", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ParcelListsSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def lists():  # type: ignore[no-untyped-def]
    """The parcels on their way to the agent's points (in transit) and those waiting to be
    collected there (oldest first, with their age, the uncollected flag and the return day)."""
    session = get_session()
    user = actor()
    arriving = parcels.arriving(session, user)
    return {"arriving": arriving, "waiting": parcels.waiting(session, user, **days()), **days()}


@blp.route("/agent/parcels/arrived", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ArrivedSchema)
@blp.response(200, ParcelSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No parcel with this number is on its way to or at the agent's point")
@blp.alt_response(409, description="illegal_transition: the parcel is not on its way to the point yet")
@blp.alt_response(422, description="No number, no idempotency key, or an order number with several parcels")
def arrived(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The parcel arrived at the point: ready for pickup, and the recipient is sent the pickup
    code. Arrived already: answered the same, nothing done twice."""
    session = get_session()
    sub = parcels.mark_arrived(session, actor(), body["number"], request_key(body))
    return parcels.get_parcel(session, actor(), sub.number, **days())


@blp.route("/agent/parcels/<sub_number>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ParcelSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="Not a parcel of the agent's point")
def get_parcel(sub_number: str):  # type: ignore[no-untyped-def]
    """One parcel of the agent's point, with its hand-over once collected or returned."""
    return parcels.get_parcel(get_session(), actor(), sub_number, **days())


@blp.route("/agent/parcels/<sub_number>/handover", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(HandoverInputSchema)
@blp.response(200, HandoverSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="Not a parcel of the agent's point")
@blp.alt_response(
    409,
    description="already_collected (another key), pickup_code_locked (5 wrong codes: the buyer has a"
    " new one issued), illegal_transition (not waiting at the point), conflict (the key was used for"
    " another parcel)",
)
@blp.alt_response(
    422,
    description="wrong_pickup_code (with the tries left), neither a code nor a reason, no collector's name "
    "without the code, cash_not_confirmed (an order on credit), no idempotency key",
)
def handover(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """Hand the parcel over: with the order's pickup code, or without it for a recorded reason
    (id_card, known_villager, family_member; details and the collector's name). An order on the
    agent's credit needs cash_received. The parcel completes and the recipient is told. The same
    key again returns the same hand-over; another key: 409 already_collected."""
    reason = body.get("reason")
    data = parcels.HandoverInput(
        pickup_code=body["pickup_code"],
        reason=reason.value if reason is not None else "",
        reason_text=body["reason_text"],
        collected_by=body["collected_by"],
        cash_received=body["cash_received"],
    )
    return parcels.hand_over(get_session(), actor(), sub_number, data, request_key(body), pickup_code_keys())
