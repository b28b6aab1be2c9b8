"""The ledger's invariants, checked against the database: what must hold after every use case.

`find_breaches(session)` returns every breach it finds (an empty list when the books are right):

- trial_balance          the sum of every entry is 0
- unbalanced_transaction every transaction's entries sum to 0
- account_kind           an account's kind (and owner) is the one its code's family has
- payment_received       a succeeded payment's `amount_received_fen` is what the ledger posted as
                         paid for its sub-orders (0 for a payment that did not succeed)
- payment_refunded       a payment's `amount_refunded_fen` is the sum of its settled refunds
- sub_order_refunded     a sub-order's `refunded_fen` is the sum of its settled refunds
- refund_posting         each settled refund is posted once for its amount, and only those
- payout_gross           a payout's gross is what the ledger owed for its sub-orders; its
                         sub-order count is how many point at it
- payout_posting         its netting is posted for `netted_fen`, and once its batch is paid its
                         transfer for `amount_fen` (neither before, nor when 0)
- batch_total            a batch's `total_fen` is the sum of its payouts' amounts (sellers' and
                         agents' commission payouts)
- seller_payable         no seller payable has a debit balance (the platform owing less than
                         nothing): a refund after a payout is carried in seller_carried instead
- seller_carried         no carried balance is below zero (netting never takes more than is carried)
- cash_held              each agent's cash_held is the cash orders they collected (and the credit
                         orders they collected at pickup), less cash refunds, less the counted
                         amounts of their confirmed remittances
- agent_credit           each agent's agent_credit is what the sub-orders they placed on credit
                         still owe: charged less refunded, for those not collected at pickup;
                         and each collection is posted once for the amount its record says
- agent_commission       each agent's commission payable is what their commission records hold
                         (earned − reversed) less their paid commission payouts; each record's
                         earning and reversals are posted for its amounts; a commission payout
                         pays at most what its commissions hold

Balances are never stored (each is the sum of its account's entries), so "an account's balance
equals the sum of its entries" is checked through the totals other tables keep beside the ledger:
the payments', sub-orders', payouts' and batches' amounts above.

The job `check-ledger` (services/jobs.py) runs `check_ledger` and fails, so that admins see it
in red on /admin/jobs and the finance page, when a breach is found. The test suites run
`find_breaches` after every order and payment test (tests/conftest.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import (
    AgentCommission,
    CashRemittance,
    CommissionPayout,
    CreditCollection,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Order,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Refund,
    RefundStatus,
    RemittanceStatus,
    SubOrder,
)
from services import ledger

MAX_LISTED = 50  # breaches kept in a job's result; the count is always whole


@dataclass(frozen=True)
class Breach:
    """One invariant that does not hold: which check, about what, what was expected and found."""

    check: str
    subject: str  # e.g. "payment 12", "seller_payable:7", "ledger"
    expected: int | str
    found: int | str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: expected {self.expected}, found {self.found}"


# --- the checks -------------------------------------------------------------------------------


def _balances_by_code(session: Session) -> dict[str, int]:
    return ledger.balances(session)


def check_trial_balance(session: Session) -> list[Breach]:
    total = ledger.trial_balance(session)
    breaches = [Breach("trial_balance", "ledger", 0, total)] if total else []
    rows = session.execute(
        select(LedgerTransaction.key, func.sum(LedgerEntry.amount_fen))
        .join(LedgerEntry.transaction)
        .group_by(LedgerTransaction.key)
        .having(func.sum(LedgerEntry.amount_fen) != 0)
        .order_by(LedgerTransaction.key)
    ).all()
    breaches += [Breach("unbalanced_transaction", key, 0, int(total)) for key, total in rows]
    return breaches


def check_account_kinds(session: Session) -> list[Breach]:
    breaches = []
    for code, kind, owner_id in session.execute(
        select(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.owner_id).order_by(LedgerAccount.code)
    ):
        family, _sep, owner = code.partition(":")
        expected = ledger.FIXED_ACCOUNTS.get(code) if not owner else ledger.OWNER_ACCOUNTS.get(family)
        if expected is not None and kind != expected:
            breaches.append(Breach("account_kind", code, expected.value, kind.value))
        elif owner and family in ledger.OWNER_ACCOUNTS and owner != str(owner_id):
            breaches.append(Breach("account_kind", code, f"owner {owner}", f"owner {owner_id}"))
    return breaches


def _paid_inflows(session: Session) -> list[tuple[int, int, str, int]]:
    """(order_id, sub_order_id, account code, fen) of what each `sub_order_paid` posting brought
    into the platform (the gateway's clearing account or an agent's cash)."""
    rows = session.execute(
        select(
            LedgerTransaction.order_id,
            LedgerTransaction.sub_order_id,
            LedgerAccount.code,
            func.sum(LedgerEntry.amount_fen),
        )
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(
            LedgerTransaction.kind == "sub_order_paid",
            LedgerEntry.amount_fen > 0,
            LedgerAccount.code != ledger.CAMPAIGN_SUBSIDIES,  # the platform's, not the buyer's
        )
        .group_by(LedgerTransaction.order_id, LedgerTransaction.sub_order_id, LedgerAccount.code)
    ).all()
    return [(o, s, c, int(t)) for o, s, c, t in rows]


def check_payments(session: Session) -> list[Breach]:
    breaches = []
    posted: dict[int, int] = defaultdict(int)
    for order_id, _sub, _code, fen in _paid_inflows(session):
        if order_id is not None:
            posted[order_id] += fen
    settled: dict[int, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Refund.payment_id, func.sum(Refund.amount_fen))
            .where(Refund.status == RefundStatus.SUCCEEDED)
            .group_by(Refund.payment_id)
        ).all()
    )
    for pid, order_id, status, received, refunded in session.execute(
        select(
            Payment.id,
            Payment.order_id,
            Payment.status,
            Payment.amount_received_fen,
            Payment.amount_refunded_fen,
        ).order_by(Payment.id)
    ):
        # On credit, the order is paid for its sellers at once (the agent's credit carries it).
        expected = received if status in (PaymentStatus.SUCCEEDED, PaymentStatus.ON_CREDIT) else 0
        found = posted.pop(order_id, 0)
        if found != expected:
            breaches.append(Breach("payment_received", f"payment {pid} ({status.value})", expected, found))
        if int(settled.get(pid) or 0) != refunded:
            breaches.append(
                Breach("payment_refunded", f"payment {pid}", int(settled.get(pid) or 0), refunded)
            )
    breaches += [
        Breach("payment_received", f"order {order_id} (no payment)", 0, fen)
        for order_id, fen in posted.items()
    ]
    return breaches


def check_refunds(session: Session) -> list[Breach]:
    breaches = []
    by_sub: dict[int, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Refund.sub_order_id, func.sum(Refund.amount_fen))
            .where(Refund.status == RefundStatus.SUCCEEDED)
            .group_by(Refund.sub_order_id)
        ).all()
    )
    for sub_id, number, refunded in session.execute(
        select(SubOrder.id, SubOrder.number, SubOrder.refunded_fen)
        .where(SubOrder.refunded_fen != 0)
        .order_by(SubOrder.id)
    ):
        if int(by_sub.pop(sub_id, 0) or 0) != refunded:
            breaches.append(
                Breach("sub_order_refunded", f"sub-order {number}", int(by_sub.get(sub_id) or 0), refunded)
            )
    for sub_id, fen in sorted(by_sub.items()):
        breaches.append(Breach("sub_order_refunded", f"sub-order id {sub_id}", int(fen), 0))

    # Each refund posting's money to the buyer: the debit of the refunds account (it passes through).
    posted = {
        key: int(fen)
        for key, fen in session.execute(
            select(LedgerTransaction.key, func.sum(LedgerEntry.amount_fen))
            .select_from(LedgerEntry)
            .join(LedgerEntry.transaction)
            .join(LedgerEntry.account)
            .where(
                LedgerTransaction.kind == "refund",
                LedgerAccount.code == ledger.REFUNDS,
                LedgerEntry.amount_fen > 0,
            )
            .group_by(LedgerTransaction.key)
        )
    }
    for refund_id, status, amount in session.execute(
        select(Refund.id, Refund.status, Refund.amount_fen).order_by(Refund.id)
    ):
        expected = amount if status == RefundStatus.SUCCEEDED else 0
        found = posted.pop(f"refund:{refund_id}", 0)
        if found != expected:
            breaches.append(Breach("refund_posting", f"refund {refund_id} ({status.value})", expected, found))
    breaches += [Breach("refund_posting", key, "a refund", f"{fen} fen") for key, fen in posted.items()]
    return breaches


def _per_payout_postings(session: Session) -> dict[tuple[int, str, str], int]:
    """{(payout_id, kind, account code): fen} of every posting tied to a payout."""
    rows = session.execute(
        select(
            LedgerTransaction.payout_id,
            LedgerTransaction.kind,
            LedgerAccount.code,
            func.sum(LedgerEntry.amount_fen),
        )
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(LedgerTransaction.payout_id.is_not(None))
        .group_by(LedgerTransaction.payout_id, LedgerTransaction.kind, LedgerAccount.code)
    ).all()
    return {(int(p), k, c): int(t) for p, k, c, t in rows}


def check_payouts(session: Session) -> list[Breach]:
    breaches = []
    # What the ledger owed for each payout's sub-orders: their seller_payable entries (payment
    # less the refunds made before the batch; later refunds are carried, not in seller_payable).
    owed: dict[int, int] = defaultdict(int)
    counts: dict[int, int] = defaultdict(int)
    for payout_id, n in session.execute(
        select(SubOrder.payout_id, func.count())
        .where(SubOrder.payout_id.is_not(None))
        .group_by(SubOrder.payout_id)
    ):
        counts[int(payout_id)] = int(n)
    for payout_id, code, seller_id, fen in session.execute(
        select(SubOrder.payout_id, LedgerAccount.code, SubOrder.seller_id, func.sum(LedgerEntry.amount_fen))
        .select_from(LedgerEntry)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .join(SubOrder, SubOrder.id == LedgerTransaction.sub_order_id)
        .where(SubOrder.payout_id.is_not(None), LedgerAccount.code.like("seller_payable:%"))
        .group_by(SubOrder.payout_id, LedgerAccount.code, SubOrder.seller_id)
    ):
        if code == ledger.seller_payable_code(seller_id):
            owed[int(payout_id)] -= int(fen)
    postings = _per_payout_postings(session)
    totals: dict[int, int] = defaultdict(int)
    for payout, status in session.execute(
        select(Payout, PayoutBatch.status)
        .join(PayoutBatch, PayoutBatch.id == Payout.batch_id)
        .order_by(Payout.id)
    ):
        subject = f"payout {payout.id} (batch {payout.batch_id}, seller {payout.seller_id})"
        totals[payout.batch_id] += payout.amount_fen
        if owed.get(payout.id, 0) != payout.gross_fen:
            breaches.append(Breach("payout_gross", subject, owed.get(payout.id, 0), payout.gross_fen))
        if counts.get(payout.id, 0) != payout.sub_order_count:
            breaches.append(
                Breach(
                    "payout_gross", f"{subject}: sub-orders", counts.get(payout.id, 0), payout.sub_order_count
                )
            )
        payable = ledger.seller_payable_code(payout.seller_id)
        carried = ledger.seller_carried_code(payout.seller_id)
        netting = (
            postings.pop((payout.id, "payout_netting", payable), 0),
            -postings.pop((payout.id, "payout_netting", carried), 0),
        )
        if netting != (payout.netted_fen, payout.netted_fen):
            breaches.append(Breach("payout_posting", f"{subject}: netting", payout.netted_fen, str(netting)))
        transfer = payout.amount_fen if status == PayoutBatchStatus.PAID else 0
        paid = (
            postings.pop((payout.id, "payout", payable), 0),
            -postings.pop((payout.id, "payout", ledger.CLEARING), 0),
        )
        if paid != (transfer, transfer):
            breaches.append(Breach("payout_posting", f"{subject}: transfer", transfer, str(paid)))
    breaches += [
        Breach("payout_posting", f"payout {p}: {kind} {code}", 0, fen)
        for (p, kind, code), fen in sorted(postings.items())
        if fen
    ]
    for batch_id, fen in session.execute(
        select(CommissionPayout.batch_id, func.sum(CommissionPayout.amount_fen)).group_by(
            CommissionPayout.batch_id
        )
    ):
        totals[int(batch_id)] += int(fen or 0)
    for batch_id, total in session.execute(
        select(PayoutBatch.id, PayoutBatch.total_fen).order_by(PayoutBatch.id)
    ):
        if totals.get(batch_id, 0) != total:
            breaches.append(Breach("batch_total", f"batch {batch_id}", totals.get(batch_id, 0), total))
    return breaches


def check_seller_balances(session: Session) -> list[Breach]:
    """seller_payable is a liability and never has a debit balance: what a seller owes after a
    refund made once they were paid is carried in seller_carried (an asset), never below zero."""
    breaches = []
    for code, fen in sorted(_balances_by_code(session).items()):
        family = code.partition(":")[0]
        if family == "seller_payable" and fen > 0:
            breaches.append(Breach("seller_payable", code, "≤ 0 (owed to the seller)", fen))
        elif family == "seller_carried" and fen < 0:
            breaches.append(Breach("seller_carried", code, "≥ 0 (owed by the seller)", fen))
    return breaches


def check_cash_held(session: Session) -> list[Breach]:
    """Each agent holds the cash of the cash orders they collected, less what was refunded out
    of it, less what they remitted: the counted amounts of their confirmed remittances, read
    from the remittance records (services/cash.py), not from the ledger. A shortfall (declared
    more than counted) is still held."""
    expected: dict[str, int] = defaultdict(int)
    collected = [
        (sub_id, code) for _o, sub_id, code, _f in _paid_inflows(session) if code.startswith("cash_held:")
    ]
    if collected:
        subs = {
            sub.id: sub
            for sub in session.scalars(select(SubOrder).where(SubOrder.id.in_([s for s, _c in collected])))
        }
        for sub_id, code in collected:
            sub = subs[sub_id]
            expected[code] += sub.total_fen - (sub.released_fen or 0) - sub.refunded_fen
    # Credit orders collected at pickup: the collector took what was still owed (charged less
    # the refunds before), and refunds after come out of that cash: charged less all refunds.
    for agent_id, total, released, refunded in session.execute(
        select(
            CreditCollection.agent_id, SubOrder.total_fen, SubOrder.released_fen, SubOrder.refunded_fen
        ).join(SubOrder, SubOrder.id == CreditCollection.sub_order_id)
    ):
        expected[ledger.cash_held_code(agent_id)] += total - (released or 0) - refunded
    for agent_id, counted in session.execute(
        select(CashRemittance.agent_id, func.sum(CashRemittance.counted_fen))
        .where(CashRemittance.status == RemittanceStatus.CONFIRMED)
        .group_by(CashRemittance.agent_id)
    ):
        expected[ledger.cash_held_code(agent_id)] -= int(counted or 0)
    breaches = []
    held = {code: fen for code, fen in _balances_by_code(session).items() if code.startswith("cash_held:")}
    for code in sorted(set(held) | set(expected)):
        if held.get(code, 0) != expected.get(code, 0):
            breaches.append(Breach("cash_held", code, expected.get(code, 0), held.get(code, 0)))
    return breaches


def check_agent_commissions(session: Session) -> list[Breach]:
    """An agent's commission payable holds what their commission records say: earned less
    reversed, less what paid batches transferred to them (services/commissions.py); each record
    is posted as it says."""
    expected: dict[str, int] = defaultdict(int)
    posted: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    breaches = []
    rows = {row.id: row for row in session.scalars(select(AgentCommission))}
    for row in rows.values():
        expected[ledger.agent_commission_code(row.agent_id)] -= row.amount_fen - row.reversed_fen
        posted[row.id] = [0, 0]  # every record must be posted
    for details, kind, fen in session.execute(
        select(LedgerTransaction.details, LedgerTransaction.kind, LedgerEntry.amount_fen)
        .join(LedgerEntry.transaction)
        .join(LedgerEntry.account)
        .where(
            LedgerTransaction.kind.in_(["agent_commission", "agent_commission_reversal"]),
            LedgerAccount.code == ledger.AGENT_COMMISSIONS,
        )
    ):
        commission_id = int((details or {}).get("commission_id", 0))
        posted[commission_id][0 if kind == "agent_commission" else 1] += int(fen)
    for commission_id, (earned, reversed_fen) in sorted(posted.items()):
        found = rows.get(commission_id)
        want = (found.amount_fen, -found.reversed_fen) if found is not None else (0, 0)
        if (earned, reversed_fen) != want:
            breaches.append(
                Breach(
                    "agent_commission", f"commission {commission_id}", str(want), str((earned, reversed_fen))
                )
            )
    for payout, status in session.execute(
        select(CommissionPayout, PayoutBatch.status).join(
            PayoutBatch, PayoutBatch.id == CommissionPayout.batch_id
        )
    ):
        if status == PayoutBatchStatus.PAID:
            expected[ledger.agent_commission_code(payout.agent_id)] += payout.amount_fen
        if payout.amount_fen > payout.gross_fen:
            breaches.append(
                Breach(
                    "agent_commission", f"commission payout {payout.id}", payout.gross_fen, payout.amount_fen
                )
            )
    held = {
        code: fen
        for code, fen in _balances_by_code(session).items()
        if code.startswith("agent_commission_payable:")
    }
    for code in sorted(set(held) | set(expected)):
        if held.get(code, 0) != expected.get(code, 0):
            breaches.append(Breach("agent_commission", code, expected.get(code, 0), held.get(code, 0)))
    return breaches


def check_agent_credit(session: Session) -> list[Breach]:
    """Each agent's agent_credit is what the sub-orders they placed on credit still owe (charged
    less refunded) until collected at pickup, read from the orders and the collection records
    (services/cash.py), not from the ledger; each collection's posting is its recorded amount."""
    expected: dict[str, int] = defaultdict(int)
    collected = {
        int(sub_id): int(fen)
        for sub_id, fen in session.execute(select(CreditCollection.sub_order_id, CreditCollection.amount_fen))
    }
    for placer, sub_id, total, released, refunded in session.execute(
        select(
            Order.placed_by_id, SubOrder.id, SubOrder.total_fen, SubOrder.released_fen, SubOrder.refunded_fen
        )
        .join(SubOrder, SubOrder.order_id == Order.id)
        .join(Payment, Payment.order_id == Order.id)
        .where(
            Payment.method == PaymentMethod.CREDIT,
            Payment.status.in_((PaymentStatus.ON_CREDIT, PaymentStatus.SUCCEEDED)),
        )
    ):
        owed = 0 if sub_id in collected else total - (released or 0) - refunded
        expected[ledger.agent_credit_code(placer)] += owed
    breaches = []
    held = {code: fen for code, fen in _balances_by_code(session).items() if code.startswith("agent_credit:")}
    for code in sorted(set(held) | set(expected)):
        if held.get(code, 0) != expected.get(code, 0):
            breaches.append(Breach("agent_credit", code, expected.get(code, 0), held.get(code, 0)))
    posted = {
        int(sub_id): int(fen)
        for sub_id, fen in session.execute(
            select(LedgerTransaction.sub_order_id, func.sum(LedgerEntry.amount_fen))
            .select_from(LedgerEntry)
            .join(LedgerEntry.transaction)
            .where(LedgerTransaction.kind == "credit_collected", LedgerEntry.amount_fen > 0)
            .group_by(LedgerTransaction.sub_order_id)
        )
    }
    for sub_id in sorted(set(posted) | set(collected)):
        if posted.get(sub_id, 0) != collected.get(sub_id, 0):
            subject = f"collection of sub-order id {sub_id}"
            breaches.append(Breach("agent_credit", subject, collected.get(sub_id, 0), posted.get(sub_id, 0)))
    return breaches


CHECKS = (
    check_trial_balance,
    check_account_kinds,
    check_payments,
    check_refunds,
    check_payouts,
    check_seller_balances,
    check_cash_held,
    check_agent_credit,
    check_agent_commissions,
)


def find_breaches(session: Session) -> list[Breach]:
    """Every invariant of the ledger that does not hold now; [] when the books are right."""
    breaches: list[Breach] = []
    for check in CHECKS:
        breaches += check(session)
    return breaches


# --- the job ----------------------------------------------------------------------------------


def report(breaches: Iterable[Breach]) -> dict[str, Any]:
    """A job result: how many breaches, and the first MAX_LISTED of them."""
    found = list(breaches)
    return {"breaches": len(found), "listed": [asdict(b) for b in found[:MAX_LISTED]]}


def summary(breaches: list[Breach], *, shown: int = 5) -> str:
    lines = [str(b) for b in breaches[:shown]]
    more = len(breaches) - shown
    return "; ".join(lines) + (f"; … {more} more" if more > 0 else "")


def check_ledger(session: Session) -> dict[str, Any]:
    """The job: the breaches found, as a result; raises JobFailed (the run is recorded as failed,
    red for the admins) when there is any."""
    from services.jobs import JobFailed

    breaches = find_breaches(session)
    result = report(breaches)
    if breaches:
        raise JobFailed(f"{len(breaches)} ledger breaches: {summary(breaches)}", result)
    return result
