"""Produce handed in at the village point, weighed and graded (API): the produce the agent (or
county staff) receives, a photo upload, the intake recorded line by line (the hand-in: one
request, one idempotency key), the intake and lots, and a lot's public trace
(services/intake.py has the rules)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from marketplace.api.catalog.routes import photo_sized
from marketplace.api.catalog.schemas import PhotoUploadSchema
from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.intake.schemas import (
    IntakeInSchema,
    IntakePhotoSchema,
    IntakeSchema,
    LotSchema,
    ReceivableSchema,
    ToReceiveSchema,
    TraceSchema,
)
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import media_storage, payment_gateway
from services import intake
from services.logistics import trace as lot_chain

blp = Blueprint(
    "api_intake", __name__, description="Produce handed in at the village point, weighed and graded"
)


@blp.route("/agent/intake/sub-orders", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ToReceiveSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Neither a village agent nor county staff")
def to_receive():  # type: ignore[no-untyped-def]
    """Produce to receive: accepted sub-orders of the sellers whose home point is the agent's
    (or whose county is the staff member's), packed ones first."""
    return intake.to_receive(get_session(), actor())


@blp.route("/agent/intake/sub-orders/<sub_number>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ReceivableSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Its seller or buyer: they never receive it")
@blp.alt_response(404, description="No such sub-order, or one of another point's seller")
def receivable(sub_number: str):  # type: ignore[no-untyped-def]
    """One sub-order to receive, with its lines (line ids, ordered weights, the largest weight
    taken) and, once received, its intake."""
    return intake.receivable_sub_order(get_session(), actor(), sub_number)


@blp.route("/agent/intake/photos", methods=["POST"])
@photo_sized
@token_required
@blp.doc(security=BEARER)
@blp.arguments(PhotoUploadSchema, location="files")
@blp.response(201, IntakePhotoSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Neither a village agent nor county staff")
@blp.alt_response(413, description="Far over the size limit")
@blp.alt_response(422, description="Not a photo, too large or too many pixels")
def upload_photo(files: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A photo of the goods (multipart field "photo"), checked and re-encoded without metadata;
    its id goes in an intake line's photo_id (only the uploader's own photos are taken)."""
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    data = files["photo"].read(limit + 1)
    return intake.upload_photo(get_session(), media_storage(), actor(), data, max_bytes=limit)


@blp.route("/agent/intake/sub-orders/<sub_number>", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(IntakeInSchema)
@blp.response(200, IntakeSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Its seller or buyer: they never receive it")
@blp.alt_response(404, description="No such sub-order, or one of another point's seller")
@blp.alt_response(
    409,
    description="already_received: received already (under another key); not_receivable: not accepted "
    "by the seller; conflict: the key was used for another sub-order",
)
@blp.alt_response(
    422,
    description="No idempotency key; a line missing or twice; a weight of zero for an accepted line or "
    "above 3 × the ordered weight; a grade not in the list; a photo that is not yours",
)
def record(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """Record the intake: each line weighed (grams), graded, accepted, photographed. That is the
    hand-in: produce sold by weight is charged for its weighed weight (a pre-sale captured for
    less, else the difference refunded), a shortfall or a rejected line refunded, nothing
    accepted refunded in full; every accepted line becomes a lot with a trace code. The same key
    again returns the first intake and moves no money twice."""
    key = request_key(body)
    lines = [
        intake.LineInput(
            line_id=line["line_id"],
            weighed_g=line["weight_g"],
            grade=line["grade"],
            accepted_quantity=line.get("accepted_quantity"),
            photo_id=line.get("photo_id"),
        )
        for line in body["lines"]
    ]
    return intake.record_intake(get_session(), payment_gateway(), actor(), sub_number, lines, key)


@blp.route("/agent/intake/received", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, IntakeSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Neither a village agent nor county staff")
def received():  # type: ignore[no-untyped-def]
    """Intakes recorded by the caller or at their points, newest first."""
    return intake.received(get_session(), actor())


@blp.route("/agent/intake/lots/<code>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, LotSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No lot has this code, or not one the caller may see")
def get_lot(code: str):  # type: ignore[no-untyped-def]
    """A lot in full, for the receiver, the seller, the buyer or an admin."""
    return intake.get_lot(get_session(), actor(), code)


@blp.route("/trace/<code>", methods=["GET"])
@blp.response(200, TraceSchema)
@blp.alt_response(404, description="No lot has this code")
def trace(code: str):  # type: ignore[no-untyped-def]
    """A lot's public trace (no login): product, origin village and town, the farmer (masked),
    harvest, certifications, grade, weight, intake day and point, every event of its SM3 hash
    chain, and whether the chain verifies. Nothing personal."""
    return lot_chain.lot_trace(get_session(), code)


@blp.route("/trace/<code>/epcis", methods=["GET"])
@blp.response(200, content_type="application/ld+json", description="An EPCIS 2.0 EPCISDocument (JSON-LD)")
@blp.alt_response(404, description="No lot has this code")
def trace_epcis(code: str):  # type: ignore[no-untyped-def]
    """A lot's events as a GS1 EPCIS 2.0 JSON-LD document: one ObjectEvent per event of its chain
    (business step, disposition, read point, the lot's quantity in kg), for partners' systems."""
    body = json.dumps(lot_chain.epcis(get_session(), code), ensure_ascii=False)
    return Response(body, mimetype="application/ld+json")
