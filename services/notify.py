"""Buyers hear about their order: one channel interface, an outbox, and the texts.

When a sub-order moves (services/orders/states.py `apply`, and `note` for a partial refund),
`on_move` records the message the move announces as a `Notification` row in the same
transaction: a move rolled back sends nothing, and a committed one is told exactly once (the
row's `dedupe_key` is unique: a webhook delivered twice or a move replayed finds its row). The
send-notifications job (services/jobs.py) sends the pending rows through the app's
`NotificationChannel` after the commit, one transaction each, and retries a failed send with a
growing wait until MAX_SEND_ATTEMPTS; a send never touches the move.

What is told, to whom:

    event             when                                     to                essential
    paid              the order's money is in (once an order)  the buyer         yes
    accepted          the seller accepted their part           the buyer         no
    handed_in         handed in at the village point           the buyer         no
    ready_for_pickup  waiting at the point (with the code)     the pickup phone  yes
    out_for_delivery  on its way to the door                   the recipient     no
    refunded          each refund settled, in part or in full  the buyer         yes
    pickup_code       the buyer had a new pickup code issued   the pickup phone  yes
    proxy_placed      an agent placed a proxy order (代购)      the villager      yes
    parcel_reminder   uncollected for N days (once; job)       the pickup phone  yes
    parcel_collected  collected at the point (parcels.py)      the pickup phone  yes
    cold_excursion    a cold-chain excursion (logistics/       each staff member yes
                      coldchain.py; no order)                  of the logger's node
    logger_silent     a logger sent nothing for hours (job)    the same          yes
    parcel_stuck      a parcel waits at a node N hours past    staff of the node yes
                      its leg's departure (flag-stuck-parcels)
    leg_late          a leg under way is late past its grace   staff of the node yes
                      (flag-stuck-parcels; no order)           it goes to

Proxy orders (`Order.villager_id` set: an agent shopped for a villager): every message goes to
the villager's phone on the order (`recipient_phone`: their family phone, or the point's when
they have none), never to the agent's own phone when the agent is the order's buyer in the
table. An order on the agent's credit is not told "paid" (the villager pays at pickup: the
placed message says so), and its refunds say the amount is not due rather than "returned".

A buyer may turn the optional ones off on their account page (`NotificationOptOut`); such a
message is recorded as skipped and never sent. The texts are Chinese, as every SMS the product
sends (the recipient may not have chosen a language), and are written when sent: a pickup code
is derived then (services/orders/pickup.py) and never stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    CreditCollection,
    Notification,
    NotificationEvent,
    NotificationOptOut,
    NotificationStatus,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    SmsMessage,
    SubOrder,
    User,
    clock,
)
from services import authz
from services.errors import ValidationError
from services.i18n import _, yuan_text
from services.orders import pickup
from services.sms import SmsGateway

log = logging.getLogger(__name__)

E = NotificationEvent
S = OrderStatus

# The kinds a buyer may turn off, in the order the account page lists them.
OPTIONAL = (E.ACCEPTED, E.HANDED_IN, E.OUT_FOR_DELIVERY)
ESSENTIAL = frozenset(E) - frozenset(OPTIONAL)
# Sent to the phone that collects or receives the parcel (the checkout's pickup contact or
# recipient), not to the buyer's account.
TO_RECIPIENT = frozenset(
    {E.READY_FOR_PICKUP, E.OUT_FOR_DELIVERY, E.PICKUP_CODE, E.PARCEL_REMINDER, E.PARCEL_COLLECTED}
)

# The sub-order moves that are told (a refund is found from the move's details instead).
MOVE_EVENTS = {
    S.ACCEPTED: E.ACCEPTED,
    S.HANDED_IN: E.HANDED_IN,
    S.READY_FOR_PICKUP: E.READY_FOR_PICKUP,
    S.OUT_FOR_DELIVERY: E.OUT_FOR_DELIVERY,
}

MAX_SEND_ATTEMPTS = 6
# At most this many sends a run. Each send is its own transaction (a message handed to the provider
# is marked sent at once): about 60 a second on PostgreSQL here (bench/jobs.py), so a run every
# 30 s keeps up with about 30 messages a second, a campaign's peak, and ends before the next run.
SEND_BATCH = 1000


def retry_wait(attempts: int) -> timedelta:
    """How long to wait before sending again after `attempts` failed sends: 1, 2, 4, … min (≤ 1 h)."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


# --- the channel ----------------------------------------------------------------------------------


class NotificationChannel(Protocol):
    def send(self, session: Session, phone: str, body: str) -> None:
        """Deliver one text to a Chinese mobile number, or raise (the job sends it again later).
        `session` is the sending job's transaction: an outbox writes through it."""


class SmsOutboxChannel:
    """The development and demo channel: the SMS outbox table shown on /dev/sms, written in the
    sending transaction (so a message is in the outbox exactly when it is marked sent)."""

    def send(self, session: Session, phone: str, body: str) -> None:
        session.add(SmsMessage(phone=phone, body=body, created_at=clock.now()))


class SmsGatewayChannel:
    """Through an SMS provider's gateway (services.sms.SmsGateway)."""

    def __init__(self, gateway: SmsGateway) -> None:
        self._gateway = gateway

    def send(self, session: Session, phone: str, body: str) -> None:
        self._gateway.send(phone, body)


# --- recording: in the transaction of the move ----------------------------------------------------


def _dedupe_key(event: NotificationEvent, order: Order, sub: SubOrder | None, seq: int) -> str:
    return f"{event.value}:{order.id}:{sub.id if sub is not None else 0}:{seq}"


def record(
    session: Session,
    event: NotificationEvent,
    order: Order,
    *,
    sub: SubOrder | None = None,
    seq: int = 0,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Record one message to the buyer about `event` (the caller commits); None if this event
    was recorded before. A kind the buyer turned off is recorded as skipped."""
    now = now or clock.now()
    key = _dedupe_key(event, order, sub, seq)
    # A proxy order's messages are the villager's: to the phone on the order, not the agent's.
    to_recipient = event in TO_RECIPIENT or order.villager_id is not None
    phone = order.recipient_phone if to_recipient else order.buyer.phone
    # Everything the move changed is written first: the savepoint below holds this row alone.
    session.flush()
    if session.scalar(select(Notification.id).where(Notification.dedupe_key == key)) is not None:
        return None
    muted = event not in ESSENTIAL and session.get(NotificationOptOut, (order.buyer_id, event)) is not None
    row = Notification(
        dedupe_key=key,
        event=event,
        order_id=order.id,
        sub_order_id=sub.id if sub is not None else None,
        user_id=order.buyer_id,
        phone=phone,
        params=params or {},
        status=NotificationStatus.SKIPPED if muted else NotificationStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error="",
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent transaction recorded it first
        return None
    return row


def record_staff_alert(
    session: Session,
    event: NotificationEvent,
    user: User,
    key: str,
    params: dict[str, Any],
    *,
    now: datetime | None = None,
) -> Notification | None:
    """Record one message to a member of staff about no order (a cold-chain excursion), once per
    `key` (the caller commits); None if recorded before or the user has no phone."""
    now = now or clock.now()
    key = f"{event.value}:{key}:{user.id}"[:96]
    if not user.phone:
        return None
    session.flush()
    if session.scalar(select(Notification.id).where(Notification.dedupe_key == key)) is not None:
        return None
    row = Notification(
        dedupe_key=key,
        event=event,
        order_id=None,
        sub_order_id=None,
        user_id=user.id,
        phone=user.phone,
        params=params,
        status=NotificationStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error="",
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent transaction recorded it first
        return None
    return row


def _announced(
    sub: SubOrder, before: OrderStatus | None, after: OrderStatus, details: dict[str, Any]
) -> tuple[NotificationEvent, SubOrder | None, int, dict[str, Any]] | None:
    refund = details.get("refund_fen")
    if isinstance(refund, int) and refund > 0:
        # Each refund once: its sequence is the amount refunded so far (it grows with each).
        refunded = details.get("refunded_fen")
        seq = refunded if isinstance(refunded, int) else sub.refunded_fen
        return E.REFUNDED, sub, seq, {"amount_fen": refund}
    if before == after:
        return None
    if after == S.PAID and before == S.PENDING_PAYMENT:
        order = sub.order
        if order.payment_method == PaymentMethod.CREDIT:
            return None  # on the agent's credit: nothing is paid yet (proxy_placed says so)
        return E.PAID, None, 0, {"amount_fen": order.total_fen, "presale": bool(order.presale)}
    event = MOVE_EVENTS.get(after)
    if event is not None and before != S.REFUND_REQUESTED:
        return event, sub, 0, {}
    return None


def on_move(
    session: Session,
    sub: SubOrder,
    before: OrderStatus | None,
    after: OrderStatus,
    details: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> Notification | None:
    """Record what this move (or noted event) tells the buyer, if anything (states.apply and
    states.note call it; the caller commits). Never makes the move fail over a message."""
    if sub.order is None:  # not part of an order (a bare row): nobody to tell
        return None
    try:
        found = _announced(sub, before, after, details or {})
    except Exception:  # a message is never worth a failed move
        log.exception("no notification for sub-order %s", sub.id)
        return None
    if found is None:
        return None
    event, target, seq, params = found
    return record(session, event, sub.order, sub=target, seq=seq, params=params, now=now)


# --- the texts ------------------------------------------------------------------------------------

TEXTS = {
    E.PAID: "【粤农通】订单{number}已付款{amount}，卖家接单后会尽快发货。",
    "presale": "【粤农通】预售订单{number}已授权{amount}，发货时才扣款。",
    E.ACCEPTED: "【粤农通】订单{number}卖家已接单，正在备货。",
    E.HANDED_IN: "【粤农通】订单{number}已交到服务点发出，正在运送。",
    E.READY_FOR_PICKUP: "【粤农通】订单{number}已到{point}，取货码{code}，请凭取货码取货，请勿告诉他人。",
    "arrived": "【粤农通】订单{number}已到达，请留意取货。",
    E.OUT_FOR_DELIVERY: "【粤农通】订单{number}正在派送，请保持电话畅通。",
    E.REFUNDED: "【粤农通】订单{number}已退款{amount}，将原路退回。",
    E.PICKUP_CODE: "【粤农通】订单{number}的新取货码{code}，原取货码已作废，请勿告诉他人。",
    # Proxy orders (代购): who placed it and how it is paid, as it stands when the text is sent.
    E.PROXY_PLACED: "【粤农通】{point}已为您代购订单{number}，共{amount}，{how}货到服务点后凭取货码取货。",
    "proxy_paid": "已付款。",
    "proxy_awaiting": "请尽快付款。",
    "proxy_on_credit": "取货时付现金。",
    "refund_cash": "【粤农通】订单{number}已退款{amount}，请到服务点领取现金。",
    "refund_credit": "【粤农通】订单{number}有{amount}无需再付，取货时按余额付现金。",
    E.PARCEL_REMINDER: "【粤农通】订单{number}已在{point}放了{days}天，请于{until}前取货，逾期将退回并退款。",
    E.PARCEL_COLLECTED: "【粤农通】订单{number}已于{time}在{point}取走。如非本人取货，请联系服务点。",
    E.COLD_EXCURSION: "【粤农通】冷链温度异常：{place}记录仪{serial}自{start}起{minutes}分钟超出{range}，"
    "最高偏离{worst}℃，影响{lots}个批次，请尽快处理并在冷链页面确认。",
    E.LOGGER_SILENT: "【粤农通】冷链记录仪{serial}（{place}）自{since}起没有上传温度，请检查设备。",
    E.PARCEL_STUCK: "【粤农通】包裹{label}在{node}滞留：原定{due}发往{next}，"
    "已超过{hours}小时未发出，请尽快处理。",
    E.LEG_LATE: "【粤农通】包裹{label}从{origin}发往{to}，原定{due}到达，至今未到，请核实。",
}

# Messages to staff about no order: their params say all.
STAFF_EVENTS = (E.COLD_EXCURSION, E.LOGGER_SILENT, E.PARCEL_STUCK, E.LEG_LATE)


def render(session: Session, row: Notification, keys: pickup.PickupCodeKeys) -> str:
    """The text of one message, written now (a pickup code is derived, never stored)."""
    if row.event in STAFF_EVENTS:  # to staff, no order: the params say all
        return TEXTS[row.event].format(**{k: str(v) for k, v in (row.params or {}).items()})
    order = session.get(Order, row.order_id)
    if order is None:
        raise LookupError(f"order {row.order_id} is gone")
    sub = session.get(SubOrder, row.sub_order_id) if row.sub_order_id is not None else None
    number = sub.number if sub is not None else order.number
    params = row.params or {}
    fields: dict[str, Any] = {"number": number, "amount": yuan_text(int(params.get("amount_fen") or 0))}
    template: Any = row.event
    if row.event == E.PAID and params.get("presale"):
        template = "presale"
    if row.event in (E.READY_FOR_PICKUP, E.PICKUP_CODE):
        if pickup.is_pickup(order):
            fields["code"] = pickup.code_of(keys, pickup.ensure_code(session, order, keys))
            fields["point"] = order.pickup_node.name if order.pickup_node is not None else "取货点"
        else:
            template = "arrived"
    if row.event in (E.PARCEL_REMINDER, E.PARCEL_COLLECTED):
        fields["point"] = order.pickup_node.name if order.pickup_node is not None else "取货点"
        fields.update({k: params.get(k, "") for k in ("days", "until", "time")})
    if row.event == E.PROXY_PLACED:
        fields["amount"] = yuan_text(order.total_fen)
        fields["point"] = order.pickup_node.name if order.pickup_node is not None else "服务点"
        status = order.payment.status if order.payment is not None else None
        how = {PaymentStatus.SUCCEEDED: "proxy_paid", PaymentStatus.ON_CREDIT: "proxy_on_credit"}
        fields["how"] = TEXTS[how.get(status, "proxy_awaiting")]  # type: ignore[arg-type]
    if row.event == E.REFUNDED and order.payment_method in (PaymentMethod.CASH, PaymentMethod.CREDIT):
        # Not "returned the way it came": the agent hands the cash back, or it is not due.
        template = "refund_credit" if _uncollected_credit(session, order, sub) else "refund_cash"
    return TEXTS[template].format(**fields)


def _uncollected_credit(session: Session, order: Order, sub: SubOrder | None) -> bool:
    """An order on an agent's credit whose (sub-order's) cash was not taken at pickup yet."""
    if order.payment_method != PaymentMethod.CREDIT:
        return False
    where = (
        CreditCollection.sub_order_id == sub.id if sub is not None else CreditCollection.order_id == order.id
    )
    return session.scalar(select(CreditCollection.id).where(where).limit(1)) is None


# --- sending: after the commit, by the job ---------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def send_pending(
    session: Session,
    channel: NotificationChannel,
    keys: pickup.PickupCodeKeys,
    *,
    now: datetime | None = None,
    limit: int = SEND_BATCH,
) -> SendReport:
    """Send the messages that are due, oldest first, each in its own transaction (rows another
    sender holds are skipped on PostgreSQL). A failed send is counted and tried again after
    `retry_wait`; after MAX_SEND_ATTEMPTS it is marked failed. Running it again sends nothing
    twice."""
    now = now or clock.now()
    report = SendReport()
    for _i in range(max(int(limit), 0)):
        row = session.scalar(
            select(Notification)
            .where(Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if row is None:
            break
        row_id = row.id
        try:
            channel.send(session, row.phone, render(session, row, keys))
            row.status = NotificationStatus.SENT
            row.attempts += 1
            row.sent_at = now
            row.last_error = ""
            session.commit()
            report.sent += 1
        except Exception as exc:  # the provider (or anything) failed: try again later
            session.rollback()
            log.warning("notification %s not sent: %s", row_id, exc)
            failed = session.get(Notification, row_id, with_for_update=True, populate_existing=True)
            if failed is None or failed.status != NotificationStatus.PENDING:
                session.rollback()
                continue
            failed.attempts += 1
            failed.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if failed.attempts >= MAX_SEND_ATTEMPTS:
                failed.status = NotificationStatus.FAILED
                report.failed += 1
            else:
                failed.next_attempt_at = now + retry_wait(failed.attempts)
                report.retrying += 1
            session.commit()
    return report


# --- what a buyer chose -------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    event: NotificationEvent
    label: Any
    on: bool


LABELS = {
    E.ACCEPTED: _("The seller accepted my order"),
    E.HANDED_IN: _("My order was handed in and is on its way"),
    E.OUT_FOR_DELIVERY: _("My order is out for delivery"),
}


def preferences(session: Session, user: User | None) -> list[Choice]:
    """The optional messages and whether `user` gets them (the essential ones always go)."""
    user = authz.require_user(user)
    off = set(session.scalars(select(NotificationOptOut.event).where(NotificationOptOut.user_id == user.id)))
    return [Choice(event, LABELS[event], event not in off) for event in OPTIONAL]


def set_preferences(
    session: Session, user: User | None, wanted: set[str] | list[str], *, now: datetime | None = None
) -> list[Choice]:
    """Receive exactly the optional messages in `wanted` (their event names); the essential ones
    cannot be turned off. Setting the same choice again changes nothing."""
    user = authz.require_user(user)
    chosen = set(wanted)
    unknown = chosen - {e.value for e in OPTIONAL}
    if unknown:
        msg = _("Unknown kind of message.")
        raise ValidationError(msg, field_errors={"events": [msg]})
    off = {e for e in OPTIONAL if e.value not in chosen}
    have = set(session.scalars(select(NotificationOptOut.event).where(NotificationOptOut.user_id == user.id)))
    if have - off:
        session.execute(
            delete(NotificationOptOut).where(
                NotificationOptOut.user_id == user.id, NotificationOptOut.event.in_(list(have - off))
            )
        )
    for event in sorted(off - have):
        session.add(NotificationOptOut(user_id=user.id, event=event, created_at=now or clock.now()))
    session.commit()
    return preferences(session, user)
