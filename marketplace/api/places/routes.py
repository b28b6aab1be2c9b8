"""Places API: divisions, county service centers, village service points, distribution centers.

Reads are public. Writes need a bearer token (not a browser session: the API takes no CSRF
token) and the scope the services check: admins anything, county staff their county's points,
a point's agent or a center's staff its phone, hours and description.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from domain import NodeKind
from marketplace.api.common import BEARER, token_required
from marketplace.api.places.schemas import (
    CountyCenterSchema,
    DistributionCenterSchema,
    DivisionDetailSchema,
    DivisionQuerySchema,
    DivisionSchema,
    NodeCreateSchema,
    NodeSchema,
    NodeUpdateSchema,
    VillagePointQuerySchema,
    VillagePointSchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from services import places

blp = Blueprint("api_places", __name__, description="The network of places")


@blp.route("/divisions", methods=["GET"])
@blp.arguments(DivisionQuerySchema, location="query", as_kwargs=True)
@blp.response(200, DivisionSchema(many=True))
@blp.alt_response(404, description="Unknown parent_code")
def list_divisions(**query: Any):  # type: ignore[no-untyped-def]
    """Administrative divisions: the children of parent_code, or all of one level (cities by default)."""
    return places.browse_divisions(get_session(), **query)


@blp.route("/divisions/<string:code>", methods=["GET"])
@blp.response(200, DivisionDetailSchema)
@blp.alt_response(404, description="Unknown division code")
def get_division(code: str):  # type: ignore[no-untyped-def]
    """One division with its path from the city down."""
    return places.get_division(get_session(), code)


@blp.route("/village-points", methods=["GET"])
@blp.arguments(VillagePointQuerySchema, location="query", as_kwargs=True)
@blp.response(200, VillagePointSchema(many=True))
def list_village_points(county_code: str | None = None):  # type: ignore[no-untyped-def]
    """Open village service points, by county and village, optionally one county's."""
    return places.village_point_directory(get_session(), county_code)


@blp.route("/village-points/<int:point_id>", methods=["GET"])
@blp.response(200, VillagePointSchema)
@blp.alt_response(404, description="No open village point with this id")
def get_village_point(point_id: int):  # type: ignore[no-untyped-def]
    """One open village service point, with the county service center that serves it."""
    return places.public_village_point(get_session(), point_id)


@blp.route("/county-centers", methods=["GET"])
@blp.response(200, CountyCenterSchema(many=True))
def list_county_centers():  # type: ignore[no-untyped-def]
    """Open county service centers."""
    return places.list_centers(get_session(), NodeKind.COUNTY_CENTER)


@blp.route("/distribution-centers", methods=["GET"])
@blp.response(200, DistributionCenterSchema(many=True))
def list_distribution_centers():  # type: ignore[no-untyped-def]
    """Open distribution centers with the counties each serves."""
    return places.list_centers(get_session(), NodeKind.DISTRIBUTION_CENTER)


@blp.route("/nodes", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(NodeCreateSchema)
@blp.response(201, NodeSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Outside the caller's scope")
@blp.alt_response(409, description="The county already has a service center")
def create_node(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Open a county center, village point or distribution center (admins; county staff: points)."""
    kind = body.pop("kind")
    served = body.pop("served_county_codes", ())
    return places.create_node(get_session(), actor(), kind, body, served_county_codes=served)


@blp.route("/nodes/<int:node_id>", methods=["PATCH"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(NodeUpdateSchema)
@blp.response(200, NodeSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Outside the caller's scope, or a field the caller may not change")
@blp.alt_response(404, description="No such node")
def update_node(body: dict[str, Any], node_id: int):  # type: ignore[no-untyped-def]
    """Change a node. Operators (agent, DC staff) may change phone, opening_hours and description."""
    served = body.pop("served_county_codes", None)
    return places.update_node(get_session(), actor(), node_id, body, served_county_codes=served)
