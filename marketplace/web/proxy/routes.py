"""Proxy orders (代购) an agent places for villagers (pages)."""

from __future__ import annotations

from marketplace.web.proxy import bp  # noqa: F401
