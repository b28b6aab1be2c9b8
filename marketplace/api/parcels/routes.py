"""Parcels arriving at the village point and handed over (API)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_parcels", __name__, description="Parcels arriving at the village point and handed over")
