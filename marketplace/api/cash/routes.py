"""Cash API: an agent takes the cash for a proxy order at their point (the order is paid at
once), sees the cash they hold and declares remittances; county staff list the remittances
handed in to their county and confirm the counted amount (services/cash.py has the rules)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from marketplace.api.cash.schemas import (
    CashHeldSchema,
    ConfirmSchema,
    DeclareSchema,
    KeySchema,
    PaidOrderSchema,
    RemittanceQuerySchema,
    RemittanceSchema,
)
from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.auth import actor
from marketplace.db import get_session
from services import cash

blp = Blueprint("api_cash", __name__, description="Cash at the village point and its remittance")


@blp.route("/agent/orders/<order_number>/cash", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(KeySchema)
@blp.response(200, PaidOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the agent of the order's pickup point")
@blp.alt_response(404, description="No such order")
@blp.alt_response(409, description="payment_closed: not a cash order, already paid (another key), or expired")
@blp.alt_response(422, description="No idempotency key")
def take_cash(body: dict[str, Any], order_number: str):  # type: ignore[no-untyped-def]
    """The agent took the cash for a proxy order at their point: it is paid at once, the cash
    held by the agent. The same key again returns the paid order and pays nothing twice."""
    return cash.take_cash(get_session(), actor(), order_number, request_key(body))


@blp.route("/agent/cash", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, CashHeldSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def cash_held():  # type: ignore[no-untyped-def]
    """The cash the agent holds, what they may still declare, the cash orders waiting at their
    point, and their remittances (with the discrepancy once counted)."""
    session = get_session()
    user = actor()
    remittances = cash.my_remittances(session, user)
    assert user is not None
    return {
        "held_fen": cash.cash_held(session, user.id),
        "available_fen": cash.available_to_declare(session, user.id),
        "awaiting": cash.awaiting_cash(session, user),
        "remittances": remittances,
    }


@blp.route("/agent/remittances", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(DeclareSchema)
@blp.response(200, RemittanceSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(
    409,
    description="cash_exceeds_held: more than the cash held less what is declared (nothing written); "
    "conflict: the key was used for another amount",
)
@blp.alt_response(422, description="No idempotency key, or an amount not above 0")
def declare(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Declare cash handed to the county service center. The same key again returns it."""
    return cash.declare_remittance(
        get_session(), actor(), body["amount_fen"], request_key(body), note=body.get("note") or ""
    )


@blp.route("/county/remittances", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(RemittanceQuerySchema, location="query")
@blp.response(200, RemittanceSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not county staff")
def county_remittances(query: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Remittances handed in to the staff member's counties; to_confirm: those not counted yet."""
    return cash.county_remittances(get_session(), actor(), to_confirm=query["to_confirm"])


@blp.route("/county/remittances/<int:remittance_id>/confirm", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ConfirmSchema)
@blp.response(200, RemittanceSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not county staff of the remittance's county (its agent only sees it)")
@blp.alt_response(404, description="No such remittance, or one of another county")
@blp.alt_response(409, description="Counted more than declared, or more than the agent holds")
def confirm(body: dict[str, Any], remittance_id: int):  # type: ignore[no-untyped-def]
    """Confirm the counted amount: it moves from the agent's cash held into clearing; a shortfall
    stays held (owed by the agent) and shows as the discrepancy. Confirming again changes nothing."""
    return cash.confirm_remittance(get_session(), actor(), remittance_id, body["counted_fen"])
