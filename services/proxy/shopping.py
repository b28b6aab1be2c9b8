"""Shopping for a villager: the agent acts only for the villagers of their own point, searches the
last-kilometer catalog (farm inputs, daily goods, appliances: categories of the goods flow) and
keeps a proxy cart per (agent, villager) on the server (`proxy_cart_items`), priced by the server
like any cart (services/orders/cart.py quote) for pickup at the point."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain import CategoryFlow, DeliveryMethod, ProxyCartItem, Role, User, Villager, clock
from services import authz, browse
from services.authz import ProxyAction, ProxyStanding
from services.errors import Forbidden, NotFound
from services.i18n import _
from services.orders import cart as carts
from services.orders.pricing import CheckoutSettings


def standings(actor: User | None, villager: Villager) -> set[ProxyStanding]:
    """How `actor` stands to a villager's proxy shopping: the agent of the villager's point."""
    if actor is None or villager.point_id not in authz.node_ids(actor, Role.AGENT):
        return set()
    return {ProxyStanding.POINT_AGENT}


def villager_for(session: Session, actor: User | None, villager_id: int) -> Villager:
    """The villager the agent shops for: one of their own point's (another point's: 403)."""
    actor = authz.require_user(actor)
    if not authz.node_ids(actor, Role.AGENT):
        raise Forbidden(_("Only village agents can do this."))
    villager = session.get(Villager, villager_id) if 0 < villager_id < 2**31 else None
    if villager is None:
        raise NotFound(_("No such villager."))
    if not authz.may_proxy(ProxyAction.SHOP_FOR, standings(actor, villager)):
        raise Forbidden(
            _(
                "This villager is registered at another service point. "
                "You can only shop for the villagers of your own point."
            )
        )
    return villager


def search_goods(
    session: Session, actor: User | None, *, q: str = "", after: str | None = None, limit: int = 20
) -> browse.ProductPage:
    """The last-kilometer catalog an agent shops in for villagers (goods flow only)."""
    actor = authz.require_user(actor)
    if not authz.node_ids(actor, Role.AGENT):
        raise Forbidden(_("Only village agents can do this."))
    return browse.find_products(
        session, q=(q or "")[:60], flow=CategoryFlow.GOODS, after=after or None, limit=limit
    )


def cart_items(session: Session, actor: User | None, villager_id: int) -> dict[int, int]:
    """The agent's proxy cart for the villager, {product_id: quantity}."""
    villager = villager_for(session, actor, villager_id)
    assert actor is not None
    rows = session.execute(
        select(ProxyCartItem.product_id, ProxyCartItem.quantity)
        .where(ProxyCartItem.agent_id == actor.id, ProxyCartItem.villager_id == villager.id)
        .order_by(ProxyCartItem.id)
    )
    return {product_id: qty for product_id, qty in rows}


def set_item(
    session: Session,
    actor: User | None,
    villager_id: int,
    product_id: int,
    quantity: object,
    *,
    now: datetime | None = None,
) -> dict[int, int]:
    """Put exactly `quantity` of a product in the villager's proxy cart (0 removes it). Absolute:
    the same request again changes nothing."""
    items = cart_items(session, actor, villager_id)
    qty = carts.parse_quantity(quantity, allow_zero=True)
    if qty:
        carts.buyable_product(session, product_id)
    return save_cart(session, actor, villager_id, carts.set_in(items, product_id, qty), now=now)


def save_cart(
    session: Session,
    actor: User | None,
    villager_id: int,
    items: Mapping[int, int],
    *,
    now: datetime | None = None,
) -> dict[int, int]:
    """Make the villager's proxy cart exactly `items` (absolute, so a repeat changes nothing)."""
    villager = villager_for(session, actor, villager_id)
    assert actor is not None
    wanted = carts.parse_items(dict(items))
    for product_id in wanted:
        carts.buyable_product(session, product_id)
    now = now or clock.now()
    current = {
        row.product_id: row
        for row in session.scalars(
            select(ProxyCartItem).where(
                ProxyCartItem.agent_id == actor.id, ProxyCartItem.villager_id == villager.id
            )
        )
    }
    for product_id, gone in current.items():
        if product_id not in wanted:
            session.delete(gone)
    for product_id, qty in wanted.items():
        row = current.get(product_id)
        if row is None:
            session.add(
                ProxyCartItem(
                    agent_id=actor.id,
                    villager_id=villager.id,
                    product_id=product_id,
                    quantity=qty,
                    updated_at=now,
                )
            )
        elif row.quantity != qty:
            row.quantity = qty
            row.updated_at = now
    session.commit()
    return wanted


def forget(session: Session, agent_id: int, villager_id: int, product_ids: list[int]) -> None:
    """Drop the products just ordered from the proxy cart (the caller commits)."""
    if product_ids:
        session.execute(
            delete(ProxyCartItem).where(
                ProxyCartItem.agent_id == agent_id,
                ProxyCartItem.villager_id == villager_id,
                ProxyCartItem.product_id.in_(product_ids),
            )
        )


def quote(session: Session, items: Mapping[int, int], settings: CheckoutSettings) -> carts.Quote:
    """The proxy cart priced now, for pickup at the point."""
    return carts.quote(session, dict(items), settings, DeliveryMethod.PICKUP)
