"""Stock reservations: units leave `products.stock` the moment an order is placed (a
conditional UPDATE, so two buyers can never both take the last unit) and wait in
`products.reserved` until the payment succeeds (committed: sold) or fails or expires
(released: back on sale). Rows are always touched in product-id order, so concurrent carts
lock them in the same order and cannot deadlock."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Integer, and_, bindparam, case, func, not_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from domain import (
    Order,
    Product,
    ProductStatus,
    ReservationStatus,
    StockReservation,
    clock,
)
from services import rows
from services.campaigns import holds as campaign_holds
from services.catalog import freshness

log = logging.getLogger(__name__)


def take_stock(session: Session, wanted: Mapping[int, int]) -> list[int]:
    """Take the quantities out of stock, all or nothing; returns the product ids that had too
    little (then the caller rolls back: the others may have been taken). Runs in the caller's
    transaction."""
    return stock_taken(session, wanted, rows.run_in_turn(session, take_statements(wanted)))


def take_statements(wanted: Mapping[int, int]) -> list[rows.Statement]:
    """The conditional UPDATEs that take `wanted` out of stock, in product-id order (for
    rows.run_in_turn; `stock_taken` reads their answers)."""
    return [(_TAKE, {"take_id": product_id, "take_qty": wanted[product_id]}) for product_id in sorted(wanted)]


def stock_taken(
    session: Session, wanted: Mapping[int, int], answers: list[list[tuple[Any, ...]]]
) -> list[int]:
    """What the UPDATEs of take_statements(wanted) did: the products that had too little."""
    short = [product_id for product_id, answer in zip(sorted(wanted), answers, strict=True) if not answer]
    # A product that was active and is now sold out flipped: the shop's lists change.
    if not short and any(answer[0][0] == ProductStatus.SOLD_OUT for answer in answers):
        freshness.bump(session, "sold out")
    _reread(session, wanted)
    return short


_QTY: BindParameter[int] = bindparam("take_qty", type_=Integer)
_PRODUCTS = rows.table(Product).c
# Built once (every checkout runs it), on the table (Core: no ORM bulk-update machinery; a flash
# sale's checkouts run it holding the contended row): the units out of stock into reserved, if
# there are enough.
_TAKE = (
    update(rows.table(Product))
    .where(
        _PRODUCTS.id == bindparam("take_id"),
        _PRODUCTS.stock >= _QTY,
        _PRODUCTS.status == ProductStatus.ACTIVE,
    )
    .values(
        stock=_PRODUCTS.stock - _QTY,
        reserved=_PRODUCTS.reserved + _QTY,
        # Sold out at 0, except pre-sales, which sell against an announced harvest.
        status=case(
            (and_(_PRODUCTS.stock == _QTY, _PRODUCTS.presale.is_(False)), ProductStatus.SOLD_OUT.value),
            else_=_PRODUCTS.status,
        ),
    )
    .returning(_PRODUCTS.status)
)


def _put_back(session: Session, product_id: int, qty: int) -> bool:
    """Units back on sale; True when that put a sold-out product back on sale (its status is
    read under the row's lock first: the UPDATE's RETURNING sees only the new one)."""
    was = session.scalar(select(Product.status).where(Product.id == product_id).with_for_update())
    now = session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            stock=Product.stock + qty,
            reserved=Product.reserved - qty,
            status=case(
                (
                    and_(Product.status == ProductStatus.SOLD_OUT.value, Product.presale.is_(False)),
                    ProductStatus.ACTIVE.value,
                ),
                else_=Product.status,
            ),
        )
        .returning(Product.status)
        .execution_options(synchronize_session=False)
    ).scalar()
    return was == ProductStatus.SOLD_OUT and now == ProductStatus.ACTIVE


def _sold(session: Session, product_id: int, qty: int) -> None:
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(reserved=Product.reserved - qty, sales_count=Product.sales_count + qty)
        .execution_options(synchronize_session=False)
    )


def _held(session: Session, order_id: int) -> list[StockReservation]:
    rows = session.scalars(
        select(StockReservation)
        .where(StockReservation.order_id == order_id, StockReservation.status == ReservationStatus.HELD)
        .order_by(StockReservation.product_id, StockReservation.id)
        .with_for_update(of=StockReservation)
    )
    return list(rows)


def commit_order_stock(session: Session, order: Order, now: datetime | None = None) -> None:
    """The order is paid: its held units are sold. In the caller's transaction."""
    now = now or clock.now()
    held = _held(session, order.id)
    for res in held:
        _sold(session, res.product_id, res.quantity)
        res.status = ReservationStatus.COMMITTED
        res.settled_at = now
    _reread(session, {res.product_id for res in held})
    campaign_holds.commit(session, order, now)


def release_order_stock(session: Session, order: Order, now: datetime | None = None) -> int:
    """The order will not be paid: its held units go back on sale. Returns units released."""
    now = now or clock.now()
    released = 0
    held = _held(session, order.id)
    back_on_sale = False
    for res in held:
        back_on_sale = _put_back(session, res.product_id, res.quantity) or back_on_sale
        res.status = ReservationStatus.RELEASED
        res.settled_at = now
        released += res.quantity
    if back_on_sale:
        freshness.bump(session, "back on sale")
    _reread(session, {res.product_id for res in held})
    campaign_holds.release(session, order, now)
    return released


def retake_order_stock(session: Session, order: Order, now: datetime | None = None) -> bool:
    """A payment arrived for an order whose hold had already been released: take the units
    again if they are still there (then they are sold at once). False if they are not."""
    rows = list(
        session.scalars(
            select(StockReservation)
            .where(
                StockReservation.order_id == order.id, StockReservation.status == ReservationStatus.RELEASED
            )
            .order_by(StockReservation.product_id)
        )
    )
    wanted: dict[int, int] = {}
    for res in rows:
        wanted[res.product_id] = wanted.get(res.product_id, 0) + res.quantity
    if not wanted:
        return True
    now = now or clock.now()
    nested = session.begin_nested()
    # The stock, then the campaigns' quotas and subsidy (committed at once): all or nothing.
    if take_stock(session, wanted) or not campaign_holds.retake(session, order, now):
        nested.rollback()
        return False
    nested.commit()
    for res in rows:
        res.status = ReservationStatus.HELD
    session.flush()
    commit_order_stock(session, order, now)
    return True


@dataclass
class Holds:
    """What a buyer's (or a placer's) unpaid orders hold now: the orders, and their units."""

    orders: set[int] = field(default_factory=set)
    units_by_product: dict[int, int] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return sum(self.units_by_product.values())


def unpaid_holds(
    session: Session,
    *,
    buyer_id: int | None = None,
    placed_for_others_by: int | None = None,
    now: datetime | None = None,
) -> Holds:
    """The live holds (held, payment window not over) of the orders of `buyer_id`, or of the
    orders `placed_for_others_by` placed for someone else. A hold whose window ended counts no
    more: the expiry job is about to give its units back, and paying it retakes them."""
    now = now or clock.now()
    stmt = (
        select(StockReservation.order_id, StockReservation.product_id, func.sum(StockReservation.quantity))
        .join(Order, Order.id == StockReservation.order_id)
        .where(StockReservation.status == ReservationStatus.HELD, StockReservation.expires_at > now)
        .group_by(StockReservation.order_id, StockReservation.product_id)
    )
    if buyer_id is not None:
        # Not the proxy orders an agent (the table's buyer) placed for a villager without an account.
        stmt = stmt.where(
            Order.buyer_id == buyer_id,
            not_(and_(Order.villager_id.is_not(None), Order.placed_by_id == buyer_id)),
        )
    if placed_for_others_by is not None:
        stmt = stmt.where(
            Order.placed_by_id == placed_for_others_by,
            or_(Order.buyer_id != placed_for_others_by, Order.villager_id.is_not(None)),
        )
    holds = Holds()
    for order_id, product_id, qty in session.execute(stmt):
        holds.orders.add(order_id)
        holds.units_by_product[product_id] = holds.units_by_product.get(product_id, 0) + int(qty)
    return holds


def _reread(session: Session, product_ids: Iterable[int]) -> None:
    """Core UPDATEs bypass the identity map: loaded products read their new numbers next time."""
    for product_id in product_ids:
        product = session.identity_map.get(identity_key(Product, product_id))
        if product is not None:
            session.expire(product, ["stock", "reserved", "status", "sales_count"])


def reconcile_reserved(
    session: Session, product_ids: Iterable[int] | None = None
) -> dict[int, tuple[int, int]]:
    """Recompute `products.reserved` from the held reservations; log and fix any mismatch.

    Returns {product_id: (was, now)} for the products that were wrong. Commits.
    """
    held = (
        select(StockReservation.product_id, func.sum(StockReservation.quantity).label("qty"))
        .where(StockReservation.status == ReservationStatus.HELD)
        .group_by(StockReservation.product_id)
        .subquery()
    )
    stmt = (
        select(Product.id, Product.reserved, func.coalesce(held.c.qty, 0))
        .outerjoin(held, held.c.product_id == Product.id)
        .where(Product.reserved != func.coalesce(held.c.qty, 0))
    )
    if product_ids is not None:
        stmt = stmt.where(Product.id.in_(list(product_ids)))
    wrong: dict[int, tuple[int, int]] = {}
    for product_id, was, should in session.execute(stmt).all():
        log.warning("reserved mismatch on product %s: %s recorded, %s held", product_id, was, should)
        # Only the reserved figure is fixed: stock is what buyers can take and was correct
        # when each reservation moved it.
        session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(reserved=int(should))
            .execution_options(synchronize_session=False)
        )
        wrong[product_id] = (int(was), int(should))
    session.commit()
    return wrong
