"""What people do with orders after checkout: buyers look and cancel or ask for money back,
sellers accept, decline and pack, staff move parcels along, admins decide refunds. The hand-in
is no action here: it is the intake the receiving agent or county staff record at the point
(services/intake.py), the only way to HANDED_IN. Who stands as which party on a sub-order, and what each
party may do, is the table in services/authz.py; every move goes through states.apply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, not_, or_, select, true
from sqlalchemy.orm import Session

from domain import (
    Node,
    NotificationEvent,
    Order,
    OrderStatus,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
    SellerProfile,
    SubOrder,
    User,
    clock,
)
from services import authz, intake, notify
from services.accounts import AuthPolicy
from services.authz import Action
from services.catalog.consents import active_consent
from services.errors import NotFound, RateLimited, ValidationError
from services.i18n import _
from services.payments import service as payments
from services.payments.gateway import PaymentGateway
from services.validation import check_text, mask_phone

from . import pickup, states
from .lookup import get_order
from .pickup import PickupCodeKeys
from .states import IllegalTransition, Party

S = OrderStatus
# Moves that belong to a use case of their own (money moves with them), not the generic one.
SPECIAL = {S.PAID, S.CANCELLED, S.REFUND_REQUESTED, S.REFUNDED, S.HANDED_IN}
# A seller may still decline until the parcel is handed in.
DECLINABLE = (S.PAID, S.ACCEPTED)


def is_buyer_of(actor: User | None, order: Order) -> bool:
    """Whether the order is `actor`'s own: they bought it, or placed it for the buyer."""
    return actor is not None and actor.id in (order.buyer_id, order.placed_by_id)


def recipient_phone_for(actor: User | None, order: Order) -> str:
    """The recipient's phone as `actor` may see it: whole for the buyer, masked for anyone else."""
    return str(order.recipient_phone if is_buyer_of(actor, order) else mask_phone(order.recipient_phone))


def standings(session: Session, actor: User | None, sub: SubOrder) -> set[authz.Standing]:
    """How `actor` stands to this sub-order (empty: it is none of their business).

    Staff standings come from the grants' scopes: the agent of the seller's home point or of the
    pickup point, staff of the seller's or the pickup point's county, staff of the distribution
    center the parcel is picked up at, admins. Nobody is staff on an order they bought, placed
    or sell.
    """
    if actor is None:
        return set()
    result: set[authz.Standing] = set()
    if is_buyer_of(actor, sub.order):
        result.add(authz.Standing.BUYER)
    if actor.id == sub.seller_id:
        result.add(authz.Standing.SELLER)
    elif active_consent(session, actor, sub.seller_id) is not None:
        result.add(authz.Standing.OPERATOR)
    if result & {authz.Standing.BUYER, authz.Standing.SELLER}:
        return result
    if authz.is_admin(actor):
        result.add(authz.Standing.ADMIN)
    profile = session.get(SellerProfile, sub.seller_id)
    pickup = sub.order.pickup_node
    counties = {
        c for c in (profile.county_code if profile else None, pickup.county_code if pickup else None) if c
    }
    if counties & authz.staff_county_codes(actor):
        result.add(authz.Standing.COUNTY_STAFF)
    points = {n for n in (profile.home_point_id if profile else None, sub.order.pickup_node_id) if n}
    if points & authz.node_ids(actor, Role.AGENT):
        result.add(authz.Standing.POINT_AGENT)
    if sub.order.pickup_node_id in authz.node_ids(actor, Role.DC_STAFF):
        result.add(authz.Standing.DC_STAFF)
    return result


def parties(session: Session, actor: User | None, sub: SubOrder) -> set[Party]:
    """The parties `actor` may act as on this sub-order (empty: it is none of their business)."""
    return authz.parties_of(standings(session, actor, sub))


def _staff_scope(actor: User) -> Any:
    """The SQL condition for the sub-orders (joined with their orders) on which `actor` has a
    staff standing: the same rules as `standings`, for lists. Raises Forbidden for non-staff."""
    if authz.is_admin(actor):
        scope: Any = true()
    else:
        counties = authz.staff_county_codes(actor)
        points = authz.node_ids(actor, Role.AGENT)
        centers = authz.node_ids(actor, Role.DC_STAFF)
        if not (counties or points or centers):
            raise authz.Forbidden()
        pickup_county = select(Node.id).where(Node.county_code.in_(counties))
        sellers = select(SellerProfile.user_id).where(
            SellerProfile.county_code.in_(counties) | SellerProfile.home_point_id.in_(points)
        )
        scope = or_(
            SubOrder.seller_id.in_(sellers),
            Order.pickup_node_id.in_(points | centers),
            Order.pickup_node_id.in_(pickup_county),
        )
    mine = or_(Order.buyer_id == actor.id, Order.placed_by_id == actor.id, SubOrder.seller_id == actor.id)
    return and_(scope, not_(mine))


def staff_visible_numbers(session: Session, actor: User, sub_order_ids: Iterable[int]) -> set[str]:
    """Of these sub-orders, the numbers whose page `actor` opens as staff (`_staff_scope`: the
    rules of `standings`, in one query); empty for someone who is no staff."""
    ids = sorted(set(sub_order_ids))
    if not ids:
        return set()
    try:
        scope = _staff_scope(actor)
    except authz.Forbidden:
        return set()
    return set(session.scalars(select(SubOrder.number).join(Order).where(SubOrder.id.in_(ids), scope)))


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


def _may_see(session: Session, actor: User, order: Order) -> bool:
    return (
        is_buyer_of(actor, order)
        or authz.is_admin(actor)
        or any(Party.STAFF in parties(session, actor, sub) for sub in order.sub_orders)
    )


def visible_order(session: Session, actor: User | None, number: str) -> Order:
    """The buyer's view of a whole order (staff may look too); anyone else gets not found."""
    actor = authz.require_user(actor)
    order = get_order(session, number)
    if not _may_see(session, actor, order):
        raise NotFound(_("Order not found."))
    return order


def own_order(session: Session, actor: User | None, number: str) -> Order:
    """The buyer's own order, to pay for or cancel; anyone else's (staff's too) is not found."""
    actor = authz.require_user(actor)
    order = get_order(session, number)
    if not is_buyer_of(actor, order):
        raise NotFound(_("Order not found."))
    return order


def buyer_orders(session: Session, actor: User | None, *, limit: int = 50) -> list[Order]:
    """The actor's own orders, newest first."""
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
    if owner != actor.id and not (active_consent(session, actor, owner) or authz.is_admin(actor)):
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
    """Sub-orders on which the actor is staff (admins: all but their own), newest first."""
    actor = authz.require_user(actor)
    stmt = select(SubOrder).join(Order).where(_staff_scope(actor))
    if status:
        try:
            stmt = stmt.where(SubOrder.status == OrderStatus(status))
        except ValueError:
            raise ValidationError(_("Unknown status.")) from None
    return list(session.scalars(stmt.order_by(SubOrder.id.desc()).limit(limit)))


def moves_for(sub: SubOrder, who: set[Party]) -> list[OrderStatus]:
    """The buttons to offer: the generic moves this actor may make now."""
    return [m for m in states.allowed_moves(sub.status, who) if m not in SPECIAL]


def offered_moves(session: Session, actor: User | None, sub: SubOrder) -> list[OrderStatus]:
    """The generic moves (`move`) `actor` may make on this sub-order now."""
    return _decidable(session, sub, moves_for(sub, parties(session, actor, sub)))


def _may_turn_down(session: Session, sub: SubOrder) -> bool:
    """An admin may turn a refund request down (back to completed) only when it is an after-sale
    request (asked after completion) and no refund of it is on its way: a request before
    delivery is a full refund in flight, never a completion."""
    pending = session.scalar(
        select(Refund.id).where(Refund.sub_order_id == sub.id, Refund.status == RefundStatus.PENDING).limit(1)
    )
    return pending is None and states.state_before_refund(session, sub) == S.COMPLETED


# A parcel with a shipment moves only by its scans (services/logistics/scans.py).
SCANNED_MOVES = frozenset({S.IN_TRANSIT, S.READY_FOR_PICKUP, S.OUT_FOR_DELIVERY})


def _travels_by_scans(session: Session, sub: SubOrder) -> bool:
    from services.logistics import scans  # it builds on this package

    return scans.shipment_of(session, sub) is not None


def _decidable(session: Session, sub: SubOrder, moves: list[OrderStatus]) -> list[OrderStatus]:
    if sub.status == S.REFUND_REQUESTED and S.COMPLETED in moves and not _may_turn_down(session, sub):
        moves = [m for m in moves if m != S.COMPLETED]
    if SCANNED_MOVES.intersection(moves) and _travels_by_scans(session, sub):
        moves = [m for m in moves if m not in SCANNED_MOVES]
    return moves


# --- what may be done now: the rules the actions below enforce, asked by pages and the API -----------


def needs_pickup_code(sub: SubOrder, who: set[Party], target: OrderStatus) -> bool:
    """Handing a pickup order's parcel over at the point (staff completing it) takes the buyer's
    pickup code; the buyer confirming receipt themselves does not, nor a home delivery."""
    return (
        target == S.COMPLETED
        and sub.status == S.READY_FOR_PICKUP
        and pickup.is_pickup(sub.order)
        and Party.STAFF in who
        and Party.BUYER not in who
    )


def _may_decline(sub: SubOrder, who: set[Party]) -> bool:
    return authz.may(Action.DECLINE, who) and sub.status in DECLINABLE


def _may_pack(sub: SubOrder, who: set[Party]) -> bool:
    return authz.may(Action.PACK, who) and sub.status == S.ACCEPTED


def _may_request_refund(sub: SubOrder, who: set[Party]) -> bool:
    return authz.may(Action.REQUEST_REFUND, who) and states.can_move(
        sub.status, S.REFUND_REQUESTED, who & authz.SUB_ORDER_ACTIONS[Action.REQUEST_REFUND]
    )


def _may_staff_refund(sub: SubOrder, who: set[Party]) -> bool:
    # While a refund is asked for, and wherever an admin could ask for one.
    deciders = who & authz.SUB_ORDER_ACTIONS[Action.REFUND]
    return bool(deciders) and (
        sub.status == S.REFUND_REQUESTED or states.can_move(sub.status, S.REFUND_REQUESTED, deciders)
    )


@dataclass
class SubActions:
    """What one person may do with one sub-order now: the buttons and forms to show them."""

    who: set[Party]
    moves: list[OrderStatus] = field(default_factory=list)
    decline: bool = False
    ready: bool = False
    hand_in: bool = False
    request_refund: bool = False
    staff_refund: bool = False
    refundable_fen: int = 0
    # Beside the staff's refund form: each line's paid, refunded and refundable units.
    refund_lines: list[payments.LineRefundable] = field(default_factory=list)
    # The completed move hands a pickup parcel over: it takes the buyer's pickup code.
    pickup_code: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.moves
            or self.decline
            or self.ready
            or self.hand_in
            or self.request_refund
            or self.staff_refund
        )


def sub_actions(
    session: Session, actor: User | None, sub: SubOrder, who: set[Party] | None = None
) -> SubActions:
    """What `actor` (acting as `who`, by default every party they are) may do with `sub` now:
    exactly what the actions below would accept."""
    if who is None:
        who = parties(session, actor, sub)
    acts = SubActions(who=who, moves=_decidable(session, sub, moves_for(sub, who)))
    acts.decline = _may_decline(sub, who)
    acts.ready = _may_pack(sub, who) and sub.ready_at is None  # packed already: nothing to offer
    # The hand-in is the intake the receiving agent or county staff record (services/intake.py):
    # the button leads to its form, and only for those who receive this seller's goods.
    acts.hand_in = Party.STAFF in who and intake.may_receive(session, actor, sub)
    acts.pickup_code = S.COMPLETED in acts.moves and needs_pickup_code(sub, who, S.COMPLETED)
    acts.request_refund = _may_request_refund(sub, who)
    if _may_staff_refund(sub, who):
        payment = sub.order.payment
        # On the agent's credit the sellers are paid too: a refund frees the credit.
        if payment is not None and payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.ON_CREDIT):
            acts.refundable_fen = payments.refundable_fen(session, sub)
            acts.staff_refund = acts.refundable_fen > 0
            if acts.staff_refund:
                acts.refund_lines = payments.refundable_lines(session, sub)
    return acts


def _all_awaiting_payment(order: Order) -> bool:
    return all(sub.status == S.PENDING_PAYMENT for sub in order.sub_orders)


def _payment_open(order: Order) -> bool:
    payment = order.payment
    return payment is not None and payment.status in payments.OPEN


@dataclass(frozen=True)
class OrderActions:
    """What one person may do with a whole order now."""

    pay: bool = False
    cancel: bool = False


def order_actions(
    session: Session, actor: User | None, order: Order, *, now: datetime | None = None
) -> OrderActions:
    """Whether `actor` may pay for the order now (its buyer, in time, payment open) and cancel it
    unpaid (whoever `cancel_unpaid` accepts, while nothing is paid)."""
    if actor is None:
        return OrderActions()
    pay = (
        is_buyer_of(actor, order)
        and _payment_open(order)
        and any(sub.status == S.PENDING_PAYMENT for sub in order.sub_orders)
        and not payments.is_expired(order, now)
    )
    cancel = _payment_open(order) and _all_awaiting_payment(order) and _may_see(session, actor, order)
    return OrderActions(pay=pay, cancel=cancel)


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
    pickup_code: str | None = None,
    keys: PickupCodeKeys | None = None,
    now: datetime | None = None,
) -> SubOrder:
    """A move with no money attached: accept, in transit, ready for pickup, delivered, completed
    (an admin turning an after-sale request down, too). Staff handing a pickup parcel over give
    the buyer's `pickup_code`, checked with `keys` (services/orders/pickup.py); a parcel handed
    over already is left as it is, whatever code is sent again."""
    try:
        target = OrderStatus(str(target))
    except ValueError:
        raise IllegalTransition() from None
    if target in SPECIAL:
        raise IllegalTransition()
    actor, sub, who = _acting(session, actor, number, {Party.BUYER, Party.SELLER, Party.STAFF, Party.ADMIN})
    if sub.status == target:
        return sub  # a repeated tap
    note = check_text(note, "note", max_len=200)
    if not states.can_move(sub.status, target, who) and states.can_move(sub.status, target, set(Party)):
        raise authz.Forbidden()  # a move someone else makes (the seller accepts, an admin turns down)
    if target not in _decidable(session, sub, [target]):
        if target in SCANNED_MOVES and _travels_by_scans(session, sub):
            raise IllegalTransition(_("This parcel moves by its scans: scan its label where it is."))
        raise IllegalTransition()
    if target == S.COMPLETED and pickup.is_pickup(sub.order):
        from services import parcels  # the hand-over at the point (it builds on this package)

        parcels.check_generic_completion(session, sub)  # cash owed on credit: the parcels page
        if needs_pickup_code(sub, who, target):
            if keys is None:
                raise RuntimeError("handing a pickup parcel over needs the pickup code keys")
            pickup.check(session, sub.order, pickup_code, keys, now=now)
            parcels.record_code_collection(session, actor, sub, now=now)  # who, when, how; the SMS
    states.apply(session, sub, target, party=who, actor=actor, note=note, now=now)
    session.commit()
    return sub


# --- pickup codes: the buyer's side ------------------------------------------------------------------


@dataclass(frozen=True)
class PickupCodeView:
    """The pickup code as its buyer sees it on the order page."""

    code: str
    locked: bool
    attempts_left: int


def buyer_pickup_code(
    session: Session, actor: User | None, order: Order, keys: PickupCodeKeys
) -> PickupCodeView | None:
    """The pickup code of the buyer's own pickup order while a parcel of it is still to be
    collected (made on first need); None for anyone else and any other order."""
    if not is_buyer_of(actor, order) or not pickup.waiting(order):
        return None
    row = pickup.ensure_code(session, order, keys)
    session.commit()
    left = pickup.attempts_left(keys, row)
    return PickupCodeView(code=pickup.code_of(keys, row), locked=left == 0, attempts_left=left)


# A new code at most this often (the wait between SMS codes).
NEW_CODE_WAIT = timedelta(seconds=AuthPolicy.code_resend_seconds)


def new_pickup_code(
    session: Session, actor: User | None, number: str, keys: PickupCodeKeys, *, now: datetime | None = None
) -> Order:
    """The buyer has a new pickup code issued: the old one stops working, wrong tries are
    forgotten (a locked code is unlocked this way, and only this way), and the new code is sent
    by SMS to the pickup phone. At most one a minute."""
    order = own_order(session, actor, number)
    if not pickup.waiting(order):
        raise IllegalTransition()
    now = now or clock.now()
    row = pickup.ensure_code(session, order, keys, lock=True)
    if row.issue > 1 and row.created_at > now - NEW_CODE_WAIT:
        wait = int((row.created_at + NEW_CODE_WAIT - now).total_seconds()) + 1
        raise RateLimited(_("Please wait %(n)d seconds before asking for another code.", n=wait))
    row = pickup.reissue(session, order, keys, now=now)
    notify.record(session, NotificationEvent.PICKUP_CODE, order, seq=row.issue, now=now)
    session.commit()
    return order


def mark_ready(session: Session, actor: User | None, number: str, *, now: datetime | None = None) -> SubOrder:
    """The seller packed the parcel and will bring it to the village point."""
    actor, sub, who = _acting(session, actor, number, set(authz.SUB_ORDER_ACTIONS[Action.PACK]))
    if not _may_pack(sub, who):
        raise IllegalTransition()
    if sub.ready_at is None:
        sub.ready_at = now or clock.now()
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
    actor, sub, who = _acting(session, actor, number, set(authz.SUB_ORDER_ACTIONS[Action.DECLINE]))
    if not _may_decline(sub, who):
        raise IllegalTransition()
    reason = check_text(reason, "reason", max_len=200, required=True)  # who may, before what they sent
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
    if not _all_awaiting_payment(order):
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
    actor, sub, who = _acting(session, actor, number, set(authz.SUB_ORDER_ACTIONS[Action.REQUEST_REFUND]))
    if not _may_request_refund(sub, who):
        raise IllegalTransition()
    reason = check_text(reason, "reason", max_len=200, required=True)  # who may, before what they sent
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
    units: Mapping[int, int] | None = None,
) -> SubOrder:
    """An admin gives back all or part of a sub-order (after-sale, shortfall, damage): an amount,
    or units of its lines ({order line id: units}) for exactly what they were paid."""
    actor, sub, who = _acting(session, actor, number, set(authz.SUB_ORDER_ACTIONS[Action.REFUND]))
    if not _may_staff_refund(sub, who):
        raise IllegalTransition()
    reason = check_text(reason, "reason", max_len=200, required=True)  # who may, before what they sent
    session.commit()
    payments.refund_sub_order(
        session,
        gateway,
        actor,
        sub.id,
        amount_fen,
        reason=reason,
        party=Party.ADMIN,
        idempotency_key=idempotency_key,
        now=now,
        units=units,
    )
    session.refresh(sub)
    return sub


def history(session: Session, actor: User | None, number: str) -> list[Any]:
    """The sub-order's events, oldest first, for whoever may see it."""
    sub, _who = visible_sub_order(session, actor, number)
    return list(sub.events)
