"""Places API: divisions, county service centers, village service points, distribution centers."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_places", __name__, description="The network of places")
