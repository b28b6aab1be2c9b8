"""Cash at the village point: proxy orders paid in cash on the spot, and the agent's remittance
of the collected cash to the county service center.

Cash now. An agent places a proxy order for pickup at their point with payment method cash
(services/orders/checkout.py allows it only there) and takes the cash: `take_cash` marks the
order paid at once (sub-orders PAID through states.apply as the system, the agent recorded as
actor) and the ledger posts the money as cash held by that agent (`cash_held:{agent}`). The
request carries an idempotency key, kept as the payment's one attempt: a replay pays nothing
twice (a second key on a paid order is refused as already paid).

Remittance. The agent declares the cash they hand over (`declare_remittance`; never more than
they hold less what they declared and is not confirmed yet); county staff of the agent's point's
county count it and confirm the counted amount (`confirm_remittance`). The ledger moves the
counted amount from cash_held to clearing. A shortfall (declared − counted > 0) stays in
cash_held: it is still owed by the agent and shows on both sides' lists as the discrepancy.
Counting more than declared is refused (the agent declares again). Confirming twice changes
nothing. Payout batches pay cash sub-orders only once remitted (ledger.cash_in_agents_hands).

Cash on pickup. A proxy order placed on the agent's credit (services/proxy/credit.py) is paid for
its sellers when placed; the villager pays the agent at pickup: `collect_on_pickup` (called in
the parcel hand-over's transaction, so it does not commit) records what each sub-order still owed
(a `CreditCollection`) and the ledger moves it from the placer's agent_credit to the collecting
agent's cash_held, remitted as any cash. Once nothing is owed the payment has succeeded.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    AttemptStatus,
    CashRemittance,
    CreditCollection,
    Node,
    Order,
    OrderStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    RemittanceStatus,
    Role,
    SubOrder,
    User,
    clock,
)
from services import authz, ledger
from services.authz import CashAction, CashStanding, ProxyAction, ProxyStanding
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _, yuan_text
from services.orders import reservations, states
from services.orders.checkout import check_idempotency_key
from services.payments.service import PaymentClosed, _locked_payment, is_expired, payment_of
from services.validation import check_text


class CashExceedsHeld(Conflict):
    code = "cash_exceeds_held"


# --- cash now ---------------------------------------------------------------------------------


def order_standings(actor: User | None, order: Order) -> set[CashStanding]:
    """How `actor` stands to a cash order: the agent of its pickup point, or nothing."""
    if actor is None or order.pickup_node_id is None:
        return set()
    return {CashStanding.POINT_AGENT} if order.pickup_node_id in authz.node_ids(actor, Role.AGENT) else set()


def take_cash(
    session: Session, actor: User | None, order_number: str, key: Any, *, now: datetime | None = None
) -> Order:
    """The agent took the cash for a proxy order at their point: the order is paid at once and
    the cash is held by the agent. The same key again returns the paid order, paying nothing."""
    actor = authz.require_user(actor)
    order = session.scalar(select(Order).where(Order.number == str(order_number)))
    if order is None:
        raise NotFound(_("Order not found."))
    authz.require_cash(CashAction.TAKE_CASH, order_standings(actor, order))  # access before input
    key = check_idempotency_key(key)
    payment = _locked_payment(session, payment_of(session, order).id)
    if payment.method != PaymentMethod.CASH:
        raise PaymentClosed(_("This order is not paid in cash."))
    done = session.scalar(
        select(PaymentAttempt).where(
            PaymentAttempt.payment_id == payment.id, PaymentAttempt.request_key == key
        )
    )
    if done is not None:
        session.commit()
        return order
    if payment.status == PaymentStatus.SUCCEEDED:
        raise PaymentClosed(_("This order is already paid."))
    now = now or clock.now()
    if payment.status != PaymentStatus.AWAITING_CASH or is_expired(order, now):
        raise PaymentClosed()
    if any(sub.status != OrderStatus.PENDING_PAYMENT for sub in order.sub_orders):
        raise PaymentClosed()
    reservations.commit_order_stock(session, order, now)
    payment.attempts.append(
        PaymentAttempt(
            number=len(payment.attempts) + 1,
            method=PaymentMethod.CASH,
            request_key=key,
            status=AttemptStatus.SUCCEEDED,
            created_at=now,
            ended_at=now,
        )
    )
    payment.status = PaymentStatus.SUCCEEDED
    payment.amount_received_fen = payment.amount_fen
    payment.succeeded_at = now
    for sub in order.sub_orders:
        states.apply(
            session, sub, OrderStatus.PAID, party=authz.Party.SYSTEM, actor=actor, note="cash", now=now
        )
        ledger.post_sub_order_paid(session, sub, via="cash", agent_id=actor.id)
    session.commit()
    return order


def awaiting_cash(session: Session, actor: User | None, *, limit: int = 50) -> list[Order]:
    """Proxy orders at the agent's points waiting for their cash, newest first."""
    actor = authz.require_user(actor)
    points = authz.node_ids(actor, Role.AGENT)
    if not points:
        raise authz.Forbidden()
    return list(
        session.scalars(
            select(Order)
            .join(Payment, Payment.order_id == Order.id)
            .where(Order.pickup_node_id.in_(points), Payment.status == PaymentStatus.AWAITING_CASH)
            .order_by(Order.id.desc())
            .limit(limit)
        ).unique()
    )


# --- cash on pickup: orders placed on the agent's credit ----------------------------------------


def collect_on_pickup(
    session: Session,
    actor: User | None,
    order: Order,
    *,
    sub_order: SubOrder | None = None,
    now: datetime | None = None,
) -> list[CreditCollection]:
    """The villager paid the agent (`actor`, agent of the order's pickup point) cash at pickup
    for an order placed on credit: what `sub_order` (default: each sub-order of the order) still
    owes — charged less refunded — is recorded once and moved in the ledger from the placer's
    agent_credit to the actor's cash_held. When no sub-order owes anything any more the payment
    has succeeded. Not a credit order, or already collected: nothing to do. DOES NOT COMMIT: the
    caller (the parcel hand-over) owns the transaction. Returns the collections it made."""
    actor = authz.require_user(actor)
    payment = _locked_payment(session, payment_of(session, order).id)
    if payment.method != PaymentMethod.CREDIT or payment.status not in (
        PaymentStatus.ON_CREDIT,
        PaymentStatus.SUCCEEDED,
    ):
        return []
    standing = order.pickup_node_id is not None and order.pickup_node_id in authz.node_ids(actor, Role.AGENT)
    authz.require_proxy(ProxyAction.COLLECT, {ProxyStanding.POINT_AGENT} if standing else set())
    now = now or clock.now()
    done = set(
        session.scalars(select(CreditCollection.sub_order_id).where(CreditCollection.order_id == order.id))
    )
    made = []
    for sub in order.sub_orders:
        if (sub_order is not None and sub.id != sub_order.id) or sub.id in done:
            continue
        owed = sub.total_fen - (sub.released_fen or 0) - sub.refunded_fen
        if owed <= 0:
            continue
        collection = CreditCollection(
            sub_order_id=sub.id,
            order_id=order.id,
            credit_agent_id=order.placed_by_id,
            agent_id=actor.id,
            amount_fen=owed,
            collected_at=now,
        )
        session.add(collection)
        ledger.post_credit_collected(
            session, sub, credit_agent_id=order.placed_by_id, agent_id=actor.id, amount_fen=owed
        )
        done.add(sub.id)
        made.append(collection)
    owing = [
        sub
        for sub in order.sub_orders
        if sub.id not in done and sub.total_fen - (sub.released_fen or 0) - sub.refunded_fen > 0
    ]
    if not owing and payment.status == PaymentStatus.ON_CREDIT:
        payment.status = PaymentStatus.SUCCEEDED
        payment.succeeded_at = now
    session.flush()
    return made


def credit_collected(session: Session, order: Order) -> int:
    """What villagers paid at pickup for this order placed on credit, so far."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(CreditCollection.amount_fen), 0)).where(
                CreditCollection.order_id == order.id
            )
        )
        or 0
    )


# --- remittance -------------------------------------------------------------------------------


def cash_held(session: Session, agent_id: int) -> int:
    """What the agent holds now, as the ledger says."""
    return ledger.balance(session, ledger.cash_held_code(agent_id))


def _declared_pending(session: Session, agent_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(CashRemittance.declared_fen), 0)).where(
                CashRemittance.agent_id == agent_id, CashRemittance.status == RemittanceStatus.DECLARED
            )
        )
        or 0
    )


def available_to_declare(session: Session, agent_id: int) -> int:
    """Cash held less what the agent already declared and county staff have not counted yet."""
    return cash_held(session, agent_id) - _declared_pending(session, agent_id)


def _amount(raw: Any, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        msg = _("Enter an amount in fen greater than zero.")
        raise ValidationError(msg, field_errors={field: [msg]})
    return raw


def declare_remittance(
    session: Session,
    actor: User | None,
    amount_fen: Any,
    key: Any,
    *,
    note: str = "",
    now: datetime | None = None,
) -> CashRemittance:
    """The agent hands `amount_fen` of their collected cash to the county center. Refused (409,
    nothing written) above what they hold less what they declared already; the same key again
    returns the remittance it declared. The county is the one of the agent's (first) point."""
    actor = authz.require_user(actor)
    points = sorted(authz.node_ids(actor, Role.AGENT))
    authz.require_cash(CashAction.DECLARE_REMITTANCE, {CashStanding.POINT_AGENT} if points else set())
    key = check_idempotency_key(key)
    amount = _amount(amount_fen, "amount_fen")
    note = check_text(note, "note", max_len=200) if note else ""
    # Declarations of one agent queue here (row lock), so two cannot both pass the check below.
    session.execute(select(User.id).where(User.id == actor.id).with_for_update())
    existing = session.scalar(
        select(CashRemittance).where(
            CashRemittance.agent_id == actor.id, CashRemittance.idempotency_key == key
        )
    )
    if existing is not None:
        if existing.declared_fen != amount:
            raise Conflict(_("This form was already used for another remittance. Please reload the page."))
        session.commit()
        return existing
    available = available_to_declare(session, actor.id)
    if amount > available:
        session.rollback()
        raise CashExceedsHeld(
            _(
                "You can hand in at most %(amount)s: that is the cash you hold and have not declared yet.",
                amount=yuan_text(max(available, 0)),
            ),
            field_errors={"amount_fen": [_("More than the cash you hold.")]},
        )
    node = session.get(Node, points[0])
    assert node is not None
    remittance = CashRemittance(
        agent_id=actor.id,
        node_id=node.id,
        county_code=node.county_code,
        declared_fen=amount,
        idempotency_key=key,
        note=note,
        created_at=now or clock.now(),
    )
    session.add(remittance)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = session.scalar(
            select(CashRemittance).where(
                CashRemittance.agent_id == actor.id, CashRemittance.idempotency_key == key
            )
        )
        if found is None:
            raise
        return found
    session.commit()
    return remittance


def remittance_standings(actor: User | None, remittance: CashRemittance) -> set[CashStanding]:
    if actor is None:
        return set()
    result: set[CashStanding] = set()
    if actor.id == remittance.agent_id:
        result.add(CashStanding.REMITTER)
    elif remittance.county_code in authz.staff_county_codes(actor):
        result.add(CashStanding.COUNTY_STAFF)  # never staff on their own cash
    if authz.is_admin(actor):
        result.add(CashStanding.ADMIN)
    return result


def get_remittance(session: Session, actor: User | None, remittance_id: int) -> CashRemittance:
    """One remittance, for its agent, its county's staff and admins; anyone else: not found."""
    actor = authz.require_user(actor)
    remittance = session.get(CashRemittance, remittance_id)
    if remittance is None or not authz.may_cash(
        CashAction.VIEW_REMITTANCE, remittance_standings(actor, remittance)
    ):
        raise NotFound(_("This remittance does not exist."))
    return remittance


def confirm_remittance(
    session: Session, actor: User | None, remittance_id: int, counted_fen: Any, *, now: datetime | None = None
) -> CashRemittance:
    """County staff counted the cash: the counted amount leaves the agent's cash_held for
    clearing; a shortfall stays held (owed by the agent). Confirming again changes nothing."""
    actor = authz.require_user(actor)
    remittance = get_remittance(session, actor, remittance_id)
    authz.require_cash(CashAction.CONFIRM_REMITTANCE, remittance_standings(actor, remittance))
    if isinstance(counted_fen, bool) or not isinstance(counted_fen, int) or counted_fen < 0:
        msg = _("Enter the counted amount in fen (0 or more).")
        raise ValidationError(msg, field_errors={"counted_fen": [msg]})
    locked = session.scalar(
        select(CashRemittance)
        .where(CashRemittance.id == remittance.id)
        .with_for_update(of=CashRemittance)
        .execution_options(populate_existing=True)
    )
    assert locked is not None
    if locked.status == RemittanceStatus.CONFIRMED:
        session.commit()
        return locked
    if counted_fen > locked.declared_fen:
        msg = _("Counted more than the agent declared. Ask the agent to declare the whole amount.")
        raise Conflict(msg, field_errors={"counted_fen": [msg]})
    held = cash_held(session, locked.agent_id)
    if counted_fen > held:
        msg = _("The agent holds only %(amount)s.", amount=yuan_text(max(held, 0)))
        raise Conflict(msg, field_errors={"counted_fen": [msg]})
    locked.counted_fen = counted_fen
    locked.status = RemittanceStatus.CONFIRMED
    locked.confirmed_by_id = actor.id
    locked.confirmed_at = now or clock.now()
    ledger.post_cash_remitted(
        session, remittance_id=locked.id, agent_id=locked.agent_id, counted_fen=counted_fen
    )
    session.commit()
    return locked


def my_remittances(session: Session, actor: User | None, *, limit: int = 50) -> list[CashRemittance]:
    """The agent's own remittances, newest first (with the discrepancy once counted)."""
    actor = authz.require_user(actor)
    if not authz.node_ids(actor, Role.AGENT):
        raise authz.Forbidden()
    return list(
        session.scalars(
            select(CashRemittance)
            .where(CashRemittance.agent_id == actor.id)
            .order_by(CashRemittance.id.desc())
            .limit(limit)
        )
    )


def county_remittances(
    session: Session, actor: User | None, *, to_confirm: bool = False, limit: int = 100
) -> list[CashRemittance]:
    """Remittances handed in to the staff member's counties (those to confirm first, oldest first)."""
    actor = authz.require_user(actor)
    counties = authz.staff_county_codes(actor)
    if not counties:
        raise authz.Forbidden()
    stmt = select(CashRemittance).where(
        CashRemittance.county_code.in_(counties), CashRemittance.agent_id != actor.id
    )
    if to_confirm:
        stmt = stmt.where(CashRemittance.status == RemittanceStatus.DECLARED).order_by(CashRemittance.id)
    else:
        stmt = stmt.order_by(CashRemittance.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def parse_yuan_amount(raw: Any, field: str, *, allow_zero: bool = False) -> int:
    """An amount of cash typed in yuan on a page ("1234.5") as integer fen."""
    text = str(raw or "").strip().replace("¥", "").replace(",", "")
    msg = _("Enter the amount in yuan, such as 120.50.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(msg, field_errors={field: [msg]}) from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or value < 0 or value >= 10**12:
        raise ValidationError(msg, field_errors={field: [msg]})
    fen = int(value * 100)
    if fen == 0 and not allow_zero:
        raise ValidationError(msg, field_errors={field: [msg]})
    return fen
