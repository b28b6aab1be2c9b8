"""Proxy orders (代购) an agent places for villagers (API)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_proxy", __name__, description="Proxy orders (代购) an agent places for villagers")
