"""Parcels at the village point (issue 11, item 4): arriving, waiting, handed over or returned.

Arriving. The agent of a pickup order's point sees its parcels (sub-orders) on their way there
(IN_TRANSIT, delivery pickup) and marks one arrived by a tap or by scanning or typing its number
(`mark_arrived`): IN_TRANSIT → READY_FOR_PICKUP through states.apply as staff, which records the
ready-for-pickup SMS with the pickup code. Arrived already: the same parcel is answered again.

Waiting. The parcels READY_FOR_PICKUP at the agent's points, oldest first, with their age in
whole days since they arrived, the recipient as the agent may see them (a proxy order's villager
through services/villagers.present, the phone masked otherwise), a flag once the parcel is
PARCEL_REMIND_DAYS old and the day it goes back.

Handing over (`hand_over`). The collector gives the order's pickup code (services/orders/pickup.py
checks it: wrong codes counted, 5 lock it until the buyer has a new one issued), or, the code lost,
the agent confirms who they are and records why (ID card seen, a villager they know, a family
member they know; free text beside it) and the collector's name. An order placed on the agent's
credit is paid in cash at the counter: the agent confirms the cash was received and
services.cash.collect_on_pickup records it in the hand-over's transaction. One `ParcelHandover`
row per sub-order, written with the move READY_FOR_PICKUP → COMPLETED (as staff) and the
"collected" SMS in one commit: the same key again returns that row; another key is told the
parcel was collected already.

Uncollected (`flag_uncollected`, the flag-uncollected-parcels job). After PARCEL_REMIND_DAYS
the recipient gets one reminder SMS; after PARCEL_RETURN_DAYS the parcel goes back: a handover
row with method "returned", reverse legs taking the parcel back to its origin (its shipment
RETURNING, then RETURNED when it arrives there: services/logistics/scans.send_back), and the
sub-order's full refund through the standard refund path
(services/payments/service.refund_sub_order, as the admins' rule: only admins decide money after
hand-in, and this is their standing decision, run by the system). The complete-delivered job
no longer completes parcels waiting at a pickup point (services/jobs.py): they leave the point
by a hand-over or by this return.

Days here are whole 24-hour periods since the parcel arrived, as complete-delivered counts them
(China has one zone and no daylight saving).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    CreditCollection,
    DeliveryMethod,
    HandoverMethod,
    IdentityReason,
    Node,
    Notification,
    NotificationEvent,
    Order,
    OrderEvent,
    OrderStatus,
    ParcelHandover,
    PaymentMethod,
    PaymentStatus,
    Role,
    ScanKind,
    SubOrder,
    User,
    clock,
)
from services import authz, notify
from services.authz import ParcelAction, ParcelStanding, Party
from services.errors import Conflict, NotFound, ServiceError, ValidationError
from services.i18n import _, yuan_text
from services.logistics import scans
from services.orders import pickup, states
from services.orders.checkout import check_idempotency_key
from services.orders.pickup import PickupCodeKeys
from services.payments.gateway import PaymentGateway
from services.validation import check_text, mask_phone

log = logging.getLogger(__name__)

S = OrderStatus
REMIND_DAYS = 3
RETURN_DAYS = 7
RETURN_BATCH = 200
LIST_LIMIT = 200
MAX_NUMBER = 28  # a sub-order number's length (domain.SubOrder.number)

# The moves of a parcel at its point are the staff's moves in the state machine.
STAFF = Party.STAFF


class AlreadyCollected(Conflict):
    code = "already_collected"


class CashNotConfirmed(ValidationError):
    code = "cash_not_confirmed"


# --- who may --------------------------------------------------------------------------------------


def standings(actor: User | None, sub: SubOrder) -> set[ParcelStanding]:
    """How `actor` stands to this parcel: the agent of its order's pickup point (not its seller)."""
    order = sub.order
    if actor is None or order.delivery_method != DeliveryMethod.PICKUP or order.pickup_node_id is None:
        return set()
    if sub.seller_id == actor.id:
        return set()
    if order.pickup_node_id in authz.node_ids(actor, Role.AGENT):
        return {ParcelStanding.PICKUP_AGENT}
    return set()


def _points(actor: User | None) -> set[int]:
    """The points whose parcels the actor lists: Forbidden for anyone who runs none."""
    actor = authz.require_user(actor)
    points = authz.node_ids(actor, Role.AGENT)
    authz.require_parcel(ParcelAction.LIST, {ParcelStanding.PICKUP_AGENT} if points else set())
    return points


def _not_here() -> NotFound:
    return NotFound(_("No parcel with this number is coming to or waiting at your point."))


# --- what the agent sees --------------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelView:
    """One parcel as the point's agent sees it."""

    sub: SubOrder
    recipient: str
    phone: str
    villager: bool
    items: str
    arrived_at: datetime | None = None
    age_days: int = 0
    flagged: bool = False
    returns_on: datetime | None = None
    # Cash the agent collects at the counter (an order on their credit not paid yet); 0 otherwise.
    collect_fen: int = 0
    handover: ParcelHandover | None = None
    point_name: str = ""

    @property
    def number(self) -> str:
        return self.sub.number

    @property
    def order_number(self) -> str:
        return self.sub.order.number

    @property
    def status(self) -> OrderStatus:
        return self.sub.status


def _recipient(session: Session, actor: User | None, order: Order) -> tuple[str, str, bool]:
    """The recipient's name and phone as `actor` may see them: a villager's by the villager rules
    (services/villagers.present), anyone else's name with the phone masked."""
    if order.villager_id is not None and order.villager is not None:
        from services import villagers

        view = villagers.present(order.villager, actor)
        return view.name, view.phone, True
    return order.recipient, mask_phone(order.recipient_phone), False


def collect_fen(session: Session, sub: SubOrder) -> int:
    """Cash the agent collects at hand-over for a parcel of an order on their credit: what the
    sub-order still owes (charged less refunded) unless collected already; 0 for any other."""
    payment = sub.order.payment
    if payment is None or payment.method != PaymentMethod.CREDIT or payment.status != PaymentStatus.ON_CREDIT:
        return 0
    collected = session.scalar(select(CreditCollection.id).where(CreditCollection.sub_order_id == sub.id))
    if collected is not None:
        return 0
    return max(sub.total_fen - (sub.released_fen or 0) - sub.refunded_fen, 0)


def _age(arrived: datetime, now: datetime) -> int:
    return max((now - arrived) // timedelta(days=1), 0)


def _view(
    session: Session,
    actor: User | None,
    sub: SubOrder,
    *,
    now: datetime,
    remind_days: int = REMIND_DAYS,
    return_days: int = RETURN_DAYS,
) -> ParcelView:
    name, phone, villager = _recipient(session, actor, sub.order)
    items = "，".join(f"{line.name}×{line.quantity}" for line in sub.lines)
    node = sub.order.pickup_node
    handover = session.scalar(select(ParcelHandover).where(ParcelHandover.sub_order_id == sub.id))
    base = ParcelView(
        sub=sub,
        recipient=name,
        phone=phone,
        villager=villager,
        items=items,
        collect_fen=collect_fen(session, sub) if sub.status == S.READY_FOR_PICKUP else 0,
        handover=handover,
        point_name=node.name if isinstance(node, Node) else "",
    )
    if sub.status != S.READY_FOR_PICKUP:
        return base
    arrived = sub.status_changed_at
    age = _age(arrived, now)
    return dataclasses.replace(
        base,
        arrived_at=arrived,
        age_days=age,
        flagged=age >= remind_days,
        returns_on=arrived + timedelta(days=return_days),
    )


def _at_points(points: set[int], status: OrderStatus) -> Any:
    return (
        select(SubOrder)
        .join(Order, SubOrder.order_id == Order.id)
        .where(
            Order.pickup_node_id.in_(points),
            Order.delivery_method == DeliveryMethod.PICKUP,
            SubOrder.status == status,
        )
    )


def arriving(session: Session, actor: User | None, *, limit: int = LIST_LIMIT) -> list[ParcelView]:
    """Parcels on their way to the agent's points (in transit), the longest on the way first."""
    points = _points(actor)
    assert actor is not None
    now = clock.now()
    subs = session.scalars(
        _at_points(points, S.IN_TRANSIT)
        .where(SubOrder.seller_id != actor.id)
        .order_by(SubOrder.status_changed_at, SubOrder.id)
        .limit(limit)
    ).all()
    return [_view(session, actor, sub, now=now) for sub in subs]


def waiting(
    session: Session,
    actor: User | None,
    *,
    remind_days: int = REMIND_DAYS,
    return_days: int = RETURN_DAYS,
    now: datetime | None = None,
    limit: int = LIST_LIMIT,
) -> list[ParcelView]:
    """Parcels waiting to be collected at the agent's points, the oldest (flagged) first."""
    points = _points(actor)
    assert actor is not None
    now = now or clock.now()
    subs = session.scalars(
        _at_points(points, S.READY_FOR_PICKUP)
        .where(SubOrder.seller_id != actor.id)
        .order_by(SubOrder.status_changed_at, SubOrder.id)
        .limit(limit)
    ).all()
    return [
        _view(session, actor, sub, now=now, remind_days=remind_days, return_days=return_days) for sub in subs
    ]


def _find(session: Session, actor: User, raw: Any, *, lock: bool = False) -> SubOrder:
    """The parcel a number names, among those of the actor's points: a sub-order's number, or an
    order's when it has one parcel for the point (or one on its way there). Anything else, and
    another point's parcel: not found (nothing said about it)."""
    text = str(raw or "").strip()
    if not text:
        msg = _("Scan or type the parcel's number.")
        raise ValidationError(msg, field_errors={"number": [msg]})
    if len(text) > MAX_NUMBER:
        raise _not_here()
    sub = session.scalar(select(SubOrder).where(SubOrder.number == text))
    if sub is None:
        order = session.scalar(select(Order).where(Order.number == text))
        if order is None:
            raise _not_here()
        mine = [s for s in order.sub_orders if standings(actor, s)]
        on_way = [s for s in mine if s.status == S.IN_TRANSIT]
        if len(on_way) > 1 or (not on_way and len(mine) > 1):
            msg = _("This order has several parcels: scan or type the number on the parcel.")
            raise ValidationError(msg, field_errors={"number": [msg]})
        if not mine:
            raise _not_here()
        sub = on_way[0] if on_way else mine[0]
    if not standings(actor, sub):
        raise _not_here()
    if lock:
        locked = session.scalar(
            select(SubOrder)
            .where(SubOrder.id == sub.id)
            .with_for_update(of=SubOrder)
            .execution_options(populate_existing=True)
        )
        assert locked is not None
        sub = locked
    return sub


def get_parcel(
    session: Session,
    actor: User | None,
    number: str,
    *,
    remind_days: int = REMIND_DAYS,
    return_days: int = RETURN_DAYS,
    now: datetime | None = None,
) -> ParcelView:
    """One parcel of the agent's points (arriving, waiting or gone), with its hand-over if any."""
    actor = authz.require_user(actor)
    sub = _find(session, actor, number)
    authz.require_parcel(ParcelAction.LIST, standings(actor, sub))
    return _view(
        session, actor, sub, now=now or clock.now(), remind_days=remind_days, return_days=return_days
    )


# --- arrived --------------------------------------------------------------------------------------


def _has_arrived(session: Session, sub: SubOrder) -> bool:
    return (
        session.scalar(
            select(OrderEvent.id)
            .where(OrderEvent.sub_order_id == sub.id, OrderEvent.to_status == S.READY_FOR_PICKUP)
            .limit(1)
        )
        is not None
    )


def mark_arrived(
    session: Session, actor: User | None, number: Any, key: Any, *, now: datetime | None = None
) -> SubOrder:
    """The parcel arrived at the agent's point: ready for pickup (the recipient is sent the
    pickup code). Arrived already (a second scan, a replay): the parcel as it is, nothing twice."""
    actor = authz.require_user(actor)
    _points(actor)
    key = check_idempotency_key(key)
    sub = _find(session, actor, number, lock=True)
    authz.require_parcel(ParcelAction.RECEIVE, standings(actor, sub))
    shipment = scans.shipment_of(session, sub)
    if shipment is not None:  # it travels by scans: this is its arrival scan at the point
        point = session.get(Node, sub.order.pickup_node_id)
        try:
            scans.apply_scan(
                session,
                actor,
                shipment,
                sub,
                ScanKind.ARRIVED,
                point,
                key,
                at=now or clock.now(),
                now=now or clock.now(),
            )
        except ServiceError:
            session.rollback()
            raise
        session.commit()
        return sub
    if sub.status == S.IN_TRANSIT:
        states.apply(
            session,
            sub,
            S.READY_FOR_PICKUP,
            party=STAFF,
            actor=actor,
            note="arrived at the point",
            details={"arrived_key": key},
            now=now,
        )
        session.commit()
        return sub
    if _has_arrived(session, sub):
        session.commit()
        return sub
    session.rollback()
    raise states.IllegalTransition(_("This parcel is not on its way to your point yet."))


# --- handing over ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoverInput:
    """What the agent entered: the pickup code, or (code lost) a reason and who collected it."""

    pickup_code: str = ""
    reason: str = ""
    reason_text: str = ""
    collected_by: str = ""
    cash_received: bool = False


REASON_CHOICES = (
    (IdentityReason.ID_CARD, _("ID card seen")),
    (IdentityReason.KNOWN_VILLAGER, _("A villager I know")),
    (IdentityReason.FAMILY_MEMBER, _("A family member I know")),
)


def _reason(raw: str) -> IdentityReason:
    try:
        return IdentityReason(str(raw or "").strip())
    except ValueError:
        msg = _("Without the pickup code, choose how you confirmed who collects the parcel.")
        raise ValidationError(msg, field_errors={"reason": [msg]}) from None


def _existing_for_key(session: Session, key: str) -> ParcelHandover | None:
    return session.scalar(select(ParcelHandover).where(ParcelHandover.idempotency_key == key))


def _already(handover: ParcelHandover | None, sub: SubOrder) -> ServiceError:
    if handover is not None and handover.method == HandoverMethod.RETURNED:
        return AlreadyCollected(_("This parcel was not collected in time and has been returned."))
    if handover is not None:
        when = clock.local(handover.created_at).strftime("%Y-%m-%d %H:%M")
        return AlreadyCollected(_("This parcel was already collected (%(when)s).", when=when))
    if sub.status == S.COMPLETED:
        return AlreadyCollected(_("This parcel was already collected."))
    return states.IllegalTransition(_("This parcel is not waiting at the point."))


def hand_over(
    session: Session,
    actor: User | None,
    number: Any,
    data: HandoverInput,
    key: Any,
    keys: PickupCodeKeys,
    *,
    now: datetime | None = None,
) -> ParcelHandover:
    """Hand a waiting parcel over at the point: with the order's pickup code, or, the code lost,
    with the agent's recorded reason and the collector's name; an order on the agent's credit
    only once the agent confirms the cash was received. The parcel completes and the recipient
    is told, once: the same key again returns the hand-over; another key: already collected.

    A wrong code is counted (and committed) before anything is written; the fifth locks the
    code (services/orders/pickup.py)."""
    actor = authz.require_user(actor)
    sub = _find(session, actor, number, lock=True)  # another point's parcel: not found
    authz.require_parcel(ParcelAction.HAND_OVER, standings(actor, sub))
    key = check_idempotency_key(key)
    done = _existing_for_key(session, key)
    if done is not None:
        if done.sub_order_id != sub.id:
            session.rollback()
            raise Conflict(_("This form was already used for another parcel. Please reload the page."))
        session.commit()
        return done
    if sub.status != S.READY_FOR_PICKUP:
        found = session.scalar(select(ParcelHandover).where(ParcelHandover.sub_order_id == sub.id))
        session.rollback()
        raise _already(found, sub)
    order = sub.order
    # What was typed, all checked before the code is (a form error never spends a try).
    code = str(data.pickup_code or "").strip()
    collected_by = check_text(data.collected_by, "collected_by", max_len=40)
    if code:
        method, reason, reason_text = HandoverMethod.CODE, None, ""
    else:
        if not str(data.reason or "").strip() and not str(data.reason_text or "").strip():
            msg = _("Enter the pickup code, or choose how you confirmed who collects the parcel.")
            raise ValidationError(msg, field_errors={"pickup_code": [msg], "reason": [msg]})
        method, reason = HandoverMethod.REASON, _reason(data.reason)
        reason_text = check_text(data.reason_text, "reason_text", max_len=200)
        if not collected_by:
            msg = _("Write the name of the person who collects the parcel.")
            raise ValidationError(msg, field_errors={"collected_by": [msg]})
    cash_fen = collect_fen(session, sub)
    if cash_fen and not data.cash_received:
        msg = _("Collect %(amount)s in cash and confirm you received it.", amount=yuan_text(cash_fen))
        raise CashNotConfirmed(msg, field_errors={"cash_received": [msg]})
    now = now or clock.now()
    if method == HandoverMethod.CODE:
        pickup.check(session, order, code, keys, now=now)  # wrong: counted, committed, raised
    if cash_fen:
        from services import cash

        # In this transaction (it does not commit): the credit is paid back with the cash taken.
        made = cash.collect_on_pickup(session, actor, order, sub_order=sub, now=now)
        cash_fen = sum(c.amount_fen for c in made)
    handover = ParcelHandover(
        sub_order_id=sub.id,
        point_id=order.pickup_node_id,
        handed_by_id=actor.id,
        method=method,
        reason=reason,
        reason_text=reason_text,
        collected_by=collected_by or order.recipient,
        cash_collected_fen=cash_fen,
        idempotency_key=key,
        created_at=now,
    )
    session.add(handover)
    scans.handed_over(session, sub, actor, now=now)
    states.apply(
        session,
        sub,
        S.COMPLETED,
        party=STAFF,
        actor=actor,
        note=f"handed over ({method.value})",
        details={"handover": method.value, **({"reason": reason.value} if reason else {})},
        now=now,
    )
    notify.record(
        session,
        NotificationEvent.PARCEL_COLLECTED,
        order,
        sub=sub,
        params={"time": clock.local(now).strftime("%m月%d日 %H:%M")},
        now=now,
    )
    try:
        session.flush()
    except IntegrityError:  # the same key or the same parcel, at the same moment
        session.rollback()
        again = _existing_for_key(session, key)
        if again is not None and again.sub_order_id == sub.id:
            return again
        found = session.scalar(select(ParcelHandover).where(ParcelHandover.sub_order_id == sub.id))
        raise _already(found, sub) from None
    session.commit()
    return handover


# --- the generic door: services/orders/manage.move ---------------------------------------------------


def check_generic_completion(session: Session, sub: SubOrder) -> None:
    """A parcel whose cash is still owed on the agent's credit leaves the point only through
    `hand_over`, which collects it: the generic move (orders pages, the transition API, the
    placing agent confirming receipt as buyer) may not complete it."""
    if sub.status == S.READY_FOR_PICKUP and collect_fen(session, sub):
        raise states.IllegalTransition(
            _("Collect the cash and hand this parcel over on the parcels page of the point.")
        )


def record_code_collection(
    session: Session, actor: User, sub: SubOrder, *, now: datetime | None = None
) -> None:
    """Staff handed a pickup parcel over with the code through the generic move (the caller
    checked the code and makes the move): the hand-over is recorded, and the recipient told,
    as `hand_over` does. The caller commits."""
    if session.scalar(select(ParcelHandover.id).where(ParcelHandover.sub_order_id == sub.id)) is not None:
        return
    now = now or clock.now()
    order = sub.order
    session.add(
        ParcelHandover(
            sub_order_id=sub.id,
            point_id=order.pickup_node_id,
            handed_by_id=actor.id,
            method=HandoverMethod.CODE,
            collected_by=order.recipient,
            idempotency_key=f"move-{sub.number}",
            created_at=now,
        )
    )
    scans.handed_over(session, sub, actor, now=now)
    notify.record(
        session,
        NotificationEvent.PARCEL_COLLECTED,
        order,
        sub=sub,
        params={"time": clock.local(now).strftime("%m月%d日 %H:%M")},
        now=now,
    )


# --- uncollected: reminded once, then returned (the job) -------------------------------------------


@dataclass
class UncollectedReport:
    reminded: int = 0
    returned: int = 0
    failed: int = 0


def _waiting_at_points() -> Any:
    pickup_orders = select(Order.id).where(Order.delivery_method == DeliveryMethod.PICKUP)
    return (SubOrder.status == S.READY_FOR_PICKUP) & SubOrder.order_id.in_(pickup_orders)


def _remind(session: Session, *, remind_days: int, return_days: int, now: datetime, limit: int) -> int:
    reminded = exists().where(
        Notification.sub_order_id == SubOrder.id, Notification.event == NotificationEvent.PARCEL_REMINDER
    )
    subs = session.scalars(
        select(SubOrder)
        .where(
            _waiting_at_points(),
            SubOrder.status_changed_at <= now - timedelta(days=remind_days),
            SubOrder.status_changed_at > now - timedelta(days=return_days),
            ~reminded,
        )
        .order_by(SubOrder.id)
        .limit(limit)
    ).all()
    count = 0
    for sub in subs:
        until = clock.local(sub.status_changed_at + timedelta(days=return_days))
        row = notify.record(
            session,
            NotificationEvent.PARCEL_REMINDER,
            sub.order,
            sub=sub,
            params={"days": _age(sub.status_changed_at, now), "until": until.strftime("%m月%d日")},
            now=now,
        )
        count += row is not None
    session.commit()
    return count


def _return_one(
    session: Session,
    gateway: PaymentGateway,
    sub_id: int,
    *,
    return_days: int,
    cutoff: datetime,
    now: datetime,
) -> bool:
    """Return one parcel (True) if it still waits past the cut-off: its handover row and its full
    refund in one commit, then the gateway. The row lock keeps a hand-over from slipping between."""
    from services.payments import service as payments

    sub = session.scalar(
        select(SubOrder)
        .where(SubOrder.id == sub_id)
        .with_for_update(of=SubOrder)
        .execution_options(populate_existing=True)
    )
    if sub is None or sub.status != S.READY_FOR_PICKUP or sub.status_changed_at > cutoff:
        session.rollback()
        return False
    if session.scalar(select(ParcelHandover.id).where(ParcelHandover.sub_order_id == sub.id)) is not None:
        session.rollback()
        return False
    key = f"return-{sub.number}"
    session.add(
        ParcelHandover(
            sub_order_id=sub.id,
            point_id=sub.order.pickup_node_id,
            handed_by_id=None,
            method=HandoverMethod.RETURNED,
            reason_text=f"not collected within {return_days} days",
            idempotency_key=key,
            created_at=now,
        )
    )
    payments.refund_sub_order(
        session,
        gateway,
        None,
        sub.id,
        None,
        reason=f"parcel not collected at the point within {return_days} days: returned",
        idempotency_key=key,
        party=Party.ADMIN,  # money after hand-in is the admins' decision: this is their standing rule
        now=now,
    )
    scans.send_back(session, sub, now=now)  # the parcel goes back the way it came
    return True


def flag_uncollected(
    session: Session,
    gateway: PaymentGateway,
    *,
    remind_days: int = REMIND_DAYS,
    return_days: int = RETURN_DAYS,
    now: datetime | None = None,
    limit: int = RETURN_BATCH,
) -> UncollectedReport:
    """Remind the recipients of parcels waiting `remind_days` at their pickup point (once each),
    and return those waiting `return_days`: refunded in full through the standard refund path.
    Running it again does nothing twice. A parcel whose refund cannot be made (the gateway down:
    the refund is recorded and resent by reconcile-payments; a payment the refund path refuses)
    is logged and counted as failed; it is tried again on the next run when nothing was written."""
    now = now or clock.now()
    remind_days, return_days = max(int(remind_days), 0), max(int(return_days), 1)
    report = UncollectedReport()
    report.reminded = _remind(session, remind_days=remind_days, return_days=return_days, now=now, limit=limit)
    cutoff = now - timedelta(days=return_days)
    due = list(
        session.scalars(
            select(SubOrder.id)
            .where(_waiting_at_points(), SubOrder.status_changed_at <= cutoff)
            .order_by(SubOrder.id)
            .limit(limit)
        )
    )
    session.commit()
    for sub_id in due:
        try:
            if _return_one(session, gateway, sub_id, return_days=return_days, cutoff=cutoff, now=now):
                report.returned += 1
        except ServiceError as exc:
            session.rollback()
            written = session.scalar(select(ParcelHandover.id).where(ParcelHandover.sub_order_id == sub_id))
            if written is not None:  # recorded and refunded at our end; the gateway call is retried
                report.returned += 1
                log.warning("parcel %s returned, its refund to be resent: %s", sub_id, exc)
            else:
                report.failed += 1
                log.warning("parcel %s not returned: %s", sub_id, exc)
    return report
