"""The village point's overviews over the API: the agent's day at a glance; county staff's view of
their county's agents (services/dashboard.py)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import fields

from marketplace.api.common import BEARER, BaseSchema, token_required
from marketplace.auth import actor
from marketplace.db import get_session
from services import dashboard

blp = Blueprint("api_agent", __name__, description="The agent's day and the county's village points")


class PointSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)


class DaySchema(BaseSchema):
    points = fields.List(fields.Nested(PointSchema), dump_only=True)
    arriving = fields.Integer(dump_only=True, metadata={"description": "parcels on their way to the point"})
    to_hand_out = fields.Integer(dump_only=True, metadata={"description": "parcels waiting to be collected"})
    overdue = fields.Integer(
        dump_only=True, metadata={"description": "of those, waiting past the reminder days"}
    )
    to_receive = fields.Integer(dump_only=True, metadata={"description": "produce to weigh and take in"})
    awaiting_payment = fields.Integer(dump_only=True, metadata={"description": "proxy orders not paid yet"})
    on_credit = fields.Integer(
        dump_only=True, metadata={"description": "proxy orders with cash due at pickup"}
    )
    cycles_to_confirm = fields.Integer(dump_only=True, metadata={"description": "standing orders to confirm"})
    cash_held_fen = fields.Integer(dump_only=True)
    credit_limit_fen = fields.Integer(dump_only=True)
    credit_used_fen = fields.Integer(dump_only=True)
    commission_month_fen = fields.Integer(dump_only=True)
    month = fields.String(dump_only=True)


class AgentRowSchema(BaseSchema):
    agent_id = fields.Function(lambda r: r.agent.id, dump_only=True)
    name = fields.Function(lambda r: r.agent.display_name, dump_only=True)
    points = fields.List(fields.Nested(PointSchema), dump_only=True)
    credit_limit_fen = fields.Integer(dump_only=True)
    credit_used_fen = fields.Integer(dump_only=True)
    proxy_orders = fields.Integer(dump_only=True, metadata={"description": "last 30 days"})
    proxy_fen = fields.Integer(dump_only=True)
    cash_held_fen = fields.Integer(dump_only=True)
    cash_oldest_at = fields.DateTime(dump_only=True, allow_none=True)
    uncollected = fields.Integer(dump_only=True)
    shortfalls = fields.Integer(dump_only=True, metadata={"description": "intake shortfalls, last 30 days"})


class CountySchema(BaseSchema):
    counties = fields.List(fields.String(), dump_only=True)
    rows = fields.List(fields.Nested(AgentRowSchema), dump_only=True)
    totals = fields.Dict(keys=fields.String(), values=fields.Integer(), dump_only=True)


@blp.route("/agent/day", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, DaySchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def day():  # type: ignore[no-untyped-def]
    """The agent's day at a glance: parcels, produce, unpaid proxy orders, cash, credit, commission."""
    return dashboard.agent_day(get_session(), actor())


@blp.route("/county/points", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, CountySchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not county staff")
def county():  # type: ignore[no-untyped-def]
    """The agents of the staff member's counties: credit, proxy orders, cash outstanding and its
    age, uncollected parcels, intake shortfalls."""
    return dashboard.county_overview(get_session(), actor())
