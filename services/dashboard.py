"""The two overviews of the village points: the agent's day at a glance, and county staff's view
of their county's points and agents.

Each figure is a count or a sum the owning service defines (parcels, intake, proxy orders, cash,
credit, commissions, standing orders); this module only gathers them, with one query per figure,
so the agent's first page stays light on a slow connection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from domain import (
    AgentCommission,
    DeliveryMethod,
    Intake,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Node,
    Order,
    OrderStatus,
    Payment,
    Role,
    SubOrder,
    User,
    clock,
)
from services import authz, cash, intake, ledger, parcels, standing
from services.payments import service as payments
from services.proxy import credit
from services.proxy.orders import STATUS_FILTERS

S = OrderStatus
RECENT_DAYS = 30  # the county view's "recent": proxy orders and intake shortfalls


def _points(session: Session, ids: set[int]) -> list[Node]:
    return (
        list(session.scalars(select(Node).where(Node.id.in_(sorted(ids))).order_by(Node.id))) if ids else []
    )


def _parcels_at(points: set[int], status: OrderStatus, agent_id: int | None = None) -> Select[tuple[int]]:
    stmt = (
        select(func.count(SubOrder.id))
        .join(Order, SubOrder.order_id == Order.id)
        .where(
            Order.pickup_node_id.in_(sorted(points)),
            Order.delivery_method == DeliveryMethod.PICKUP,
            SubOrder.status == status,
        )
    )
    return stmt if agent_id is None else stmt.where(SubOrder.seller_id != agent_id)


@dataclass(frozen=True)
class AgentDay:
    """What the agent's point has to do today, each a tap away from its page."""

    points: list[Node]
    arriving: int  # parcels on their way to the point
    to_hand_out: int  # parcels waiting to be collected
    overdue: int  # of those, waiting longer than the reminder days
    to_receive: int  # produce sold by the point's farmers, to weigh and take in
    awaiting_payment: int  # proxy orders placed, not paid yet (QR not scanned, cash not taken)
    on_credit: int  # proxy orders on the agent's credit, cash to collect at pickup
    cycles_to_confirm: int  # standing orders prepared for this cycle, waiting for the agent
    cash_held_fen: int
    credit_limit_fen: int
    credit_used_fen: int
    commission_month_fen: int  # earned this calendar month, net of what refunds took back
    month: str


def agent_day(session: Session, actor: User | None, *, now: datetime | None = None) -> AgentDay:
    """The agent's day at a glance: Forbidden for anyone who runs no village point."""
    actor = authz.require_user(actor)
    points = authz.node_ids(actor, Role.AGENT)
    if not points:
        raise authz.Forbidden()
    now = now or clock.now()
    overdue_before = now - timedelta(days=parcels.REMIND_DAYS)
    waiting = _parcels_at(points, S.READY_FOR_PICKUP, actor.id)
    placed = (
        select(Payment.status, func.count(Order.id))
        .join(Payment, Payment.order_id == Order.id)
        .where(Order.placed_by_id == actor.id, Order.villager_id.is_not(None))
        .group_by(Payment.status)
    )
    by_status = {status: int(n) for status, n in session.execute(placed)}
    today = clock.today()
    month_start = clock.start_of_day(today.replace(day=1))
    commission = session.scalar(
        select(func.coalesce(func.sum(AgentCommission.amount_fen - AgentCommission.reversed_fen), 0)).where(
            AgentCommission.agent_id == actor.id, AgentCommission.earned_at >= month_start
        )
    )
    return AgentDay(
        points=_points(session, points),
        arriving=int(session.scalar(_parcels_at(points, S.IN_TRANSIT, actor.id)) or 0),
        to_hand_out=int(session.scalar(waiting) or 0),
        overdue=int(session.scalar(waiting.where(SubOrder.status_changed_at < overdue_before)) or 0),
        to_receive=intake.count_to_receive(session, actor),
        awaiting_payment=sum(by_status.get(s, 0) for s in STATUS_FILTERS["unpaid"]),
        on_credit=sum(by_status.get(s, 0) for s in STATUS_FILTERS["on_credit"]),
        cycles_to_confirm=standing.count_to_confirm(session, actor, now=now),
        cash_held_fen=cash.cash_held(session, actor.id),
        credit_limit_fen=credit.credit_limit(session, actor.id),
        credit_used_fen=credit.credit_used(session, actor.id),
        commission_month_fen=int(commission or 0),
        month=f"{today:%Y-%m}",
    )


# --- the county's points --------------------------------------------------------------------------


@dataclass
class AgentRow:
    """One agent of the county as county staff see them."""

    agent: User
    points: list[Node]
    credit_limit_fen: int = 0
    credit_used_fen: int = 0
    proxy_orders: int = 0  # placed in the last RECENT_DAYS days
    proxy_fen: int = 0
    cash_held_fen: int = 0
    cash_oldest_at: datetime | None = None  # the oldest cash still in the agent's hands
    uncollected: int = 0  # parcels at their points waiting longer than the reminder days
    shortfalls: int = 0  # intakes at their points in RECENT_DAYS that refunded a shortfall

    def cash_age_days(self, now: datetime) -> int | None:
        return None if self.cash_oldest_at is None else max((now - self.cash_oldest_at).days, 0)


@dataclass
class CountyOverview:
    counties: list[str]
    rows: list[AgentRow] = field(default_factory=list)
    now: datetime = field(default_factory=clock.now)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "credit_used_fen": sum(r.credit_used_fen for r in self.rows),
            "proxy_orders": sum(r.proxy_orders for r in self.rows),
            "proxy_fen": sum(r.proxy_fen for r in self.rows),
            "cash_held_fen": sum(r.cash_held_fen for r in self.rows),
            "uncollected": sum(r.uncollected for r in self.rows),
            "shortfalls": sum(r.shortfalls for r in self.rows),
        }


def _cash_oldest(session: Session, agent_ids: list[int]) -> dict[int, datetime]:
    """Per agent, when the oldest cash still in their hands came in (the remittance rule of
    ledger.cash_in_agents_hands: first in, first out)."""
    if not agent_ids:
        return {}
    inflows = session.execute(
        select(LedgerAccount.owner_id, LedgerTransaction.sub_order_id, LedgerTransaction.created_at)
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(
            LedgerAccount.code.in_([ledger.cash_held_code(a) for a in agent_ids]),
            LedgerTransaction.sub_order_id.is_not(None),
            LedgerEntry.amount_fen > 0,
        )
    ).all()
    in_hands = ledger.cash_in_agents_hands(session, sorted({int(sub) for _a, sub, _t in inflows}))
    oldest: dict[int, datetime] = {}
    for agent_id, sub_id, at in inflows:
        if sub_id in in_hands and (agent_id not in oldest or at < oldest[agent_id]):
            oldest[int(agent_id)] = at
    return oldest


def county_overview(session: Session, actor: User | None, *, now: datetime | None = None) -> CountyOverview:
    """The points of the staff member's counties: each agent's credit, proxy order volume, cash
    outstanding and its age, uncollected parcels and intake shortfalls."""
    actor = authz.require_user(actor)
    counties = sorted(authz.staff_county_codes(actor))
    if not counties:
        raise authz.Forbidden()
    now = now or clock.now()
    view = CountyOverview(counties=counties, now=now)
    rows: dict[int, AgentRow] = {}
    for entry in credit.county_credit(session, actor):
        rows[entry.agent.id] = AgentRow(
            agent=entry.agent,
            points=entry.points,
            credit_limit_fen=entry.limit_fen,
            credit_used_fen=entry.used_fen,
        )
    if not rows:
        return view
    agent_ids = sorted(rows)
    point_agent: dict[int, list[int]] = defaultdict(list)
    for row in rows.values():
        for point in row.points:
            point_agent[point.id].append(row.agent.id)
    since = now - timedelta(days=RECENT_DAYS)
    for agent_id, n, fen in session.execute(
        select(Order.placed_by_id, func.count(Order.id), func.coalesce(func.sum(Order.total_fen), 0))
        .join(Payment, Payment.order_id == Order.id)
        .where(
            Order.placed_by_id.in_(agent_ids),
            Order.villager_id.is_not(None),
            Order.created_at >= since,
            Payment.status.not_in(payments.OPEN),
        )
        .group_by(Order.placed_by_id)
    ):
        rows[int(agent_id)].proxy_orders, rows[int(agent_id)].proxy_fen = int(n), int(fen)
    held = ledger.balances_of(session, [ledger.cash_held_code(a) for a in agent_ids])
    for agent_id in agent_ids:
        rows[agent_id].cash_held_fen = held[ledger.cash_held_code(agent_id)]
    for agent_id, at in _cash_oldest(session, agent_ids).items():
        rows[agent_id].cash_oldest_at = at
    overdue_before = now - timedelta(days=parcels.REMIND_DAYS)
    for point_id, n in session.execute(
        select(Order.pickup_node_id, func.count(SubOrder.id))
        .join(Order, SubOrder.order_id == Order.id)
        .where(
            Order.pickup_node_id.in_(sorted(point_agent)),
            Order.delivery_method == DeliveryMethod.PICKUP,
            SubOrder.status == S.READY_FOR_PICKUP,
            SubOrder.status_changed_at < overdue_before,
        )
        .group_by(Order.pickup_node_id)
    ):
        for agent_id in point_agent[int(point_id)]:
            rows[agent_id].uncollected += int(n)
    for point_id, n in session.execute(
        select(Intake.node_id, func.count(Intake.id))
        .where(
            Intake.node_id.in_(sorted(point_agent)), Intake.received_at >= since, Intake.difference_fen > 0
        )
        .group_by(Intake.node_id)
    ):
        for agent_id in point_agent[int(point_id)]:
            rows[agent_id].shortfalls += int(n)
    view.rows = [rows[a] for a in agent_ids]
    return view
