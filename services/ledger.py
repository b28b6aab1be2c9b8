"""The double-entry ledger and seller payouts.

Every money event is one balanced transaction of signed fen entries (debit > 0, credit < 0),
posted under a unique key so a repeated webhook posts nothing twice. Accounts:

    buyer_payments_clearing        asset      money collected through the gateway, not yet paid out
    cash_held:{agent_id}           asset      cash a village agent collected for the platform and
                                              has not remitted (county staff's counted amount
                                              moves to clearing: post_cash_remitted)
    agent_credit:{agent_id}        asset      what villagers owe through an agent for proxy orders
                                              placed on the agent's credit (cash on pickup), until
                                              collected at pickup (→ cash_held: post_credit_collected)
                                              or refunded; its balance is the agent's credit used
    seller_payable:{seller_id}     liability  what the platform owes a seller
    seller_carried:{seller_id}     asset      what a seller owes the platform: their share of refunds
                                              made after their sub-order was paid out, carried
                                              until a later payout nets it
    agent_commission_payable:{id}  liability  what the platform owes a village agent
    platform_commission            revenue    the platform's cut of item prices (charged on what the
                                              buyer paid for the goods: services/orders/pricing.py)
    campaign_subsidies             expense    the platform's share of campaign discounts, paid to the
                                              sellers on top of what the buyer paid (services/
                                              campaigns); a refund of units gives it back
    logistics_fees                 revenue    shipping charged to buyers
    refunds                        expense    money returned to buyers (contra-revenue)

The posting functions (`post`, `post_sub_order_paid`, `post_refund`, `post_netting`, `post_payout`)
flush but never commit: the use case that calls them owns the transaction. The payout use cases commit.

Refunds after a payout. A sub-order in a payout batch has been (or is being) paid to its seller;
a refund of it afterwards cannot take the seller's share back from `seller_payable` (that money
is gone), so it debits `seller_carried:{seller}`: the ledger says at any moment what each seller
carries. The next batch nets it: the seller's payout is what their newly payable sub-orders owe
(gross) less what they carry (netted), never below zero; the netting is posted when the batch is
built (seller_payable debited, seller_carried credited), so a second batch cannot net it again,
and what netting could not cover stays carried. seller_payable therefore never has a debit
balance, and seller_carried never a credit one (services/ledger_checks.py checks both).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from domain import (
    AccountKind,
    JobRun,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OrderStatus,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Refund,
    RefundStatus,
    SellerProfile,
    SubOrder,
    User,
    clock,
)
from services import authz, exports
from services.catalog.sellers import seller_name
from services.errors import Conflict, NotFound, ServiceError, ValidationError
from services.exports import cell_text as _cell_text  # noqa: F401  (kept for callers)
from services.exports import yuan, yuan_text
from services.i18n import _

CLEARING = "buyer_payments_clearing"
PLATFORM_COMMISSION = "platform_commission"
LOGISTICS_FEES = "logistics_fees"
REFUNDS = "refunds"
AGENT_COMMISSIONS = "agent_commissions"  # what the platform pays village agents (services/commissions.py)
CAMPAIGN_SUBSIDIES = "campaign_subsidies"  # the platform's share of campaign discounts
FIXED_ACCOUNTS = {
    CLEARING: AccountKind.ASSET,
    PLATFORM_COMMISSION: AccountKind.REVENUE,
    LOGISTICS_FEES: AccountKind.REVENUE,
    REFUNDS: AccountKind.EXPENSE,
    AGENT_COMMISSIONS: AccountKind.EXPENSE,
    CAMPAIGN_SUBSIDIES: AccountKind.EXPENSE,
}
# Per-owner account families: code prefix → kind.
OWNER_ACCOUNTS = {
    "seller_payable": AccountKind.LIABILITY,
    "seller_carried": AccountKind.ASSET,
    "cash_held": AccountKind.ASSET,
    "agent_credit": AccountKind.ASSET,
    "agent_commission_payable": AccountKind.LIABILITY,
}

# Sub-orders whose seller may be paid: completed (a partial refund, before or after delivery,
# leaves the sub-order in its fulfilment state with refunded_fen beside it; the payout pays what
# the ledger says remains). One with an after-sale request open waits for the decision.
PAYABLE_STATUSES = (OrderStatus.COMPLETED,)
MAX_HOLDING_DAYS = 365
CHECK_JOB = "check-ledger"  # the job running services/ledger_checks.py (services/jobs.py)
_T = TypeVar("_T")
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


# --- errors -----------------------------------------------------------------------------------


class UnbalancedTransaction(ServiceError):
    """A posting whose amounts do not sum to zero (or has too few lines): a bug in the caller."""

    status = 500
    code = "unbalanced_transaction"


class LedgerError(ServiceError):
    """A posting that contradicts what the ledger already holds (e.g. a refund before payment)."""

    status = 409
    code = "ledger_conflict"


class RefundTooLarge(ServiceError):
    status = 409
    code = "refund_too_large"


# --- accounts and lines -----------------------------------------------------------------------


def seller_payable_code(seller_id: int) -> str:
    return f"seller_payable:{seller_id}"


def seller_carried_code(seller_id: int) -> str:
    return f"seller_carried:{seller_id}"


def cash_held_code(agent_id: int) -> str:
    return f"cash_held:{agent_id}"


def agent_credit_code(agent_id: int) -> str:
    return f"agent_credit:{agent_id}"


def agent_commission_code(agent_id: int) -> str:
    return f"agent_commission_payable:{agent_id}"


@dataclass(frozen=True)
class Line:
    """One line of a posting: the account (code, kind, owner user id) and signed fen, debit > 0.

    `post` also takes plain tuples in this field order: (code, kind, owner_id, amount_fen).
    """

    code: str
    kind: AccountKind
    owner_id: int | None
    amount_fen: int

    @classmethod
    def fixed(cls, code: str, amount_fen: int) -> Line:
        return cls(code, FIXED_ACCOUNTS[code], None, amount_fen)

    @classmethod
    def owned(cls, family: str, owner_id: int, amount_fen: int) -> Line:
        return cls(f"{family}:{owner_id}", OWNER_ACCOUNTS[family], owner_id, amount_fen)


LineLike = Line | tuple[str, AccountKind, int | None, int]


def _check_account(line: Line) -> None:
    """A known account code must come with its own kind (and, per owner, its owner's id)."""
    family, _sep, owner = line.code.partition(":")
    kind = FIXED_ACCOUNTS.get(line.code) if not owner else OWNER_ACCOUNTS.get(family)
    if kind is not None and line.kind != kind:
        raise UnbalancedTransaction(
            _("Account %(code)s is a %(kind)s account.", code=line.code, kind=kind.value)
        )
    if owner and family in OWNER_ACCOUNTS and owner != str(line.owner_id):
        raise UnbalancedTransaction(
            _("Account %(code)s belongs to user %(owner)s.", code=line.code, owner=owner)
        )


def check_lines(lines: Sequence[LineLike]) -> list[Line]:
    """The lines to post: zero amounts dropped; at least two left, whole fen, summing to zero."""
    checked: list[Line] = []
    for raw in lines:
        if isinstance(raw, Line):
            line = raw
        else:
            code, kind, owner_id, amount_fen = raw
            line = Line(code, AccountKind(kind), owner_id, amount_fen)
        amount = line.amount_fen
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise UnbalancedTransaction(_("Ledger amounts must be whole fen."))
        if not line.code or len(line.code) > 64:
            raise UnbalancedTransaction(_("A ledger line needs an account code of at most 64 characters."))
        _check_account(line)
        if amount != 0:
            checked.append(line)
    if len(checked) < 2:
        raise UnbalancedTransaction(_("A ledger transaction needs at least two non-zero lines."))
    total = sum(line.amount_fen for line in checked)
    if total != 0:
        raise UnbalancedTransaction(
            _("A ledger transaction must balance; its amounts add up to %(fen)s fen.", fen=total)
        )
    return checked


def _insert(session: Session):
    """INSERT … ON CONFLICT for the session's dialect (both support it, spelled the same)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _ensure_accounts(session: Session, lines: Sequence[Line]) -> dict[str, int]:
    """Account ids by code, creating the missing ones. Two processes may create the same
    account at once: ON CONFLICT DO NOTHING lets both go on and then read the one row."""
    wanted: dict[str, Line] = {}
    for line in lines:
        wanted.setdefault(line.code, line)
    codes = sorted(wanted)  # one order everywhere, so concurrent inserts cannot deadlock
    found = {a.code: a for a in session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(codes)))}
    missing = [c for c in codes if c not in found]
    if missing:
        rows = [
            {"code": c, "kind": wanted[c].kind, "owner_id": wanted[c].owner_id, "created_at": clock.now()}
            for c in missing
        ]
        session.execute(_insert(session)(LedgerAccount).on_conflict_do_nothing(index_elements=["code"]), rows)
        found.update(
            (a.code, a) for a in session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(missing)))
        )
    for code, line in wanted.items():
        if found[code].kind != line.kind:
            raise UnbalancedTransaction(
                _("Account %(code)s is a %(kind)s account.", code=code, kind=found[code].kind.value)
            )
    return {code: account.id for code, account in found.items()}


def _transaction(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == key))


# --- posting ----------------------------------------------------------------------------------


def post(
    session: Session,
    *,
    key: str,
    kind: str,
    lines: Sequence[LineLike],
    order_id: int | None = None,
    sub_order_id: int | None = None,
    payout_id: int | None = None,
    memo: str = "",
    details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction under `key`; if `key` was posted before, return that one."""
    if not key or len(key) > 96 or not kind or len(kind) > 32:
        raise ValueError("a posting needs a key of at most 96 and a kind of at most 32 characters")
    checked = check_lines(lines)
    existing = _transaction(session, key)
    if existing is not None:
        return existing
    account_ids = _ensure_accounts(session, checked)
    txn = LedgerTransaction(
        key=key,
        kind=kind,
        memo=memo[:200],
        order_id=order_id,
        sub_order_id=sub_order_id,
        payout_id=payout_id,
        details=dict(details or {}),
        entries=[
            LedgerEntry(account_id=account_ids[line.code], amount_fen=line.amount_fen) for line in checked
        ],
    )
    try:
        # A savepoint: when another process posted the same key meanwhile, only this insert
        # is undone and the caller's transaction goes on with the other process's posting.
        with session.begin_nested():
            session.add(txn)
    except IntegrityError:
        existing = _transaction(session, key)
        if existing is None:
            raise
        return existing
    return txn


def post_sub_order_paid(
    session: Session, sub_order: SubOrder, *, via: str = "gateway", agent_id: int | None = None
) -> LedgerTransaction:
    """The buyer's money for one sub-order came in: owed to the seller, commission, shipping.

    Exactly what was charged is posted: the sub-order's total less what a capture for less
    released (`released_fen`), taken from the three parts in proportion (`charged_parts`). The
    platform's share of its campaign discounts (`subsidy_fen`) is owed to the seller too, as the
    platform's expense (campaign_subsidies)."""
    seller_net, commission, shipping = charged_parts(sub_order)
    subsidy = sub_order.subsidy_fen or 0
    charged = seller_net + commission + shipping
    if via == "gateway":
        into = Line.fixed(CLEARING, charged)
    elif via == "cash" and agent_id is not None:
        into = Line.owned("cash_held", agent_id, charged)
    elif via == "credit" and agent_id is not None:
        # Placed on the agent's credit: owed through the agent until the villager pays at pickup.
        into = Line.owned("agent_credit", agent_id, charged)
    else:
        raise ValueError("via must be 'gateway', or 'cash' or 'credit' with an agent_id")
    return post(
        session,
        key=f"paid:{sub_order.id}",
        kind="sub_order_paid",
        lines=[
            into,
            Line.fixed(CAMPAIGN_SUBSIDIES, subsidy),
            Line.owned("seller_payable", sub_order.seller_id, -seller_net - subsidy),
            Line.fixed(PLATFORM_COMMISSION, -commission),
            Line.fixed(LOGISTICS_FEES, -shipping),
        ],
        order_id=sub_order.order_id,
        sub_order_id=sub_order.id,
        memo=sub_order.number,
        details={
            "via": via,
            "agent_id": agent_id,
            "released_fen": sub_order.released_fen or 0,
            "subsidy_fen": subsidy,
        },
    )


class Parts(NamedTuple):
    """A sub-order's money in the three parts a refund takes back from, in fen."""

    seller: int  # items_fen − commission_fen: the seller's net
    commission: int
    shipping: int

    @classmethod
    def of(cls, sub_order: SubOrder) -> Parts:
        return cls(
            sub_order.items_fen - sub_order.commission_fen, sub_order.commission_fen, sub_order.shipping_fen
        )

    def minus(self, other: Parts) -> Parts:
        return Parts(*(a - b for a, b in zip(self, other, strict=True)))


NO_PARTS = Parts(0, 0, 0)


def charged_parts(sub_order: SubOrder) -> Parts:
    """What the buyer was charged for each part: the sub-order's parts less what a capture for
    less released, the shortfall taken from the parts in proportion (as a refund would be)."""
    parts = Parts.of(sub_order)
    released = sub_order.released_fen or 0
    return parts if not released else parts.minus(allocate_refund(parts, released))


def allocate_refund(
    sub_order: SubOrder | Parts, amount_fen: int, *, already_refunded: Parts = NO_PARTS
) -> Parts:
    """Split a refund of `amount_fen` over what remains of each part, in proportion.

    `already_refunded` is what earlier refunds of the same sub-order took from each part (seller
    net, commission, shipping), as the ledger recorded them: the split is over `parts −
    already_refunded`. Largest remainder rounding makes the parts add up to exactly `amount_fen`,
    and no part gets more than remains of it, so any sequence of partial refunds stays within
    every part. Pure: no database.
    """
    parts = sub_order if isinstance(sub_order, Parts) else Parts.of(sub_order)
    if any(p < 0 for p in parts) or any(a < 0 or a > p for a, p in zip(already_refunded, parts, strict=True)):
        raise ValueError("already_refunded must lie within each part")
    remaining = parts.minus(already_refunded)
    left = sum(remaining)
    if amount_fen < 0:
        raise ValueError("a refund amount is not negative")
    if amount_fen > left:
        raise RefundTooLarge(
            _("Only %(yuan)s yuan of this order can still be refunded.", yuan=str(yuan(left)))
        )
    if amount_fen == 0:
        return NO_PARTS
    shares = [amount_fen * r // left for r in remaining]
    remainders = [amount_fen * r % left for r in remaining]
    # Each part got floor(exact share); the fen left over go to the largest fractions. A part
    # with no fraction never gets one, so none goes above its exact share rounded up (≤ remaining).
    for i in sorted(range(3), key=lambda i: (-remainders[i], i))[: amount_fen - sum(shares)]:
        shares[i] += 1
    return Parts(*shares)


def refunded_parts(session: Session, sub_order: SubOrder) -> Parts:
    """What the ledger's refunds of this sub-order took back from each part so far (the seller's
    part from seller_payable, or from seller_carried for a refund after the payout)."""
    seller_codes = [seller_payable_code(sub_order.seller_id), seller_carried_code(sub_order.seller_id)]
    rows = session.execute(
        select(LedgerAccount.code, func.sum(LedgerEntry.amount_fen))
        .select_from(LedgerEntry)
        .join(LedgerEntry.account)
        .join(LedgerEntry.transaction)
        .where(
            LedgerTransaction.kind == "refund",
            LedgerTransaction.sub_order_id == sub_order.id,
            LedgerAccount.code.in_([*seller_codes, PLATFORM_COMMISSION, LOGISTICS_FEES]),
        )
        .group_by(LedgerAccount.code)
    ).all()
    by_code = {code: int(total or 0) for code, total in rows}
    return Parts(
        sum(by_code.get(code, 0) for code in seller_codes),
        by_code.get(PLATFORM_COMMISSION, 0),
        by_code.get(LOGISTICS_FEES, 0),
    )


def post_refund(session: Session, refund: Refund) -> LedgerTransaction:
    """Money returned to the buyer for one sub-order, taken back from seller, commission and
    shipping in proportion to what remains of each. The seller's share comes out of what the
    platform owes them, or, once the sub-order is in a payout batch, is carried (seller_carried)
    until a later payout nets it."""
    key = f"refund:{refund.id}"
    existing = _transaction(session, key)
    if existing is not None:
        return existing
    sub_order: SubOrder = refund.sub_order
    # Two refunds of one sub-order at once would both read the same "already refunded"; and a
    # payout batch claiming the sub-order at this moment holds the same row lock, so payout_id
    # read here is the one that decides where the seller's share comes from.
    payout_id = session.scalar(
        select(SubOrder.payout_id).where(SubOrder.id == sub_order.id).with_for_update()
    )
    paid = _transaction(session, f"paid:{sub_order.id}")
    if paid is None:
        raise LedgerError(_("This order's payment is not in the ledger yet, so it cannot be refunded."))
    # The money goes back out of the account it came into (the gateway's, or the agent's cash);
    # on credit: out of the agent's credit (released), or once collected, out of the collecting
    # agent's cash (the agent hands the cash back).
    source = next(e.account for e in paid.entries if e.amount_fen > 0)
    collected = _transaction(session, f"collected:{sub_order.id}")
    if collected is not None:
        source = next(e.account for e in collected.entries if e.amount_fen > 0)
    amount = refund.amount_fen
    charged = charged_parts(sub_order)
    before = refunded_parts(session, sub_order)
    seller, commission, shipping = allocate_refund(charged, amount, already_refunded=before)
    posted = post(
        session,
        key=key,
        kind="refund",
        lines=[
            Line.fixed(REFUNDS, amount),
            Line(source.code, source.kind, source.owner_id, -amount),
            Line.owned(
                "seller_carried" if payout_id is not None else "seller_payable", sub_order.seller_id, seller
            ),
            Line.fixed(PLATFORM_COMMISSION, commission),
            Line.fixed(LOGISTICS_FEES, shipping),
            Line.fixed(REFUNDS, -amount),
        ],
        order_id=sub_order.order_id,
        sub_order_id=sub_order.id,
        memo=sub_order.number,
        details={
            "refund_id": refund.id,
            "seller_fen": seller,
            "commission_fen": commission,
            "shipping_fen": shipping,
            # Paid out already: the seller's share is carried, netted from a later payout.
            "after_payout_id": payout_id,
        },
    )
    # The agents' commissions earned on it give back the refunded share.
    from services import commissions  # it posts through this module

    commissions.reverse_for_refund(session, sub_order, refund.id)
    everything = sum(before) + amount == sum(charged)
    _post_subsidy_return(session, refund, payout_id, everything=everything)
    return posted


def _post_subsidy_return(
    session: Session, refund: Refund, payout_id: int | None, *, everything: bool
) -> None:
    """Units came back with a refund: the seller gives back their campaign subsidy (from what the
    platform owes them, or carried once paid out) and it returns to the campaigns' budgets. All of
    it when the refund leaves nothing of the sub-order, that of the refunded units for a refund of
    units, none for a refund of money only (services/campaigns/holds.py)."""
    from services.campaigns import holds  # it builds on the orders, which post through here

    sub_order: SubOrder = refund.sub_order
    returned = holds.subsidy_to_return(session, refund, everything=everything)
    total = holds.return_subsidy(session, returned)
    if not total:
        return
    refund.subsidy_fen = total
    post(
        session,
        key=f"subsidy-returned:{refund.id}",
        kind="subsidy_returned",
        lines=[
            Line.owned(
                "seller_carried" if payout_id is not None else "seller_payable", sub_order.seller_id, total
            ),
            Line.fixed(CAMPAIGN_SUBSIDIES, -total),
        ],
        order_id=sub_order.order_id,
        sub_order_id=sub_order.id,
        memo=sub_order.number,
        details={"refund_id": refund.id, "by_campaign": holds.by_campaign(returned)},
    )


def post_cash_remitted(
    session: Session, *, remittance_id: int, agent_id: int, counted_fen: int
) -> LedgerTransaction | None:
    """County staff counted cash an agent handed in: it leaves the agent's hands (cash_held)
    and joins the platform's money (clearing). Only the counted amount moves: a shortfall stays
    in cash_held, still owed by the agent. Nothing to post when nothing was counted."""
    if not counted_fen:
        return None
    return post(
        session,
        key=f"remitted:{remittance_id}",
        kind="cash_remitted",
        lines=[Line.fixed(CLEARING, counted_fen), Line.owned("cash_held", agent_id, -counted_fen)],
        memo=f"remittance {remittance_id}",
        details={"remittance_id": remittance_id, "agent_id": agent_id},
    )


def post_credit_collected(
    session: Session, sub_order: SubOrder, *, credit_agent_id: int, agent_id: int, amount_fen: int
) -> LedgerTransaction:
    """The villager paid cash at pickup for a sub-order placed on an agent's credit: what was
    still owed leaves the placing agent's credit (agent_credit) for the collecting agent's cash
    (cash_held), to be remitted as usual. Posted once per sub-order."""
    return post(
        session,
        key=f"collected:{sub_order.id}",
        kind="credit_collected",
        lines=[
            Line.owned("cash_held", agent_id, amount_fen),
            Line.owned("agent_credit", credit_agent_id, -amount_fen),
        ],
        order_id=sub_order.order_id,
        sub_order_id=sub_order.id,
        memo=sub_order.number,
        details={"credit_agent_id": credit_agent_id, "agent_id": agent_id},
    )


def credit_used(session: Session, agent_id: int) -> int:
    """What villagers owe through the agent now (orders on their credit not yet collected or
    refunded): the balance of agent_credit, never a stored counter."""
    return balance(session, agent_credit_code(agent_id))


def cash_in_agents_hands(session: Session, sub_order_ids: Sequence[int]) -> set[int]:
    """Of these sub-orders, the ones paid in cash (or on an agent's credit) whose cash is still
    in an agent's hands, or not even collected yet.

    The rule (first in, first out per agent): an agent's cash sub-orders are taken in the order
    their payments were posted, each for the cash it brought in less the cash refunded out of it;
    the agent's remitted total (what county staff counted) covers them from the oldest on. A
    sub-order is remitted once the running total up to and including it is within the remitted
    total; the rest is still in the agent's hands and is not payable.

    On credit: a sub-order placed on an agent's credit is not payable until the villager paid at
    pickup (post_credit_collected); from then on its cash is the collecting agent's like any cash
    sub-order's, placed in that agent's queue at its collection."""
    cash_paid: list[Any] = []
    on_credit: set[int] = set()
    for chunk in _chunks(list(sub_order_ids)):
        cash_paid += session.execute(
            select(LedgerTransaction.sub_order_id, LedgerAccount.owner_id)
            .select_from(LedgerEntry)
            .join(LedgerEntry.transaction)
            .join(LedgerEntry.account)
            .where(
                LedgerTransaction.kind.in_(("sub_order_paid", "credit_collected")),
                LedgerTransaction.sub_order_id.in_(chunk),
                LedgerAccount.code.like("cash_held:%"),
                LedgerEntry.amount_fen > 0,
            )
        ).all()
        on_credit.update(
            session.scalars(
                select(LedgerTransaction.sub_order_id)
                .select_from(LedgerEntry)
                .join(LedgerEntry.transaction)
                .join(LedgerEntry.account)
                .where(
                    LedgerTransaction.kind == "sub_order_paid",
                    LedgerTransaction.sub_order_id.in_(chunk),
                    LedgerAccount.code.like("agent_credit:%"),
                    LedgerEntry.amount_fen > 0,
                )
            )
        )
    uncollected = on_credit - {int(sub) for sub, _owner in cash_paid}
    if not cash_paid:
        return uncollected & set(sub_order_ids)
    agents = sorted({int(owner) for _sub, owner in cash_paid})
    codes = [cash_held_code(a) for a in agents]
    # Every cash movement of these agents tied to a sub-order (payments in, refunds out), oldest first.
    moves = session.execute(
        select(
            LedgerAccount.owner_id,
            LedgerTransaction.sub_order_id,
            LedgerTransaction.id,
            LedgerEntry.amount_fen,
        )
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(LedgerAccount.code.in_(codes), LedgerTransaction.sub_order_id.is_not(None))
        .order_by(LedgerTransaction.id)
    ).all()
    remitted = cash_remitted_by_agent(session, agents)
    first_seen: dict[int, dict[int, int]] = defaultdict(dict)  # agent → sub-order → first txn id
    net: dict[int, int] = defaultdict(int)
    for owner, sub_id, txn_id, fen in moves:
        first_seen[int(owner)].setdefault(int(sub_id), int(txn_id))
        net[int(sub_id)] += int(fen)
    held: set[int] = set()
    for agent in agents:
        running = 0
        for sub_id in sorted(first_seen[agent], key=lambda s: first_seen[agent][s]):
            running += max(net[sub_id], 0)
            if running > remitted.get(agent, 0):
                held.add(sub_id)
    return (held | uncollected) & set(sub_order_ids)


def cash_remitted_by_agent(session: Session, agent_ids: Sequence[int]) -> dict[int, int]:
    """What each agent's confirmed remittances moved out of cash_held (the counted amounts), as
    the ledger posted it."""
    rows = session.execute(
        select(LedgerAccount.owner_id, func.sum(LedgerEntry.amount_fen))
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(
            LedgerTransaction.kind == "cash_remitted",
            LedgerAccount.code.in_([cash_held_code(a) for a in agent_ids]),
        )
        .group_by(LedgerAccount.owner_id)
    ).all()
    return {int(owner): -int(total or 0) for owner, total in rows}


def post_netting(session: Session, payout: Payout) -> LedgerTransaction | None:
    """Net what the seller carried against what their payout's sub-orders owe them (when the
    batch is built): the platform owes them `netted_fen` less and they carry that much less."""
    if not payout.netted_fen:
        return None
    return post(
        session,
        key=f"netting:{payout.id}",
        kind="payout_netting",
        lines=[
            Line.owned("seller_payable", payout.seller_id, payout.netted_fen),
            Line.owned("seller_carried", payout.seller_id, -payout.netted_fen),
        ],
        payout_id=payout.id,
        details={"batch_id": payout.batch_id, "gross_fen": payout.gross_fen, "netted_fen": payout.netted_fen},
    )


def post_payout(session: Session, payout: Payout) -> LedgerTransaction | None:
    """The bank paid a seller their payout: the platform owes them that much less. A payout
    that netting took all of moved no money: nothing to post."""
    if not payout.amount_fen:
        return None
    return post(
        session,
        key=f"payout:{payout.id}",
        kind="payout",
        lines=[
            Line.owned("seller_payable", payout.seller_id, payout.amount_fen),
            Line.fixed(CLEARING, -payout.amount_fen),
        ],
        payout_id=payout.id,
        details={"batch_id": payout.batch_id, "gross_fen": payout.gross_fen, "netted_fen": payout.netted_fen},
    )


# --- balances ---------------------------------------------------------------------------------


def balance(session: Session, code: str) -> int:
    """An account's balance: the sum of its entries, debit-positive (0 for an unknown account)."""
    total = session.scalar(
        select(func.sum(LedgerEntry.amount_fen))
        .select_from(LedgerEntry)
        .join(LedgerEntry.account)
        .where(LedgerAccount.code == code)
    )
    return int(total or 0)


def balances_of(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """The balances of the accounts `codes` (0 for an unknown one), in one query per thousand."""
    found = dict.fromkeys(codes, 0)
    for chunk in _chunks(sorted(found)):
        rows = session.execute(
            select(LedgerAccount.code, func.sum(LedgerEntry.amount_fen))
            .select_from(LedgerEntry)
            .join(LedgerEntry.account)
            .where(LedgerAccount.code.in_(chunk))
            .group_by(LedgerAccount.code)
        )
        found.update({code: int(total or 0) for code, total in rows})
    return found


def balances(session: Session) -> dict[str, int]:
    """Every account's balance by code, debit-positive."""
    rows = session.execute(
        select(LedgerAccount.code, func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
        .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.code)
    ).all()
    return {code: int(total) for code, total in rows}


def trial_balance(session: Session) -> int:
    """The sum of every entry in the ledger: always 0 when the books are right."""
    return int(session.scalar(select(func.sum(LedgerEntry.amount_fen))) or 0)


def seller_payable(session: Session, seller_id: int) -> int:
    """What the platform owes a seller now (positive when owed)."""
    return -balance(session, seller_payable_code(seller_id))


def seller_carried(session: Session, seller_id: int) -> int:
    """What a seller owes the platform from refunds after their payouts, not yet netted."""
    return balance(session, seller_carried_code(seller_id))


def carried_balances(session: Session, seller_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Each seller's carried balance (seller_carried, positive when they owe), by seller id;
    only sellers whose balance is not zero."""
    query = (
        select(LedgerAccount.owner_id, func.sum(LedgerEntry.amount_fen))
        .select_from(LedgerEntry)
        .join(LedgerEntry.account)
        .where(LedgerAccount.code.like("seller_carried:%"))
        .group_by(LedgerAccount.owner_id)
    )
    found: dict[int, int] = {}
    if seller_ids is None:
        rows: list[Any] = list(session.execute(query).all())
    else:
        rows = []
        for chunk in _chunks(list(seller_ids)):
            rows += session.execute(query.where(LedgerAccount.owner_id.in_(chunk))).all()
    for owner_id, total in rows:
        if owner_id is not None and int(total or 0):
            found[int(owner_id)] = int(total)
    return found


@dataclass(frozen=True)
class AccountBalance:
    code: str
    kind: AccountKind
    owner_id: int | None
    owner_name: str  # the shop name, else the user's name; "" for platform accounts
    balance_fen: int  # debit-positive

    @property
    def family(self) -> str:
        return self.code.split(":", 1)[0]


@dataclass(frozen=True)
class FinanceOverview:
    accounts: list[AccountBalance]  # platform accounts first, then per-owner ones by code
    trial_balance_fen: int
    batches: list[PayoutBatch]
    # Sellers who owe the platform (refunds after their payout), to be netted: largest first.
    carried: list[AccountBalance] = field(default_factory=list)
    # The last run of the ledger's invariant checks (services/ledger_checks.py), if any.
    last_check: JobRun | None = None

    @property
    def carried_total_fen(self) -> int:
        return sum(a.balance_fen for a in self.carried)


def finance_overview(session: Session, actor: User | None, *, batch_limit: int = 50) -> FinanceOverview:
    """For the admins' finance page: every account's balance, the trial balance, recent batches,
    what each seller carries, and the last run of the ledger checks."""
    authz.require_admin(actor)
    rows = session.execute(
        select(
            LedgerAccount.code,
            LedgerAccount.kind,
            LedgerAccount.owner_id,
            SellerProfile.shop_name,
            User.display_name,
            func.coalesce(func.sum(LedgerEntry.amount_fen), 0),
        )
        .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .outerjoin(User, User.id == LedgerAccount.owner_id)
        .outerjoin(SellerProfile, SellerProfile.user_id == LedgerAccount.owner_id)
        .group_by(
            LedgerAccount.code,
            LedgerAccount.kind,
            LedgerAccount.owner_id,
            SellerProfile.shop_name,
            User.display_name,
        )
    ).all()
    accounts = [
        AccountBalance(code, kind, owner_id, shop or name or "", int(total))
        for code, kind, owner_id, shop, name, total in rows
    ]
    fixed = list(FIXED_ACCOUNTS)
    accounts.sort(key=lambda a: (0, fixed.index(a.code), "") if a.code in fixed else (1, 0, a.code))
    carried = sorted(
        (a for a in accounts if a.family == "seller_carried" and a.balance_fen),
        key=lambda a: (-a.balance_fen, a.code),
    )
    return FinanceOverview(
        accounts,
        trial_balance(session),
        list_batches(session, actor, limit=batch_limit),
        carried=carried,
        last_check=session.get(JobRun, CHECK_JOB),
    )


# --- payouts ----------------------------------------------------------------------------------


def _chunks(ids: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _owed_by_sub_order(session: Session, sub_orders: Sequence[tuple[int, int]]) -> dict[int, int]:
    """For (sub_order_id, seller_id) pairs: what the ledger says each seller is owed for that
    sub-order (its payment net of its refunds), positive when owed."""
    seller_of = dict(sub_orders)
    owed: dict[int, int] = defaultdict(int)
    for chunk in _chunks(list(seller_of)):
        rows = session.execute(
            select(LedgerTransaction.sub_order_id, LedgerAccount.code, func.sum(LedgerEntry.amount_fen))
            .select_from(LedgerEntry)
            .join(LedgerEntry.transaction)
            .join(LedgerEntry.account)
            .where(LedgerTransaction.sub_order_id.in_(chunk))
            .group_by(LedgerTransaction.sub_order_id, LedgerAccount.code)
        ).all()
        for sub_order_id, code, total in rows:
            if sub_order_id is not None and code == seller_payable_code(seller_of[sub_order_id]):
                owed[sub_order_id] -= int(total or 0)
    return owed


def _check_holding_days(holding_days: Any) -> int:
    if (
        not isinstance(holding_days, int)
        or isinstance(holding_days, bool)
        or not 0 <= holding_days <= MAX_HOLDING_DAYS
    ):
        msg = _("Enter a whole number of days from 0 to %(max)d.", max=MAX_HOLDING_DAYS)
        raise ValidationError(msg, field_errors={"holding_days": [msg]})
    return holding_days


def create_payout_batch(
    session: Session, actor: User | None, *, now: datetime | None = None, holding_days: int = 7
) -> PayoutBatch | None:
    """Pay every seller what the ledger owes them for sub-orders completed at least
    `holding_days` ago and not yet in a batch, less what they carry; None when there is nothing
    to pay.

    Per seller: gross = what those sub-orders owe (their payments net of their refunds); netted
    = the smaller of gross and what the seller carries (seller_carried); the payout is gross −
    netted, never negative. A seller whose carried balance takes all of gross gets a payout of 0
    (it claims the sub-orders and records the netting; the bank files leave it out); one with a
    carried balance and nothing newly payable gets no row and keeps carrying it. A sub-order
    with a refund still pending at the gateway waits for a later batch: paying it now could pay
    out money that is about to go back to the buyer. A sub-order paid in cash waits until the
    agent who took the cash has remitted it (`cash_in_agents_hands`)."""
    actor = authz.require_admin(actor)
    holding_days = _check_holding_days(holding_days)
    now = now or clock.now()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - timedelta(days=holding_days)
    # Locked in id order: a second admin building a batch at the same moment waits here, then
    # sees these sub-orders taken (PostgreSQL re-checks payout_id IS NULL after the wait).
    candidates = session.execute(
        select(SubOrder.id, SubOrder.seller_id)
        .where(
            SubOrder.status.in_(PAYABLE_STATUSES),
            SubOrder.completed_at.is_not(None),
            SubOrder.completed_at <= cutoff,
            SubOrder.payout_id.is_(None),
        )
        .order_by(SubOrder.id)
        .with_for_update()
    ).all()
    # Read after the lock, in a statement of its own: a refund asked for while this waited is seen.
    pending: set[int] = set()
    for chunk in _chunks([row.id for row in candidates]):
        pending.update(
            session.scalars(
                select(Refund.sub_order_id).where(
                    Refund.sub_order_id.in_(chunk), Refund.status == RefundStatus.PENDING
                )
            )
        )
    # Cash still in an agent's hands is not the platform's yet: its sub-orders wait until the
    # agent remits it (cash_in_agents_hands: first in, first out per agent).
    pending |= cash_in_agents_hands(session, [row.id for row in candidates])
    candidates = [row for row in candidates if row.id not in pending]
    owed = _owed_by_sub_order(session, [(row.id, row.seller_id) for row in candidates])
    by_seller: dict[int, list[int]] = defaultdict(list)
    for row in candidates:
        by_seller[row.seller_id].append(row.id)
    payable = {seller: ids for seller, ids in by_seller.items() if sum(owed.get(i, 0) for i in ids) > 0}
    if not payable:
        session.commit()  # ends the transaction and releases the row locks
        return None
    # The carried accounts are locked too: a refund posting to one meanwhile waits, and no other
    # batch nets the same balance twice.
    for chunk in _chunks([seller_carried_code(seller) for seller in sorted(payable)]):
        session.execute(select(LedgerAccount.id).where(LedgerAccount.code.in_(chunk)).with_for_update())
    carried = carried_balances(session, sorted(payable))

    batch = PayoutBatch(cutoff=cutoff, created_by_id=actor.id, status=PayoutBatchStatus.OPEN)
    for seller in sorted(payable):
        ids = payable[seller]
        gross = sum(owed.get(i, 0) for i in ids)
        netted = min(gross, max(carried.get(seller, 0), 0))
        batch.payouts.append(
            Payout(
                seller_id=seller,
                gross_fen=gross,
                netted_fen=netted,
                amount_fen=gross - netted,
                sub_order_count=len(ids),
            )
        )
    batch.total_fen = sum(p.amount_fen for p in batch.payouts)
    session.add(batch)
    session.flush()
    for payout in batch.payouts:
        post_netting(session, payout)
    for payout in batch.payouts:
        claimed = 0
        for chunk in _chunks(payable[payout.seller_id]):
            result = session.execute(
                update(SubOrder)
                .where(SubOrder.id.in_(chunk), SubOrder.payout_id.is_(None))
                .values(payout_id=payout.id)
                .execution_options(synchronize_session=False)
            )
            claimed += result.rowcount  # type: ignore[attr-defined]
        # Where row locks do not exist (SQLite), this is what catches a concurrent batch.
        if claimed != len(payable[payout.seller_id]):
            session.rollback()
            raise Conflict(_("Another payout batch was being built at the same time. Please try again."))
    # The agents' commissions on the claimed sub-orders are paid beside the sellers.
    from services import commissions  # it posts through this module

    agents = commissions.add_to_batch(session, batch, [i for ids in payable.values() for i in ids])
    batch.total_fen += sum(p.amount_fen for p in agents)
    # The bulk UPDATE went around the identity map: sub-orders this session holds reload it.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, SubOrder):
            session.expire(obj, ["payout_id"])
    session.commit()
    return batch


def mark_batch_paid(session: Session, actor: User | None, batch_id: int) -> PayoutBatch:
    """The bank has paid the batch: post each payout to the ledger. A second call changes nothing."""
    actor = authz.require_admin(actor)
    batch = session.scalar(
        select(PayoutBatch)
        .where(PayoutBatch.id == batch_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise NotFound(_("This payout batch does not exist."))
    if batch.status == PayoutBatchStatus.PAID:
        session.commit()
        return batch
    for payout in batch.payouts:
        post_payout(session, payout)
    from services import commissions  # it posts through this module

    commissions.post_payouts(session, batch)
    batch.status = PayoutBatchStatus.PAID
    batch.paid_by_id = actor.id
    batch.paid_at = clock.now()
    session.commit()
    return batch


def list_batches(session: Session, actor: User | None, *, limit: int = 50) -> list[PayoutBatch]:
    """The newest payout batches first."""
    authz.require_admin(actor)
    return list(session.scalars(select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(limit)))


def get_batch(session: Session, actor: User | None, batch_id: int) -> PayoutBatch:
    authz.require_admin(actor)
    batch = session.get(PayoutBatch, batch_id)
    if batch is None:
        raise NotFound(_("This payout batch does not exist."))
    return batch


# --- the bank's file --------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutRow:
    batch_id: int
    seller_id: int
    shop_name: str
    phone: str  # unmasked: the bank needs it; pages mask it
    amount_fen: int  # what the bank transfers
    sub_order_count: int
    gross_fen: int = 0  # what the sub-orders owe the seller
    netted_fen: int = 0  # taken from what the seller carried


def payout_rows(batch: PayoutBatch, *, transfers_only: bool = False) -> list[PayoutRow]:
    """A batch's payouts with each seller's shop name and phone, by seller id; `transfers_only`:
    without the payouts netting took all of (amount 0), which the bank has nothing to pay."""
    session = object_session(batch)
    shops: dict[int, str] = {}
    if session is not None and batch.payouts:
        seller_ids = [p.seller_id for p in batch.payouts]
        for chunk in _chunks(seller_ids):
            rows = session.execute(
                select(SellerProfile.user_id, SellerProfile.shop_name).where(SellerProfile.user_id.in_(chunk))
            )
            shops.update((user_id, shop_name) for user_id, shop_name in rows)
    return [
        PayoutRow(
            batch_id=batch.id,
            seller_id=p.seller_id,
            shop_name=seller_name(p.seller, shops.get(p.seller_id)),
            phone=p.seller.phone,
            amount_fen=p.amount_fen,
            sub_order_count=p.sub_order_count,
            gross_fen=p.gross_fen,
            netted_fen=p.netted_fen,
        )
        for p in sorted(batch.payouts, key=lambda p: p.seller_id)
        if p.amount_fen or not transfers_only
    ]


# The bank reads the first six columns (unchanged since the first file); the last two show the
# netting: what the sub-orders owed and what was taken from the seller's carried refunds.
EXPORT_HEADER = (
    "批次号",
    "卖家编号",
    "店铺名",
    "收款人手机号",
    "金额（元）",
    "子订单数",
    "应付（元）",
    "抵扣（元）",
)


def export_batch_csv(batch: PayoutBatch) -> bytes:
    """The batch for the bank as CSV: UTF-8 with a BOM so that Excel reads the Chinese right.
    One line per transfer: a payout netting took all of is on the batch page, not in the file."""
    rows: list[list[Any]] = [list(EXPORT_HEADER)]
    for row in payout_rows(batch, transfers_only=True):
        rows.append(
            [
                row.batch_id,
                row.seller_id,
                row.shop_name,
                row.phone,
                yuan_text(row.amount_fen),
                row.sub_order_count,
                yuan_text(row.gross_fen),
                yuan_text(row.netted_fen),
            ]
        )
    return exports.csv_bytes(rows)


def export_batch_xlsx(batch: PayoutBatch) -> bytes:
    """The batch for the bank as an Excel workbook: amounts as numbers, a total row at the end;
    one row per transfer, as in the CSV."""
    rows = payout_rows(batch, transfers_only=True)
    wb, ws = exports.new_workbook(f"付款批次{batch.id}")
    exports.header_row(ws, 1, EXPORT_HEADER)
    for r, row in enumerate(rows, start=2):
        ws.cell(row=r, column=1, value=row.batch_id)
        ws.cell(row=r, column=2, value=row.seller_id)
        exports.text_cell(ws, r, 3, row.shop_name)
        exports.text_cell(ws, r, 4, row.phone)
        exports.money_cell(ws, r, 5, row.amount_fen)
        ws.cell(row=r, column=6, value=row.sub_order_count)
        exports.money_cell(ws, r, 7, row.gross_fen)
        exports.money_cell(ws, r, 8, row.netted_fen)
    total_row = len(rows) + 2
    exports.bold_cell(ws.cell(row=total_row, column=1, value="合计"))
    exports.money_cell(ws, total_row, 5, sum(r.amount_fen for r in rows), bold=True)
    exports.bold_cell(ws.cell(row=total_row, column=6, value=sum(r.sub_order_count for r in rows)))
    exports.money_cell(ws, total_row, 7, sum(r.gross_fen for r in rows), bold=True)
    exports.money_cell(ws, total_row, 8, sum(r.netted_fen for r in rows), bold=True)
    exports.set_widths(ws, (10, 10, 28, 16, 14, 10, 14, 14))
    ws.freeze_panes = "A2"
    return exports.workbook_bytes(wb)
