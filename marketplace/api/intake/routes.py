"""Produce handed in at the village point, weighed and graded (API)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_intake", __name__, description="Produce handed in at the village point, weighed and graded")
