"""The agent's credit: proxy orders placed as cash on pickup (issue 11, item 3).

County staff of the county of an agent's point give the agent a credit limit (`set_credit_limit`;
none set: 0, no credit). An agent places a proxy order on credit (checkout.place_order with
payment method credit calls `check_available` under the placer's row lock, then `pay_on_credit`
in the placing transaction): refused above the remaining credit (409, with the amounts, nothing
written); placed, it is paid for the sellers at once (sub-orders PAID, stock sold) and the ledger
posts its amount to `agent_credit:{agent}` instead of clearing. Credit used is the balance of that
account (derived from the ledger, never a stored counter). At pickup the villager pays the agent
cash (services/cash.py collect_on_pickup: agent_credit → cash_held, then remitted as usual); a
credit order refunded or returned before that releases the credit (its refund is posted out of
agent_credit, no gateway). Payout batches pay a credit sub-order only once collected and its
cash remitted (ledger.cash_in_agents_hands).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    AgentCreditLimit,
    AttemptStatus,
    Node,
    Order,
    OrderStatus,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Role,
    RoleGrant,
    User,
    clock,
)
from services import authz, ledger
from services.authz import ProxyAction, ProxyStanding
from services.catalog import audit
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _, yuan_text
from services.orders import reservations, states
from services.orders.checkout import check_idempotency_key

# The most a county may give one agent: a village shop's credit, not a bank's.
MAX_CREDIT_LIMIT_FEN = 20_000_000  # ¥200,000


class CreditExceeded(Conflict):
    code = "credit_exceeded"


@dataclass(frozen=True)
class AgentCredit:
    """One agent's credit as county staff and the agent see it."""

    agent: User
    points: list[Node]
    limit_fen: int
    used_fen: int

    @property
    def available_fen(self) -> int:
        return max(self.limit_fen - self.used_fen, 0)


def credit_limit(session: Session, agent_id: int) -> int:
    row = session.get(AgentCreditLimit, agent_id)
    return row.limit_fen if row is not None else 0


def credit_used(session: Session, agent_id: int) -> int:
    """What villagers owe through the agent now: the ledger's agent_credit balance."""
    return ledger.credit_used(session, agent_id)


def check_available(session: Session, agent: User, amount_fen: int) -> None:
    """CreditExceeded (409) unless `amount_fen` more fits in the agent's credit. The caller holds
    the agent's user row locked (checkout._lock_and_find), so two placements are counted in turn."""
    limit = credit_limit(session, agent.id)
    used = credit_used(session, agent.id)
    if used + amount_fen > limit:
        left = max(limit - used, 0)
        msg = _(
            "This order of %(amount)s is above your remaining credit of %(left)s "
            "(limit %(limit)s, used %(used)s). Take the payment by QR code or in cash instead.",
            amount=yuan_text(amount_fen),
            left=yuan_text(left),
            limit=yuan_text(limit),
            used=yuan_text(used),
        )
        raise CreditExceeded(msg, field_errors={"payment_method": [msg]})


def pay_on_credit(session: Session, order: Order, agent: User, *, now: datetime | None = None) -> None:
    """The order just placed on `agent`'s credit is paid for its sellers now: stock sold,
    sub-orders PAID, the ledger posts it to agent_credit. Does not commit (place_order does)."""
    now = now or clock.now()
    payment = order.payment
    reservations.commit_order_stock(session, order, now)
    payment.attempts.append(
        PaymentAttempt(
            number=1,
            method=PaymentMethod.CREDIT,
            request_key=payment.idempotency_key,
            status=AttemptStatus.SUCCEEDED,
            created_at=now,
            ended_at=now,
        )
    )
    payment.status = PaymentStatus.ON_CREDIT
    payment.amount_received_fen = payment.amount_fen
    for sub in order.sub_orders:
        states.apply(
            session, sub, OrderStatus.PAID, party=authz.Party.SYSTEM, actor=agent, note="credit", now=now
        )
        ledger.post_sub_order_paid(session, sub, via="credit", agent_id=agent.id)


# --- limits: county staff ------------------------------------------------------------------------


def _agent_points(session: Session, agent: User) -> list[Node]:
    ids = sorted(authz.node_ids(agent, Role.AGENT))
    return list(session.scalars(select(Node).where(Node.id.in_(ids)).order_by(Node.id))) if ids else []


def standings(session: Session, actor: User | None, agent: User) -> set[ProxyStanding]:
    """How `actor` stands to `agent`'s credit: the agent, staff of a county of the agent's points
    (never on their own credit), an admin."""
    if actor is None:
        return set()
    found: set[ProxyStanding] = set()
    if actor.id == agent.id:
        found.add(ProxyStanding.PLACER)
    elif {p.county_code for p in _agent_points(session, agent)} & authz.staff_county_codes(actor):
        found.add(ProxyStanding.COUNTY_STAFF)
    if authz.is_admin(actor):
        found.add(ProxyStanding.ADMIN)
    return found


def _agent(session: Session, agent_id: Any) -> User:
    valid = isinstance(agent_id, int) and not isinstance(agent_id, bool) and 0 < agent_id < 2**31
    agent = session.get(User, agent_id) if valid else None
    if agent is None or not authz.node_ids(agent, Role.AGENT):
        raise NotFound(_("No such village agent."))
    return agent


def agent_credit(session: Session, actor: User | None, agent_id: int | None = None) -> AgentCredit:
    """An agent's credit: the agent's own (agent_id None), or one county staff look at."""
    actor = authz.require_user(actor)
    agent = actor if agent_id is None else _agent(session, agent_id)
    if agent_id is None and not authz.node_ids(actor, Role.AGENT):
        raise authz.Forbidden(_("Only village agents can do this."))
    authz.require_proxy(ProxyAction.VIEW_CREDIT, standings(session, actor, agent))
    return AgentCredit(
        agent=agent,
        points=_agent_points(session, agent),
        limit_fen=credit_limit(session, agent.id),
        used_fen=credit_used(session, agent.id),
    )


def county_credit(session: Session, actor: User | None) -> list[AgentCredit]:
    """The agents of the staff member's counties' points with their credit, by agent id."""
    actor = authz.require_user(actor)
    counties = authz.staff_county_codes(actor)
    if not counties:
        raise authz.Forbidden()
    agent_ids = session.scalars(
        select(RoleGrant.user_id)
        .join(Node, Node.id == RoleGrant.node_id)
        .where(
            RoleGrant.role == Role.AGENT,
            Node.county_code.in_(sorted(counties)),
            RoleGrant.user_id != actor.id,
        )
        .distinct()
        .order_by(RoleGrant.user_id)
    ).all()
    if not agent_ids:
        return []
    # A handful of queries for the whole county, however many agents it has.
    agents = {u.id: u for u in session.scalars(select(User).where(User.id.in_(agent_ids)))}
    limits: dict[int, int] = {
        agent_id: limit
        for agent_id, limit in session.execute(
            select(AgentCreditLimit.agent_id, AgentCreditLimit.limit_fen).where(
                AgentCreditLimit.agent_id.in_(agent_ids)
            )
        )
    }
    used = ledger.balances_of(session, [ledger.agent_credit_code(a) for a in agent_ids])
    points: dict[int, list[Node]] = {a: [] for a in agent_ids}
    for agent_id, node in session.execute(
        select(RoleGrant.user_id, Node)
        .join(Node, Node.id == RoleGrant.node_id)
        .where(
            RoleGrant.role == Role.AGENT,
            RoleGrant.user_id.in_(agent_ids),
            Node.county_code.in_(sorted(counties)),
        )
        .order_by(Node.id)
    ):
        points[agent_id].append(node)
    return [
        AgentCredit(
            agent=agents[a],
            points=points[a],
            limit_fen=limits.get(a, 0),
            used_fen=used[ledger.agent_credit_code(a)],
        )
        for a in agent_ids
    ]


def _limit(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_CREDIT_LIMIT_FEN:
        msg = _(
            "Enter a credit limit from %(low)s to %(high)s.",
            low=yuan_text(0),
            high=yuan_text(MAX_CREDIT_LIMIT_FEN),
        )
        raise ValidationError(msg, field_errors={"limit_fen": [msg]})
    return raw


def set_credit_limit(
    session: Session,
    actor: User | None,
    agent_id: Any,
    limit_fen: Any,
    key: Any,
    *,
    now: datetime | None = None,
) -> AgentCreditLimit:
    """County staff of the county of the agent's point set the agent's credit limit (0: no
    credit). Lowering it below what is used stops new credit orders until villagers pay. The
    same key again with the same limit changes nothing; with another limit it is refused."""
    actor = authz.require_user(actor)
    agent = _agent(session, agent_id)
    authz.require_proxy(ProxyAction.SET_CREDIT_LIMIT, standings(session, actor, agent))
    key = check_idempotency_key(key)
    limit = _limit(limit_fen)
    # Settings of one agent's limit queue on the agent's user row (the first one inserts it).
    session.execute(select(User.id).where(User.id == agent.id).with_for_update())
    row = session.scalar(
        select(AgentCreditLimit)
        .where(AgentCreditLimit.agent_id == agent.id)
        .execution_options(populate_existing=True)
    )
    if row is not None and row.idempotency_key == key:
        if row.limit_fen != limit:
            raise Conflict(_("This form was already used for another credit limit. Please reload the page."))
        session.commit()
        return row
    if row is None:
        row = AgentCreditLimit(agent_id=agent.id, limit_fen=0)
        session.add(row)
    before = row.limit_fen
    row.limit_fen = limit
    row.set_by_id = actor.id
    row.idempotency_key = key
    row.updated_at = now or clock.now()
    audit.record(session, actor, "set_credit_limit", "user", agent.id, {"limit_fen": [before, limit]})
    session.commit()
    return row
