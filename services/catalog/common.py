"""What the catalog's modules share: who sells, the weight rules of a unit, and two small checks."""

from __future__ import annotations

from typing import Any, TypeGuard

from domain import Role, Unit
from services.errors import ValidationError

SELLER_ROLES = (Role.FARMER, Role.MERCHANT)
# Net weight of one unit when the unit says it: a 斤 is 500 g, a 公斤 1000 g.
UNIT_WEIGHT_G = {Unit.JIN: 500, Unit.KG: 1000}
MAX_NET_WEIGHT_G = 1_000_000  # one tonne in one unit of sale: above that it is a typo


def field_error(field: str, message: Any) -> ValidationError:
    """A validation error on one field, with the same message at the top."""
    return ValidationError(message, field_errors={field: [message]})


def is_int(value: Any) -> TypeGuard[int]:
    """A real integer: JSON's true/false are ints to Python, but not prices or stocks."""
    return isinstance(value, int) and not isinstance(value, bool)
