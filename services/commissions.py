"""Village agents' commissions: earned per proxy order and per intake at the rates the county
service center sets per category, posted when the sub-order completes, taken back by refunds in
proportion, paid in the payout batches beside the sellers.

Who earns (`earners`):
- proxy: the agent who placed an order for someone else (a villager) for pickup at their point;
- intake: the agent of the seller's home point who recorded the hand-in (the actor of the
  sub-order's HANDED_IN move).

How much. Each order line's price times the rate of its category (the category's own rate, else
its parent's, else the county's rate for every category, else nothing) in the county of the
point; summed over the lines, and scaled to what is left of the goods' price after refunds made
before completion. `earn` posts it once (agent_commissions expense → the agent's
`agent_commission_payable`); `reverse_for_refund` takes back, after each later refund, the share
of the goods' price that refund took (so a full refund takes back all of it); `add_to_batch` pays
the commissions of the sub-orders a payout batch claims, less what reversals after an earlier
payout left the agent owing; `post_payouts` posts the bank's transfer when the batch is paid.
States.apply calls `earn` on the move to COMPLETED; ledger.post_refund calls
`reverse_for_refund`; ledger.create_payout_batch and mark_batch_paid call the other two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import (
    AgentCommission,
    Category,
    CommissionKind,
    CommissionPayout,
    CommissionRate,
    Division,
    DivisionLevel,
    Node,
    Order,
    OrderEvent,
    OrderStatus,
    PayoutBatch,
    PayoutBatchStatus,
    Role,
    SellerProfile,
    SubOrder,
    User,
    clock,
)
from services import authz, ledger
from services.authz import CommissionAction, CommissionStanding
from services.errors import NotFound, ValidationError
from services.i18n import _

MAX_RATE_BP = 3000  # 30 %: a rate above it is a typo (the check constraint says so too)
BP = 10_000


# --- rates ------------------------------------------------------------------------------------


def county_standings(actor: User | None, county_code: str) -> set[CommissionStanding]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return set()
    found = set()
    if county_code in authz.staff_county_codes(actor):
        found.add(CommissionStanding.COUNTY_STAFF)
    if authz.is_admin(actor):
        found.add(CommissionStanding.ADMIN)
    return found


def parse_rate(raw: Any, field: str = "rate") -> int:
    """A rate typed in percent ("1.5", "2%") as basis points (150); 0 to 30 %, two decimals."""
    text = str(raw if raw is not None else "").strip().rstrip("%").strip()
    msg = _("Enter a rate in percent between 0 and 30, such as 1.5.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(msg, field_errors={field: [msg]}) from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or value < 0:
        raise ValidationError(msg, field_errors={field: [msg]})
    bp = int(value * 100)
    if bp > MAX_RATE_BP:
        raise ValidationError(msg, field_errors={field: [msg]})
    return bp


def percent_text(bp: int) -> str:
    """Basis points as the percent a person reads (150 → "1.5")."""
    return f"{Decimal(bp).scaleb(-2).normalize():f}"


def _county(session: Session, county_code: str) -> Division:
    county = session.get(Division, str(county_code))
    if county is None or county.level != DivisionLevel.COUNTY:
        raise NotFound(_("This county does not exist."))
    return county


@dataclass(frozen=True)
class RateRow:
    kind: CommissionKind
    category: Category | None  # None: every category without its own rate
    rate_bp: int | None  # None: not set (falls back to the parent's or the county's)


@dataclass(frozen=True)
class CountyRates:
    county: Division
    rows: list[RateRow]
    can_edit: bool


def county_rates(session: Session, actor: User | None, county_code: str) -> CountyRates:
    """The county's rates for both kinds: the county-wide rate, then one per top-level category."""
    actor = authz.require_user(actor)
    county = _county(session, county_code)
    standings = county_standings(actor, county.code)
    authz.require_commission(CommissionAction.VIEW_RATES, standings)
    set_rates = {
        (r.kind, r.category_id): r.rate_bp
        for r in session.scalars(select(CommissionRate).where(CommissionRate.county_code == county.code))
    }
    categories = list(
        session.scalars(
            select(Category).where(Category.parent_id.is_(None)).order_by(Category.position, Category.id)
        )
    )
    rows = []
    for kind in CommissionKind:
        rows.append(RateRow(kind, None, set_rates.get((kind, None))))
        rows.extend(RateRow(kind, c, set_rates.get((kind, c.id))) for c in categories)
    return CountyRates(county, rows, authz.may_commission(CommissionAction.SET_RATES, standings))


def set_rate(
    session: Session,
    actor: User | None,
    county_code: str,
    kind: Any,
    category_id: Any,
    rate: Any,
    *,
    now: datetime | None = None,
) -> CommissionRate | None:
    """Set (or, with an empty rate, clear) one rate of the county. Setting the same rate again
    changes nothing but the time: no idempotency key is needed."""
    actor = authz.require_user(actor)
    county = _county(session, county_code)
    authz.require_commission(CommissionAction.SET_RATES, county_standings(actor, county.code))
    try:
        kind = CommissionKind(str(kind or ""))
    except ValueError:
        msg = _("Choose proxy orders or produce intake.")
        raise ValidationError(msg, field_errors={"kind": [msg]}) from None
    category: Category | None = None
    if category_id not in (None, "", 0, "0"):
        try:
            category = session.get(Category, int(str(category_id)))
        except ValueError:
            category = None
        if category is None:
            msg = _("This category does not exist.")
            raise ValidationError(msg, field_errors={"category_id": [msg]})
    clear = rate is None or str(rate).strip() == ""
    bp = None if clear else parse_rate(rate)
    stmt = (
        select(CommissionRate)
        .where(
            CommissionRate.county_code == county.code,
            CommissionRate.kind == kind,
            CommissionRate.category_id.is_(None)
            if category is None
            else CommissionRate.category_id == category.id,
        )
        .with_for_update(of=CommissionRate)
    )
    row = session.scalar(stmt)
    now = now or clock.now()
    if bp is None:
        if row is not None:
            session.delete(row)
        session.commit()
        return None
    if row is None:
        row = CommissionRate(
            county_code=county.code,
            kind=kind,
            category_id=category.id if category else None,
            rate_bp=bp,
            set_by_id=actor.id,
            updated_at=now,
        )
        session.add(row)
    else:
        row.rate_bp, row.set_by_id, row.updated_at = bp, actor.id, now
    session.commit()
    return row


class _Rates:
    """A county's rates for one kind, looked up per category (own, parent's, county-wide)."""

    def __init__(self, session: Session, county_code: str, kind: CommissionKind) -> None:
        self.session = session
        rows = session.execute(
            select(CommissionRate.category_id, CommissionRate.rate_bp).where(
                CommissionRate.county_code == county_code, CommissionRate.kind == kind
            )
        ).all()
        self.by_category = {category_id: bp for category_id, bp in rows}

    def of(self, category_id: int | None) -> int:
        seen = 0
        while category_id is not None and seen < 5:
            if category_id in self.by_category:
                return self.by_category[category_id]
            category = self.session.get(Category, category_id)
            category_id = category.parent_id if category is not None else None
            seen += 1
        return self.by_category.get(None, 0)


# --- earning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Earner:
    kind: CommissionKind
    agent_id: int
    node: Node


def earners(session: Session, sub: SubOrder) -> list[Earner]:
    """The agents who earn a commission on this sub-order, and for what."""
    found: list[Earner] = []
    order: Order | None = sub.order
    if order is None:  # not part of an order (a bare row): nobody placed or received it
        return found
    placed_for_someone = order.placed_by_id != order.buyer_id or order.villager_id is not None
    if placed_for_someone and order.pickup_node_id is not None:
        placer = session.get(User, order.placed_by_id)
        if placer is not None and order.pickup_node_id in authz.node_ids(placer, Role.AGENT):
            found.append(Earner(CommissionKind.PROXY, placer.id, order.pickup_node))
    home_point_id = session.scalar(
        select(SellerProfile.home_point_id).where(SellerProfile.user_id == sub.seller_id)
    )
    if home_point_id is not None:
        received_by = session.scalar(
            select(OrderEvent.actor_id)
            .where(OrderEvent.sub_order_id == sub.id, OrderEvent.to_status == OrderStatus.HANDED_IN)
            .order_by(OrderEvent.id.desc())
            .limit(1)
        )
        receiver = session.get(User, received_by) if received_by is not None else None
        if (
            receiver is not None
            and receiver.id != sub.seller_id
            and home_point_id in authz.node_ids(receiver, Role.AGENT)
        ):
            node = session.get(Node, home_point_id)
            assert node is not None
            found.append(Earner(CommissionKind.INTAKE, receiver.id, node))
    return found


def _goods_left(session: Session, sub: SubOrder) -> int:
    """What is left of the goods' price (seller's net and platform commission) after refunds."""
    charged = ledger.charged_parts(sub)
    refunded = ledger.refunded_parts(session, sub)
    return max(charged.seller + charged.commission - refunded.seller - refunded.commission, 0)


def _amount(session: Session, sub: SubOrder, earner: Earner, goods_left: int) -> int:
    if sub.items_fen <= 0 or goods_left <= 0:
        return 0
    rates = _Rates(session, earner.node.county_code, earner.kind)
    weighted = sum(line.paid_fen * rates.of(line.product.category_id) for line in sub.lines)
    return weighted * goods_left // (sub.items_fen * BP)


def earn(session: Session, sub: SubOrder, *, now: datetime | None = None) -> list[AgentCommission]:
    """Post the commissions this completed sub-order earns its agents, once (the caller commits).
    A sub-order completed again after a refund request was turned down earns nothing more."""
    made = []
    goods_left: int | None = None
    for earner in earners(session, sub):
        exists = session.scalar(
            select(AgentCommission.id).where(
                AgentCommission.sub_order_id == sub.id, AgentCommission.kind == earner.kind
            )
        )
        if exists is not None:
            continue
        if goods_left is None:
            goods_left = _goods_left(session, sub)
        amount = _amount(session, sub, earner, goods_left)
        if amount <= 0:
            continue
        row = AgentCommission(
            agent_id=earner.agent_id,
            node_id=earner.node.id,
            sub_order_id=sub.id,
            kind=earner.kind,
            base_fen=goods_left,
            amount_fen=amount,
            reversed_fen=0,
            earned_at=now or clock.now(),
        )
        session.add(row)
        session.flush()
        ledger.post(
            session,
            key=f"commission:{row.id}",
            kind="agent_commission",
            lines=[
                ledger.Line.fixed(ledger.AGENT_COMMISSIONS, amount),
                ledger.Line.owned("agent_commission_payable", earner.agent_id, -amount),
            ],
            order_id=sub.order_id,
            sub_order_id=sub.id,
            memo=sub.number,
            details={"commission_id": row.id, "kind": earner.kind.value, "base_fen": goods_left},
        )
        made.append(row)
    return made


def reverse_for_refund(session: Session, sub: SubOrder, refund_id: int) -> None:
    """After a refund of this sub-order is posted: take back from each commission it earned the
    share of the goods' price refunded since it was earned (the caller commits)."""
    rows = list(
        session.scalars(
            select(AgentCommission)
            .where(AgentCommission.sub_order_id == sub.id)
            .with_for_update(of=AgentCommission)
        )
    )
    if not rows:
        return
    goods_left = _goods_left(session, sub)
    for row in rows:
        keep = row.amount_fen * min(goods_left, row.base_fen) // row.base_fen if row.base_fen else 0
        take = row.amount_fen - keep - row.reversed_fen
        if take <= 0:
            continue
        row.reversed_fen += take
        ledger.post(
            session,
            key=f"commission_reversal:{refund_id}:{row.id}",
            kind="agent_commission_reversal",
            lines=[
                ledger.Line.owned("agent_commission_payable", row.agent_id, take),
                ledger.Line.fixed(ledger.AGENT_COMMISSIONS, -take),
            ],
            order_id=sub.order_id,
            sub_order_id=sub.id,
            memo=sub.number,
            details={"commission_id": row.id, "refund_id": refund_id},
        )


# --- paying -----------------------------------------------------------------------------------


def add_to_batch(
    session: Session, batch: PayoutBatch, sub_order_ids: Sequence[int]
) -> list[CommissionPayout]:
    """Pay in `batch` the commissions earned on the sub-orders it claims (the caller commits).

    Per agent: gross = what those commissions still hold (earned − reversed); what reversals
    after an earlier payout left the agent owing shows as the agent's payable account holding
    less than the commissions not yet paid, and is netted: the payout is at most what the
    account owes the agent, never negative."""
    rows: list[AgentCommission] = []
    for chunk in ledger._chunks(list(sub_order_ids)):
        rows.extend(
            session.scalars(
                select(AgentCommission)
                .where(AgentCommission.sub_order_id.in_(chunk), AgentCommission.payout_id.is_(None))
                .order_by(AgentCommission.id)
                .with_for_update(of=AgentCommission)
            )
        )
    by_agent: dict[int, list[AgentCommission]] = defaultdict(list)
    for row in rows:
        if row.net_fen > 0:
            by_agent[row.agent_id].append(row)
    made = []
    for agent_id in sorted(by_agent):
        claimed = by_agent[agent_id]
        gross = sum(r.net_fen for r in claimed)
        owed = -ledger.balance(session, ledger.agent_commission_code(agent_id))
        amount = min(gross, max(owed, 0))
        payout = CommissionPayout(
            batch_id=batch.id,
            agent_id=agent_id,
            gross_fen=gross,
            netted_fen=gross - amount,
            amount_fen=amount,
            commission_count=len(claimed),
        )
        session.add(payout)
        session.flush()
        for r in claimed:
            r.payout_id = payout.id
        made.append(payout)
    return made


def post_payouts(session: Session, batch: PayoutBatch) -> None:
    """The bank paid the batch: each agent is owed their payout less (the caller commits)."""
    for payout in batch_payouts(session, batch.id):
        if not payout.amount_fen:
            continue
        ledger.post(
            session,
            key=f"commission_payout:{payout.id}",
            kind="commission_payout",
            lines=[
                ledger.Line.owned("agent_commission_payable", payout.agent_id, payout.amount_fen),
                ledger.Line.fixed(ledger.CLEARING, -payout.amount_fen),
            ],
            details={"batch_id": batch.id, "commission_payout_id": payout.id, "gross_fen": payout.gross_fen},
        )


def batch_payouts(session: Session, batch_id: int) -> list[CommissionPayout]:
    return list(
        session.scalars(
            select(CommissionPayout)
            .where(CommissionPayout.batch_id == batch_id)
            .order_by(CommissionPayout.agent_id)
        )
    )


# --- the agent's earnings ---------------------------------------------------------------------


@dataclass(frozen=True)
class MonthTotal:
    month: str  # "2026-12", China's calendar
    earned_fen: int
    reversed_fen: int
    count: int

    @property
    def net_fen(self) -> int:
        return self.earned_fen - self.reversed_fen


@dataclass(frozen=True)
class Earnings:
    month: str
    months: list[MonthTotal]  # newest first, the last twelve with any commission
    rows: list[AgentCommission]  # the chosen month's, newest first
    owed_fen: int  # what the platform owes the agent now (earned, not yet paid)
    paid_fen: int  # paid out in batches so far


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        year, mon = (int(part) for part in month.split("-"))
        first = date(year, mon, 1)
    except ValueError:
        msg = _("Choose a month such as 2026-12.")
        raise ValidationError(msg, field_errors={"month": [msg]}) from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return clock.start_of_day(first), clock.start_of_day(following)


def earnings(session: Session, actor: User | None, month: str | None = None) -> Earnings:
    """The agent's commissions: per month, and one month's in detail."""
    actor = authz.require_user(actor)
    standings = {CommissionStanding.SELF} if authz.node_ids(actor, Role.AGENT) else set()
    authz.require_commission(CommissionAction.VIEW_EARNINGS, standings)
    month = str(month or f"{clock.today():%Y-%m}")
    start, end = _month_bounds(month)
    rows = list(
        session.scalars(
            select(AgentCommission)
            .where(
                AgentCommission.agent_id == actor.id,
                AgentCommission.earned_at >= start,
                AgentCommission.earned_at < end,
            )
            .order_by(AgentCommission.earned_at.desc(), AgentCommission.id.desc())
        )
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for earned_at, amount, reversed_fen in session.execute(
        select(AgentCommission.earned_at, AgentCommission.amount_fen, AgentCommission.reversed_fen).where(
            AgentCommission.agent_id == actor.id
        )
    ):
        key = f"{clock.local(earned_at):%Y-%m}"
        totals[key][0] += amount
        totals[key][1] += reversed_fen
        totals[key][2] += 1
    months = [MonthTotal(m, *totals[m]) for m in sorted(totals, reverse=True)[:12]]
    paid = session.scalar(
        select(func.coalesce(func.sum(CommissionPayout.amount_fen), 0))
        .join(PayoutBatch, PayoutBatch.id == CommissionPayout.batch_id)
        .where(CommissionPayout.agent_id == actor.id, PayoutBatch.status == PayoutBatchStatus.PAID)
    )
    owed = -ledger.balance(session, ledger.agent_commission_code(actor.id))
    return Earnings(month, months, rows, owed, int(paid or 0))
