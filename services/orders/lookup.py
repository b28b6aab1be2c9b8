"""Finding orders: by their number, or a buyer's by the idempotency key that placed it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import Order
from services.errors import NotFound
from services.i18n import _


def find_by_key(session: Session, buyer_id: int, key: str) -> Order | None:
    """The buyer's order placed with this idempotency key, if any."""
    return session.scalar(select(Order).where(Order.buyer_id == buyer_id, Order.idempotency_key == key))


def get_order(session: Session, number: str) -> Order:
    """An order by its number, whoever asks (callers check who may see it); NotFound otherwise."""
    order = session.scalar(select(Order).where(Order.number == str(number)))
    if order is None:
        raise NotFound(_("Order not found."))
    return order
