"""Commissions API: an agent's earnings per month; a county's rates, which its county service
center staff set (services/commissions.py has the rules)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from marketplace.api.commissions.schemas import (
    CountyRatesSchema,
    EarningsSchema,
    MonthQuerySchema,
    SetRateSchema,
)
from marketplace.api.common import BEARER, token_required
from marketplace.auth import actor
from marketplace.db import get_session
from services import commissions

blp = Blueprint("api_commissions", __name__, description="Village agents' commissions and their rates")


@blp.route("/agent/earnings", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(MonthQuerySchema, location="query")
@blp.response(200, EarningsSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(422, description="A month that is not YYYY-MM")
def earnings(query: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The agent's commissions: totals of the last twelve months with any, and one month's."""
    return commissions.earnings(get_session(), actor(), query.get("month"))


@blp.route("/county/<county_code>/commission-rates", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, CountyRatesSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not staff of this county (or an admin)")
@blp.alt_response(404, description="No such county")
def county_rates(county_code: str):  # type: ignore[no-untyped-def]
    """The county's rates per kind: the rate for all categories, then one per top category."""
    return commissions.county_rates(get_session(), actor(), county_code)


@blp.route("/county/<county_code>/commission-rates", methods=["PUT"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(SetRateSchema)
@blp.response(200, CountyRatesSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not staff of this county")
@blp.alt_response(404, description="No such county")
@blp.alt_response(422, description="A rate outside 0-30 %, or an unknown category")
def set_rate(body: dict[str, Any], county_code: str):  # type: ignore[no-untyped-def]
    """Set one rate (or clear it with null). Setting the same rate again changes nothing."""
    session = get_session()
    commissions.set_rate(
        session, actor(), county_code, body["kind"], body.get("category_id"), body.get("rate_percent")
    )
    return commissions.county_rates(session, actor(), county_code)
