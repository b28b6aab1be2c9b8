"""Finding orders: by their number, or a buyer's by the idempotency key that placed it."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from domain import Order
from services.errors import NotFound
from services.i18n import _


def find_by_key(session: Session, buyer_id: int, key: str) -> Order | None:
    """The buyer's order placed with this idempotency key, if any. Asked as its id alone: every
    new checkout asks, and the order's eager relations are loaded only for a replay."""
    order_id = session.scalar(BY_KEY, {"buyer_id": buyer_id, "key": key})
    return None if order_id is None else session.get(Order, order_id)


# (the checkout sends it together with its lock of the buyer's row: checkout._lock_and_find)
BY_KEY = select(Order.id).where(
    Order.buyer_id == bindparam("buyer_id"), Order.idempotency_key == bindparam("key")
)


def get_order(session: Session, number: str) -> Order:
    """An order by its number, whoever asks (callers check who may see it); NotFound otherwise."""
    order = session.scalar(select(Order).where(Order.number == str(number)))
    if order is None:
        raise NotFound(_("Order not found."))
    return order
