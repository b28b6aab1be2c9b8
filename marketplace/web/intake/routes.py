"""Produce handed in at the village point, weighed and graded (pages)."""

from __future__ import annotations

from marketplace.web.intake import bp  # noqa: F401
