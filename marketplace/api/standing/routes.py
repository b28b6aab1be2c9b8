"""Standing order API (a native app or a shop PC client drives the same flows as the pages): set
one up for a villager of the agent's point (an idempotency key: a retry sets it up once), list and
see them with their cycles, pause / resume / cancel; the cycles to confirm, nearest cut-off first;
confirm one (its proxy order is placed once, whatever is repeated) or skip it before the cut-off.
services/standing.py has the rules."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from marketplace.api.common import BEARER, token_required
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.api.standing.schemas import (
    StandingConfirmSchema,
    StandingCreateSchema,
    StandingCycleSchema,
    StandingDetailSchema,
    StandingOrderSchema,
    StandingQuerySchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway
from services import standing
from services.errors import ValidationError
from services.i18n import _

blp = Blueprint("api_standing", __name__, description="Standing orders: a villager's regular proxy order")


def _key(body: dict[str, Any]) -> str:
    return body.get("idempotency_key") or request.headers.get("Idempotency-Key") or ""


def _pairs(rows: list[dict[str, Any]], field: str) -> dict[int, int]:
    found: dict[int, int] = {}
    for row in rows:
        if row["product_id"] in found:
            msg = _("Each product once, please.")
            raise ValidationError(msg, field_errors={field: [msg]})
        found[row["product_id"]] = row["quantity"]
    return found


def _view(found: standing.StandingOrder) -> standing.StandingView:
    return standing.describe(get_session(), actor(), found, checkout_settings())


def _cycle_view(cycle: standing.StandingCycle) -> standing.CycleView:
    return standing.describe_cycle(get_session(), actor(), cycle, checkout_settings())


@blp.route("/agent/standing-orders", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(StandingQuerySchema, location="query")
@blp.response(200, StandingOrderSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def list_standing(query: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The standing orders of the agent's point, active first (cancelled ones on request)."""
    found = standing.list_standing(get_session(), actor(), include_cancelled=query["include_cancelled"])
    return [_view(s) for s in found]


@blp.route("/agent/standing-orders", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(StandingCreateSchema)
@blp.response(201, StandingOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not an agent, or a villager of another point")
@blp.alt_response(404, description="No such villager")
@blp.alt_response(409, description="The key was used for another villager's standing order")
@blp.alt_response(
    422,
    description="No idempotency key, no items, a quantity not 1-999, a product not on sale, a cadence out "
    "of range (weekday 0-6, day 1-28, every 1-12), a start date in the past or more than a year ahead",
)
def create(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Set up a standing order for a villager of the agent's point: the items each time, the
    cadence (weekly on a weekday or monthly on a day 1-28, every 1-12 weeks or months) and how the
    villager pays (wechat_pay, alipay, cash, credit). Nothing is ordered until a cycle is
    confirmed. The same key again returns the standing order it set up."""
    data = standing.StandingInput(
        villager_id=body["villager_id"],
        items=_pairs(body["items"], "items"),
        payment_method=body["payment_method"],
        cadence=body["cadence"],
        repeat_every=body["repeat_every"],
        weekday=body["weekday"],
        day_of_month=body["day_of_month"],
        start_date=body["start_date"],
        note=body["note"],
    )
    return _view(standing.create(get_session(), actor(), data, _key(body))), 201


@blp.route("/agent/standing-orders/<int:standing_id>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingDetailSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such standing order, or one of another point")
def show(standing_id: int):  # type: ignore[no-untyped-def]
    """One standing order, priced now, with its cycles (latest due date first)."""
    session = get_session()
    found = standing.get_standing(session, actor(), standing_id)
    return {
        "standing_order": _view(found),
        "cycles": [_cycle_view(c) for c in standing.cycles_of(session, found)],
    }


@blp.route("/agent/standing-orders/<int:standing_id>/pause", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such standing order, or one of another point")
@blp.alt_response(409, description="The standing order was cancelled")
def pause(standing_id: int):  # type: ignore[no-untyped-def]
    """Pause: no cycles until resumed; its prepared cycles before their cut-off are skipped.
    Pausing again changes nothing."""
    return _view(standing.pause(get_session(), actor(), standing_id))


@blp.route("/agent/standing-orders/<int:standing_id>/resume", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such standing order, or one of another point")
@blp.alt_response(409, description="The standing order was cancelled")
def resume(standing_id: int):  # type: ignore[no-untyped-def]
    """Resume: the cycles the pause skipped that are still before their cut-off come back."""
    return _view(standing.resume(get_session(), actor(), standing_id))


@blp.route("/agent/standing-orders/<int:standing_id>/cancel", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such standing order, or one of another point")
@blp.alt_response(409, description="The standing order was cancelled")
def cancel(standing_id: int):  # type: ignore[no-untyped-def]
    """Cancel for good: its prepared cycles before their cut-off are skipped; orders already
    placed stay. Cancelling again changes nothing."""
    return _view(standing.cancel(get_session(), actor(), standing_id))


@blp.route("/agent/standing-orders/cycles", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingCycleSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def cycles_to_confirm():  # type: ignore[no-untyped-def]
    """The cycles waiting for the agent, nearest cut-off first: villager, items, total, method."""
    return [_cycle_view(c) for c in standing.cycles_to_confirm(get_session(), actor())]


@blp.route("/agent/standing-orders/cycles/<int:cycle_id>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingCycleSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such cycle, or one of another point")
def cycle(cycle_id: int):  # type: ignore[no-untyped-def]
    """One cycle: its state, cut-off, items priced now and, once confirmed, its order."""
    return _cycle_view(standing.get_cycle(get_session(), actor(), cycle_id))


@blp.route("/agent/standing-orders/cycles/<int:cycle_id>/confirm", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(StandingConfirmSchema)
@blp.response(200, StandingCycleSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such cycle, or one of another point")
@blp.alt_response(
    409,
    description="cutoff_passed: after the cut-off; a skipped cycle, a paused or cancelled standing order; "
    "out_of_stock: a product no longer on sale or short (named); credit_exceeded: above the agent's credit",
)
@blp.alt_response(
    422, description="No idempotency key, nothing to order, a quantity not 0-999, a product not in it"
)
def confirm(body: dict[str, Any], cycle_id: int):  # type: ignore[no-untyped-def]
    """Confirm a cycle before its cut-off: its proxy order is placed with the standing order's
    payment method and items (this time's `quantities`, if given). Confirming again, with any
    key, returns the cycle and its one order. For wechat_pay / alipay the order's QR is at
    /agent/proxy/orders/{order_number}."""
    rows = body.get("quantities")
    quantities = _pairs(rows, "quantities") if rows else None
    done = standing.confirm(
        get_session(),
        payment_gateway(),
        actor(),
        cycle_id,
        _key(body),
        checkout_settings(),
        quantities=quantities,
    )
    return _cycle_view(done)


@blp.route("/agent/standing-orders/cycles/<int:cycle_id>/skip", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, StandingCycleSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(404, description="No such cycle, or one of another point")
@blp.alt_response(
    409, description="cutoff_passed: after the cut-off; already confirmed; a cancelled standing order"
)
def skip(cycle_id: int):  # type: ignore[no-untyped-def]
    """Skip this time: no order. Skipping again changes nothing."""
    return _cycle_view(standing.skip(get_session(), actor(), cycle_id))
