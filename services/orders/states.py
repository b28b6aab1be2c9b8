"""The sub-order state machine: one transition table, one function that applies a move.

Each move names the parties allowed to make it. Pages and the API only offer the moves
`allowed_moves` returns, and `apply` refuses anything else, so an illegal move cannot happen
through any door. Every move (and every noted refund) also records what it tells the buyer, in
the same transaction (services/notify.py: an outbox sent after the commit, once per event).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import OrderEvent, OrderStatus, SubOrder, User, clock
from services import commissions, notify
from services.authz import Party
from services.errors import Conflict
from services.i18n import _

S = OrderStatus
B, SE, ST, AD, SY = Party.BUYER, Party.SELLER, Party.STAFF, Party.ADMIN, Party.SYSTEM

# Who may make each move (services/authz.py says who stands as which party on a sub-order):
# the seller accepts; the hand-in (ACCEPTED → HANDED_IN) is made only by the intake the receiving
# agent or county staff record (services/intake.py, authz.INTAKE_ACTIONS; the generic move refuses
# it: manage.SPECIAL); staff move the parcel; the
# buyer (or staff at the point) confirms receipt; after the seller accepted, only admins decide
# that money goes back (REFUND_REQUESTED by staff is `manage.staff_refund`).

# The fulfilment states a refund request returns to when only part of the money went back.
RETURNABLE = (S.PAID, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.READY_FOR_PICKUP, S.OUT_FOR_DELIVERY)
# No sub-order is in these any more; the value stays for the history of older orders
# (migration 1b2c3d4e5f6a moved partly refunded sub-orders back to their fulfilment state).
LEGACY = frozenset({S.PARTIALLY_REFUNDED})

TRANSITIONS: Mapping[OrderStatus, Mapping[OrderStatus, frozenset[Party]]] = {
    S.PENDING_PAYMENT: {
        S.PAID: frozenset({SY}),
        S.CANCELLED: frozenset({B, ST, SY}),
    },
    S.PAID: {
        S.ACCEPTED: frozenset({SE}),
        # Declined by the seller or cancelled by the buyer before acceptance: the money goes back.
        S.REFUND_REQUESTED: frozenset({B, SE, AD, SY}),
        # A pre-sale authorisation released before anything was captured.
        S.CANCELLED: frozenset({SY}),
    },
    S.ACCEPTED: {
        S.HANDED_IN: frozenset({ST}),
        S.REFUND_REQUESTED: frozenset({SE, AD, SY}),
        S.CANCELLED: frozenset({SY}),  # the harvest failed before an authorised pre-sale was captured
    },
    S.HANDED_IN: {
        S.IN_TRANSIT: frozenset({ST}),
        S.REFUND_REQUESTED: frozenset({AD}),
    },
    S.IN_TRANSIT: {
        S.READY_FOR_PICKUP: frozenset({ST}),
        S.OUT_FOR_DELIVERY: frozenset({ST}),
        S.REFUND_REQUESTED: frozenset({AD}),
    },
    S.READY_FOR_PICKUP: {
        # The system completes it after AUTO_COMPLETE_DAYS (services/jobs.py complete_delivered).
        S.COMPLETED: frozenset({B, ST, SY}),
        S.REFUND_REQUESTED: frozenset({B, AD}),
    },
    S.OUT_FOR_DELIVERY: {
        S.COMPLETED: frozenset({B, ST, SY}),
        S.REFUND_REQUESTED: frozenset({B, AD}),
    },
    S.COMPLETED: {
        S.REFUND_REQUESTED: frozenset({B, AD}),
    },
    S.REFUND_REQUESTED: {
        S.REFUNDED: frozenset({SY}),  # all the money went back
        # An admin turned an after-sale request down, or refunded part of it (settled by the system
        # on the admin's decision: payments._after_refund moves as {SY, AD}).
        S.COMPLETED: frozenset({AD}),
        # Part of the money went back: a partial refund is money, not a state, so the sub-order
        # returns to the fulfilment state it was asked in (`state_before_refund`) and moves on.
        **{before: frozenset({SY}) for before in RETURNABLE},
    },
    S.REFUNDED: {},
    S.CANCELLED: {},
}

# Buyers may ask for money back only for goods they have (after-sale) or before the seller
# accepted; in between, the seller or staff decide.
TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)


def state_before_refund(session: Session, sub_order: SubOrder) -> OrderStatus:
    """The fulfilment state a sub-order was in when its refund was asked for (from its events):
    where it returns when only part of the money went back. (The session autoflushes: events
    added in this transaction count.)"""
    before = session.scalar(
        select(OrderEvent.from_status)
        .where(
            OrderEvent.sub_order_id == sub_order.id,
            OrderEvent.to_status == S.REFUND_REQUESTED,
            OrderEvent.from_status.in_([*RETURNABLE, S.COMPLETED]),
        )
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )
    if before is not None:
        return before
    return S.COMPLETED if sub_order.completed_at is not None else S.PAID


class IllegalTransition(Conflict):
    code = "illegal_transition"

    @classmethod
    def default_message(cls) -> Any:
        return _("This order cannot be changed that way now.")


def can_move(current: OrderStatus, target: OrderStatus, parties: frozenset[Party] | set[Party]) -> bool:
    return bool(TRANSITIONS.get(current, {}).get(target, frozenset()) & set(parties))


def allowed_moves(current: OrderStatus, parties: frozenset[Party] | set[Party]) -> list[OrderStatus]:
    """The moves these parties may make from `current`, in table order."""
    return [target for target, who in TRANSITIONS.get(current, {}).items() if who & set(parties)]


def apply(
    session: Session,
    sub_order: SubOrder,
    target: OrderStatus,
    *,
    party: Party | frozenset[Party] | set[Party],
    actor: User | None = None,
    note: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OrderEvent:
    """Move the sub-order to `target` and record who and when; raises IllegalTransition.

    The caller's use case commits. Concurrent movers are serialised by the caller locking the
    row (or by the conditional status check each use case does before calling).
    """
    parties = {party} if isinstance(party, Party) else set(party)
    current = sub_order.status
    if not can_move(current, target, parties):
        raise IllegalTransition()
    now = now or clock.now()
    event = OrderEvent(
        sub_order_id=sub_order.id,
        from_status=current,
        to_status=target,
        actor_id=actor.id if actor is not None else None,
        note=note[:200],
        details=details or {},
        created_at=now,
    )
    session.add(event)
    sub_order.status = target
    sub_order.status_changed_at = now
    if target == S.COMPLETED and sub_order.completed_at is None:
        # Back from a refund request: it was completed then, and its holding period runs from then.
        sub_order.completed_at = now
    if target == S.COMPLETED:
        # The agents who placed or received it earn their commission now (once).
        commissions.earn(session, sub_order, now=now)
    # The buyer is told in this transaction's outbox (sent after the commit; never twice).
    notify.on_move(session, sub_order, current, target, event.details, now=now)
    return event


def note(
    session: Session,
    sub_order: SubOrder,
    *,
    actor: User | None = None,
    note: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OrderEvent:
    """Record something that happened to the sub-order without moving it (a partial refund):
    an event from its state to the same state, with the details. The caller commits."""
    event = OrderEvent(
        sub_order_id=sub_order.id,
        from_status=sub_order.status,
        to_status=sub_order.status,
        actor_id=actor.id if actor is not None else None,
        note=note[:200],
        details=details or {},
        created_at=now or clock.now(),
    )
    session.add(event)
    status = sub_order.status
    notify.on_move(session, sub_order, status, status, event.details, now=event.created_at)
    return event
