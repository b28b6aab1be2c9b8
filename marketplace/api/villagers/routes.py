"""Villagers API: the people a village agent shops for. Agents list and find the villagers of
their point (by name, phone or pinyin initials), register one with their consent (an idempotency
key: a dropped connection's retry registers them once), see one and change the notes; county staff
see those of their county's points. Bearer tokens only."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from marketplace.api.auth.routes import SMS_LIMIT_SCOPE, _sms_limit
from marketplace.api.common import BEARER, token_required
from marketplace.api.villagers.schemas import (
    ConsentCodeSchema,
    VillagerCreateSchema,
    VillagerPatchSchema,
    VillagerQuerySchema,
    VillagerSchema,
)
from marketplace.auth import actor, auth_policy, client_ip
from marketplace.db import get_session
from marketplace.extensions import limiter
from marketplace.gateways import sms_gateway
from services import villagers

blp = Blueprint("api_villagers", __name__, description="Villagers a village agent shops for")
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 64},
    "description": "A key of the client's choice: repeating the request returns the villager the first made",
}


@blp.route("/villagers", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(VillagerQuerySchema, location="query")
@blp.response(200, VillagerSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent, or a point outside the caller's county")
def list_villagers(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The villagers of the agent's point (at most 50), found by name, phone or pinyin initials."""
    user = actor()
    found = villagers.list_villagers(get_session(), user, q=args["q"], point_id=args["point_id"])
    return [villagers.present(v, user) for v in found]


@blp.route("/villagers", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(VillagerCreateSchema)
@blp.response(201, VillagerSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent (of that point)")
@blp.alt_response(409, description="This villager is already registered at the point")
@blp.alt_response(422, description="Invalid fields, a village outside the point's town, a wrong SMS code")
def create_villager(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Register a villager at the agent's point, with how they gave their consent."""
    key = request.headers.get("Idempotency-Key") or body.pop("idempotency_key", None)
    body.pop("idempotency_key", None)
    point_id = body.pop("point_id", None)
    body["consent_method"] = body["consent_method"].value
    user = actor()
    villager = villagers.register_villager(
        get_session(),
        user,
        villagers.VillagerInput(**body),
        point_id=point_id,
        idempotency_key=key,
        policy=auth_policy(),
    )
    return villagers.present(villager, user)


@blp.route("/villagers/consent-codes", methods=["POST"])
@token_required
@limiter.shared_limit(_sms_limit, SMS_LIMIT_SCOPE)
@blp.doc(security=BEARER)
@blp.arguments(ConsentCodeSchema)
@blp.response(202, description="The consent code is on its way to the phone")
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(422, description="Not a mobile number")
@blp.alt_response(429, description="Too many codes for this number")
def send_consent_code(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Text the villager's phone the code they read out to consent (consent_method sms)."""
    villagers.request_consent_code(
        get_session(), sms_gateway(), actor(), body["phone"], auth_policy(), ip=client_ip()
    )
    return current_app.response_class(status=202)


@blp.route("/villagers/<int:villager_id>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, VillagerSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such villager, or not one the caller may see")
def get_villager(villager_id: int):  # type: ignore[no-untyped-def]
    """One villager, in full: the point's agent, the county's staff, the villager themself."""
    user = actor()
    return villagers.present(villagers.get_villager(get_session(), user, villager_id), user)


@blp.route("/villagers/<int:villager_id>", methods=["PATCH"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(VillagerPatchSchema)
@blp.response(200, VillagerSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the point's agent")
@blp.alt_response(404, description="No such villager, or not one the caller may see")
@blp.alt_response(422, description="Invalid notes")
def update_villager(body: dict[str, Any], villager_id: int):  # type: ignore[no-untyped-def]
    """Change the notes (e.g. "deliver to daughter"); the point's agent only."""
    user = actor()
    return villagers.present(villagers.update_notes(get_session(), user, villager_id, body["notes"]), user)
