"""What people do with orders after checkout: buyers look and cancel or ask for money back,
sellers accept, decline, pack and hand in, staff move parcels along and refund. Every move
goes through states.apply with the parties the actor may act as on that sub-order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    ListingConsent,
    Order,
    OrderStatus,
    PaymentStatus,
    Role,
    SellerProfile,
    SubOrder,
    User,
    clock,
)
from services import authz
from services.errors import NotFound, ValidationError
from services.i18n import _
from services.payments import service as payments
from services.payments.gateway import PaymentGateway
from services.validation import check_text

from . import states
from .checkout import get_order
from .states import IllegalTransition, Party

S = OrderStatus
# Moves that belong to a use case of their own (money moves with them), not the generic one.
SPECIAL = {S.PAID, S.CANCELLED, S.REFUND_REQUESTED, S.REFUNDED, S.PARTIALLY_REFUNDED, S.HANDED_IN}


def parties(session: Session, actor: User | None, sub: SubOrder) -> set[Party]:
    """The parties `actor` may act as on this sub-order (empty: it is none of their business)."""
    if actor is None:
        return set()
    result: set[Party] = set()
    order = sub.order
    if actor.id in (order.buyer_id, order.placed_by_id):
        result.add(Party.BUYER)
    if actor.id == sub.seller_id or _operates_for(session, actor, sub.seller_id):
        result.add(Party.SELLER)
    if _is_staff_for(session, actor, sub):
        result.add(Party.STAFF)
    return result


def _operates_for(session: Session, actor: User, seller_id: int) -> bool:
    """An agent running the farmer's shop under a consent (托管代运营)."""
    if not actor.has_role(Role.AGENT):
        return False
    return (
        session.scalar(
            select(ListingConsent.id).where(
                ListingConsent.agent_id == actor.id,
                ListingConsent.farmer_id == seller_id,
                ListingConsent.revoked_at.is_(None),
            )
        )
        is not None
    )


def _is_staff_for(session: Session, actor: User, sub: SubOrder) -> bool:
    if authz.is_admin(actor):
        return True
    profile = session.get(SellerProfile, sub.seller_id)
    order = sub.order
    counties = {
        c
        for c in (
            profile.county_code if profile else None,
            order.pickup_node.county_code if order.pickup_node else None,
        )
        if c
    }
    if counties & authz.staff_county_codes(actor):
        return True
    points = {n for n in (profile.home_point_id if profile else None, order.pickup_node_id) if n}
    if points & authz.node_ids(actor, Role.AGENT):
        return True
    return bool(authz.node_ids(actor, Role.DC_STAFF))


def _sub_order(session: Session, number: str, *, lock: bool = False) -> SubOrder:
    stmt = select(SubOrder).where(SubOrder.number == str(number))
    if lock:
        stmt = stmt.with_for_update(of=SubOrder).execution_options(populate_existing=True)
    sub = session.scalar(stmt)
    if sub is None:
        raise NotFound(_("Order not found."))
    return sub


def visible_sub_order(session: Session, actor: User | None, number: str) -> tuple[SubOrder, set[Party]]:
    """A sub-order and what the actor may do with it; someone else's is simply not found."""
    actor = authz.require_user(actor)
    sub = _sub_order(session, number)
    who = parties(session, actor, sub)
    if not who:
        raise NotFound(_("Order not found."))
    return sub, who


def visible_order(session: Session, actor: User | None, number: str) -> Order:
    """The buyer's view of a whole order (staff may look too); anyone else gets not found."""
    actor = authz.require_user(actor)
    order = get_order(session, number)
    if actor.id in (order.buyer_id, order.placed_by_id) or authz.is_admin(actor):
        return order
    if any(Party.STAFF in parties(session, actor, sub) for sub in order.sub_orders):
        return order
    raise NotFound(_("Order not found."))


def buyer_orders(session: Session, actor: User | None, *, limit: int = 50) -> list[Order]:
    actor = authz.require_user(actor)
    return list(
        session.scalars(
            select(Order).where(Order.buyer_id == actor.id).order_by(Order.id.desc()).limit(limit)
        )
    )


def seller_sub_orders(
    session: Session,
    actor: User | None,
    *,
    seller_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[SubOrder]:
    """Orders to fulfil: the actor's own, or a consenting farmer's for their agent."""
    actor = authz.require_user(actor)
    owner = seller_id or actor.id
    if owner != actor.id and not (_operates_for(session, actor, owner) or authz.is_admin(actor)):
        raise NotFound(_("Order not found."))
    stmt = select(SubOrder).where(SubOrder.seller_id == owner)
    if status:
        try:
            stmt = stmt.where(SubOrder.status == OrderStatus(status))
        except ValueError:
            raise ValidationError(_("Unknown status.")) from None
    else:
        stmt = stmt.where(SubOrder.status != OrderStatus.PENDING_PAYMENT)
    return list(session.scalars(stmt.order_by(SubOrder.id.desc()).limit(limit)))


def staff_sub_orders(
    session: Session, actor: User | None, *, status: str | None = None, limit: int = 100
) -> list[SubOrder]:
    """Sub-orders in the staff member's reach (admins: all), newest first."""
    actor = authz.require_user(actor)
    stmt = select(SubOrder).join(Order)
    if not authz.is_admin(actor):
        counties = authz.staff_county_codes(actor)
        points = authz.node_ids(actor, Role.AGENT)
        if not counties and not points and not authz.node_ids(actor, Role.DC_STAFF):
            raise authz.Forbidden()
        if not authz.node_ids(actor, Role.DC_STAFF):
            sellers = select(SellerProfile.user_id).where(
                (SellerProfile.county_code.in_(counties)) | (SellerProfile.home_point_id.in_(points))
            )
            stmt = stmt.where((SubOrder.seller_id.in_(sellers)) | (Order.pickup_node_id.in_(points)))
    if status:
        try:
            stmt = stmt.where(SubOrder.status == OrderStatus(status))
        except ValueError:
            raise ValidationError(_("Unknown status.")) from None
    return list(session.scalars(stmt.order_by(SubOrder.id.desc()).limit(limit)))


def moves_for(sub: SubOrder, who: set[Party]) -> list[OrderStatus]:
    """The buttons to offer: the generic moves this actor may make now."""
    return [m for m in states.allowed_moves(sub.status, who) if m not in SPECIAL]


# --- actions ----------------------------------------------------------------------------------------


def _acting(
    session: Session, actor: User | None, number: str, need: set[Party]
) -> tuple[User, SubOrder, set[Party]]:
    actor = authz.require_user(actor)
    sub = _sub_order(session, number, lock=True)
    every = parties(session, actor, sub)
    if not every:
        raise NotFound(_("Order not found."))
    who = every & need
    if not who:
        raise authz.Forbidden()
    return actor, sub, who


def move(
    session: Session,
    actor: User | None,
    number: str,
    target: Any,
    *,
    note: str = "",
    now: datetime | None = None,
) -> SubOrder:
    """A move with no money attached: accept, in transit, ready for pickup, delivered, completed."""
    try:
        target = OrderStatus(str(target))
    except ValueError:
        raise IllegalTransition() from None
    if target in SPECIAL:
        raise IllegalTransition()
    actor, sub, who = _acting(session, actor, number, {Party.BUYER, Party.SELLER, Party.STAFF})
    if sub.status == target:
        return sub  # a repeated tap
    note = check_text(note, "note", max_len=200)
    states.apply(session, sub, target, party=who, actor=actor, note=note, now=now)
    session.commit()
    return sub


def mark_ready(session: Session, actor: User | None, number: str, *, now: datetime | None = None) -> SubOrder:
    """The seller packed the parcel and will bring it to the village point."""
    actor, sub, _who = _acting(session, actor, number, {Party.SELLER, Party.STAFF})
    if sub.status != OrderStatus.ACCEPTED:
        raise IllegalTransition()
    if sub.ready_at is None:
        sub.ready_at = now or clock.now()
        session.commit()
    return sub


def hand_in(
    session: Session, gateway: PaymentGateway, actor: User | None, number: str, *, now: datetime | None = None
) -> SubOrder:
    """Goods handed in at the point: dispatch. A pre-sale's authorised money is taken now."""
    actor, sub, who = _acting(session, actor, number, {Party.SELLER, Party.STAFF})
    if sub.status == OrderStatus.HANDED_IN:
        return sub
    if not states.can_move(sub.status, OrderStatus.HANDED_IN, who):
        raise IllegalTransition()
    order = sub.order
    if order.presale:
        session.commit()  # release the row lock while the gateway captures
        payments.capture(session, gateway, order, now=now)
        sub = _sub_order(session, number, lock=True)
        if sub.status == OrderStatus.HANDED_IN:
            return sub
    states.apply(session, sub, OrderStatus.HANDED_IN, party=who, actor=actor, now=now)
    session.commit()
    return sub


def decline(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    number: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> SubOrder:
    """The seller cannot fill it (or the harvest failed): the buyer's money goes back at once."""
    reason = check_text(reason, "reason", max_len=200, required=True)
    actor, sub, who = _acting(session, actor, number, {Party.SELLER, Party.STAFF})
    if sub.status not in (OrderStatus.PAID, OrderStatus.ACCEPTED):
        raise IllegalTransition()
    sub.decline_reason = reason
    session.commit()
    return _give_all_back(session, gateway, actor, sub, reason, next(iter(who)), f"decline-{sub.number}", now)


def _give_all_back(
    session: Session,
    gateway: PaymentGateway,
    actor: User,
    sub: SubOrder,
    reason: str,
    party: Party,
    key: str,
    now: datetime | None,
) -> SubOrder:
    """All of a paid sub-order's money back: an authorised pre-sale's hold is released (nothing
    was taken), anything else is refunded in full. `key` makes a repeated request a no-op."""
    if payments.payment_of(session, sub.order).status == PaymentStatus.REQUIRES_CAPTURE:
        payments.void_authorisation(session, gateway, sub.order, actor=actor, note=reason, now=now)
    else:
        payments.refund_sub_order(
            session, gateway, actor, sub.id, None, reason=reason, party=party, now=now, idempotency_key=key
        )
    session.refresh(sub)
    return sub


def cancel_unpaid(
    session: Session, gateway: PaymentGateway, actor: User | None, number: str, *, now: datetime | None = None
) -> Order:
    """The buyer (or staff) drops an order before paying: the stock goes back."""
    order = visible_order(session, actor, number)
    if all(sub.status == OrderStatus.CANCELLED for sub in order.sub_orders):
        return order
    if any(sub.status != OrderStatus.PENDING_PAYMENT for sub in order.sub_orders):
        raise IllegalTransition()
    return payments.cancel_order(session, gateway, order, actor=actor, note="cancelled by buyer", now=now)


def request_refund(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    number: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> SubOrder:
    """The buyer asks for their money back. Before the seller accepted, it is refunded at once;
    after delivery, staff decide (refund all, part, or turn it down)."""
    reason = check_text(reason, "reason", max_len=200, required=True)
    actor, sub, who = _acting(session, actor, number, {Party.BUYER})
    if not states.can_move(sub.status, OrderStatus.REFUND_REQUESTED, who):
        raise IllegalTransition()
    if sub.status == OrderStatus.PAID:
        session.commit()
        return _give_all_back(session, gateway, actor, sub, reason, Party.BUYER, f"cancel-{sub.number}", now)
    states.apply(session, sub, OrderStatus.REFUND_REQUESTED, party=who, actor=actor, note=reason, now=now)
    session.commit()
    return sub


def staff_refund(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    number: str,
    amount_fen: int | None,
    reason: str,
    idempotency_key: str,
    *,
    now: datetime | None = None,
) -> SubOrder:
    """Staff give back all or part of a sub-order (after-sale, shortfall, damage)."""
    reason = check_text(reason, "reason", max_len=200, required=True)
    actor, sub, who = _acting(session, actor, number, {Party.STAFF})
    if not (
        sub.status in (OrderStatus.REFUND_REQUESTED, OrderStatus.PARTIALLY_REFUNDED)
        or states.can_move(sub.status, OrderStatus.REFUND_REQUESTED, who)
    ):
        raise IllegalTransition()
    session.commit()
    payments.refund_sub_order(
        session,
        gateway,
        actor,
        sub.id,
        amount_fen,
        reason=reason,
        party=Party.STAFF,
        idempotency_key=idempotency_key,
        now=now,
    )
    session.refresh(sub)
    return sub


def history(session: Session, actor: User | None, number: str) -> list[Any]:
    sub, _who = visible_sub_order(session, actor, number)
    return list(sub.events)
