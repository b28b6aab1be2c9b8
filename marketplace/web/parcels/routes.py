"""Parcels arriving at the village point and handed over (pages)."""

from __future__ import annotations

from marketplace.web.parcels import bp  # noqa: F401
