"""The ledger and seller payouts on a real database: postings balance and are idempotent by key,
balances are the sums of entries, refunds take back from seller, commission and shipping in
proportion, payout batches pay exactly what the ledger owes for completed sub-orders past the
holding period (once, even when two admins build a batch at the same moment), and the bank's
files carry exact yuan."""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain import (
    AccountKind,
    Division,
    DivisionLevel,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OrderStatus,
    PaymentMethod,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Refund,
    Role,
    SubOrder,
    User,
)
from marketplace.db import make_engine
from services import ledger, ledger_checks
from services.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from services.ledger import LedgerError, Line, RefundTooLarge, UnbalancedTransaction
from tests.conftest import NOW, backend, count, migrate
from tests.factories import (
    DIVISION,
    LONG_AGO,
    RECENTLY,
    add_refund,
    add_seller,
    add_sub_order,
    add_user,
    paid_and_completed,
)


def unbalanced_transactions(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(LedgerEntry.transaction_id)
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount_fen) != 0)
        )
    )


def entry_sums(session: Session) -> dict[str, int]:
    """Each account's entries added up in Python, to check the service's SQL against."""
    sums: dict[str, int] = defaultdict(int)
    for code, amount in session.execute(
        select(LedgerAccount.code, LedgerEntry.amount_fen).join(LedgerEntry.account)
    ):
        sums[code] += amount
    return sums


def amounts(txn: LedgerTransaction) -> dict[str, int]:
    """A transaction's net amount per account code."""
    net: dict[str, int] = defaultdict(int)
    for entry in txn.entries:
        net[entry.account.code] += entry.amount_fen
    return dict(net)


@pytest.fixture()
def people(session: Session, admin):  # type: ignore[no-untyped-def]
    class People:
        pass

    p = People()
    p.admin = admin
    p.buyer = add_user(session, Role.BUYER)
    p.seller = add_seller(session, "梅县金柚园")
    p.other_seller = add_seller(session, "平远脐橙合作社")
    p.agent = add_user(session, Role.BUYER, name="村小二")
    session.commit()
    return p


# --- posting ----------------------------------------------------------------------------------


class TestPost:
    def test_posting_the_same_key_twice_returns_the_first_posting_and_writes_nothing(self, session, people):
        lines = [Line.fixed(ledger.CLEARING, 500), Line.owned("seller_payable", people.seller.id, -500)]
        first = ledger.post(session, key="test:1", kind="test", lines=lines)
        again = ledger.post(session, key="test:1", kind="test", lines=lines)
        assert again.id == first.id
        assert count(session, LedgerTransaction, LedgerTransaction.key == "test:1") == 1
        assert count(session, LedgerEntry, LedgerEntry.transaction_id == first.id) == 2
        assert ledger.balance(session, ledger.CLEARING) == 500

    def test_an_unbalanced_posting_is_refused_and_writes_nothing(self, session, people):
        with pytest.raises(UnbalancedTransaction):
            ledger.post(
                session,
                key="test:unbalanced",
                kind="test",
                lines=[
                    Line.fixed(ledger.CLEARING, 500),
                    Line.owned("seller_payable", people.seller.id, -499),
                ],
            )
        assert count(session, LedgerTransaction) == 0
        assert count(session, LedgerAccount) == 0

    def test_posting_flushes_but_leaves_the_commit_to_the_caller(self, session, people):
        ledger.post(
            session,
            key="test:uncommitted",
            kind="test",
            lines=[Line.fixed(ledger.CLEARING, 1), Line.fixed(ledger.LOGISTICS_FEES, -1)],
        )
        assert count(session, LedgerTransaction, LedgerTransaction.key == "test:uncommitted") == 1
        session.rollback()
        assert count(session, LedgerTransaction, LedgerTransaction.key == "test:uncommitted") == 0

    def test_a_key_posted_by_another_process_meanwhile_is_returned_and_the_callers_work_survives(
        self, session, people, monkeypatch
    ):
        lines = [Line.fixed(ledger.CLEARING, 300), Line.fixed(ledger.LOGISTICS_FEES, -300)]
        other = ledger.post(session, key="test:race", kind="test", lines=lines)
        pending = add_user(session, name="caller's own work")
        # As if the look-up ran before the other process's commit: the insert hits the unique key.
        real_lookup = ledger._transaction
        calls = iter([None])
        monkeypatch.setattr(ledger, "_transaction", lambda s, key: next(calls, None) or real_lookup(s, key))
        again = ledger.post(session, key="test:race", kind="test", lines=lines)
        assert again.id == other.id
        assert count(session, LedgerTransaction, LedgerTransaction.key == "test:race") == 1
        assert session.get(User, pending.id) is not None

    def test_accounts_are_made_once_with_their_kind_and_owner(self, session, people):
        sub_orders = [add_sub_order(session, people.buyer, people.seller, items=1000) for _ in range(3)]
        for sub_order in sub_orders:
            ledger.post_sub_order_paid(session, sub_order)
        accounts = session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()
        assert [a.code for a in accounts] == sorted(
            ["buyer_payments_clearing", f"seller_payable:{people.seller.id}"]
        )
        payable = next(a for a in accounts if a.code.startswith("seller_payable"))
        assert payable.kind == AccountKind.LIABILITY and payable.owner_id == people.seller.id

    def test_an_account_code_used_with_another_kind_is_refused(self, session, people):
        with pytest.raises(UnbalancedTransaction):
            ledger.post(
                session,
                key="test:kind",
                kind="test",
                lines=[("platform_commission", AccountKind.ASSET, None, 5), Line.fixed(ledger.CLEARING, -5)],
            )


class TestSubOrderPaid:
    def test_the_buyers_money_is_owed_to_the_seller_less_commission_plus_shipping(self, session, people):
        sub_order = add_sub_order(
            session, people.buyer, people.seller, items=10_000, commission=500, shipping=800
        )
        txn = ledger.post_sub_order_paid(session, sub_order)
        assert txn.key == f"paid:{sub_order.id}" and txn.sub_order_id == sub_order.id
        assert txn.order_id == sub_order.order_id
        assert amounts(txn) == {
            "buyer_payments_clearing": 10_800,
            f"seller_payable:{people.seller.id}": -9_500,
            "platform_commission": -500,
            "logistics_fees": -800,
        }
        assert ledger.seller_payable(session, people.seller.id) == 9_500

    def test_no_commission_and_no_shipping_make_no_zero_entries(self, session, people):
        txn = ledger.post_sub_order_paid(
            session, add_sub_order(session, people.buyer, people.seller, items=2_000)
        )
        assert len(txn.entries) == 2 and all(e.amount_fen != 0 for e in txn.entries)

    def test_cash_collected_by_an_agent_is_held_by_that_agent(self, session, people):
        sub_order = add_sub_order(
            session, people.buyer, people.seller, items=3_000, shipping=200, method=PaymentMethod.CASH
        )
        txn = ledger.post_sub_order_paid(session, sub_order, via="cash", agent_id=people.agent.id)
        assert amounts(txn)[f"cash_held:{people.agent.id}"] == 3_200
        assert ledger.balance(session, ledger.CLEARING) == 0

    def test_a_repeated_webhook_posts_the_payment_once(self, session, people):
        sub_order = add_sub_order(session, people.buyer, people.seller, items=1_000)
        for _ in range(3):
            ledger.post_sub_order_paid(session, sub_order)
        assert ledger.balance(session, ledger.CLEARING) == 1_000
        assert count(session, LedgerTransaction) == 1


class TestRefund:
    def test_a_partial_refund_takes_back_from_seller_commission_and_shipping_in_proportion(
        self, session, people
    ):
        sub_order = add_sub_order(
            session, people.buyer, people.seller, items=9_000, commission=900, shipping=1_000
        )
        ledger.post_sub_order_paid(session, sub_order)
        txn = ledger.post_refund(session, add_refund(session, sub_order, 5_000))
        assert txn.key.startswith("refund:") and txn.sub_order_id == sub_order.id
        net = amounts(txn)
        assert net == {
            "refunds": 0,  # passed through: +5000 then −5000
            "buyer_payments_clearing": -5_000,
            f"seller_payable:{people.seller.id}": 4_050,
            "platform_commission": 450,
            "logistics_fees": 500,
        }
        assert [e.amount_fen for e in txn.entries if e.account.code == "refunds"] == [5_000, -5_000]
        assert ledger.seller_payable(session, people.seller.id) == 8_100 - 4_050
        assert ledger.balance(session, ledger.CLEARING) == 10_000 - 5_000
        assert unbalanced_transactions(session) == []

    def test_partial_refunds_up_to_the_total_give_everything_back(self, session, people):
        sub_order = add_sub_order(
            session, people.buyer, people.seller, items=1_001, commission=77, shipping=333
        )
        ledger.post_sub_order_paid(session, sub_order)
        for amount in (1, 400, 3, 500, 430):
            ledger.post_refund(session, add_refund(session, sub_order, amount))
        assert sub_order.refunded_fen == sub_order.total_fen
        assert ledger.seller_payable(session, people.seller.id) == 0
        assert ledger.balance(session, "platform_commission") == 0
        assert ledger.balance(session, "logistics_fees") == 0
        assert ledger.balance(session, ledger.CLEARING) == 0
        assert ledger.trial_balance(session) == 0

    def test_more_than_what_is_left_is_refused_and_writes_nothing(self, session, people):
        sub_order = add_sub_order(session, people.buyer, people.seller, items=1_000)
        ledger.post_sub_order_paid(session, sub_order)
        ledger.post_refund(session, add_refund(session, sub_order, 600))
        before = count(session, LedgerTransaction)
        refund = Refund(
            payment_id=sub_order.order.payment.id,
            sub_order_id=sub_order.id,
            amount_fen=401,
            idempotency_key="x",
        )
        session.add(refund)
        session.flush()
        with pytest.raises(RefundTooLarge):
            ledger.post_refund(session, refund)
        assert count(session, LedgerTransaction) == before

    def test_a_refund_posted_twice_is_posted_once(self, session, people):
        sub_order = add_sub_order(session, people.buyer, people.seller, items=1_000)
        ledger.post_sub_order_paid(session, sub_order)
        refund = add_refund(session, sub_order, 1_000)  # all of it: a second posting would not fit
        first = ledger.post_refund(session, refund)
        assert ledger.post_refund(session, refund).id == first.id
        assert ledger.balance(session, ledger.CLEARING) == 0

    @pytest.mark.ledger_unchecked(reason="a paid order whose payment the ledger never saw, on purpose")
    def test_a_refund_before_the_payment_is_posted_is_refused(self, session, people):
        sub_order = add_sub_order(session, people.buyer, people.seller, items=1_000)
        with pytest.raises(LedgerError):
            ledger.post_refund(session, add_refund(session, sub_order, 100))
        assert count(session, LedgerTransaction) == 0

    def test_a_cash_order_is_refunded_out_of_the_agents_cash(self, session, people):
        sub_order = add_sub_order(
            session, people.buyer, people.seller, items=2_000, method=PaymentMethod.CASH
        )
        ledger.post_sub_order_paid(session, sub_order, via="cash", agent_id=people.agent.id)
        ledger.post_refund(session, add_refund(session, sub_order, 500))
        assert ledger.balance(session, f"cash_held:{people.agent.id}") == 1_500
        assert ledger.balance(session, ledger.CLEARING) == 0


class TestBalances:
    def test_balances_are_the_sums_of_entries_and_the_trial_balance_is_zero(self, session, people):
        a = paid_and_completed(
            session, people.buyer, people.seller, items=5_000, commission=250, shipping=600
        )
        paid_and_completed(session, people.buyer, people.other_seller, items=7_000, commission=700)
        ledger.post_refund(session, add_refund(session, a, 1_234))
        assert ledger.balances(session) == entry_sums(session)
        assert ledger.trial_balance(session) == 0
        assert ledger.balance(session, "no_such_account") == 0

    def test_the_overview_lists_every_account_platform_ones_first_with_owner_names(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=5_000, commission=250, shipping=600)
        overview = ledger.finance_overview(session, people.admin)
        codes = [a.code for a in overview.accounts]
        assert codes[:3] == ["buyer_payments_clearing", "platform_commission", "logistics_fees"]
        seller_row = next(a for a in overview.accounts if a.family == "seller_payable")
        assert seller_row.owner_name == "梅县金柚园" and seller_row.balance_fen == -4_750
        assert overview.trial_balance_fen == 0

    def test_only_admins_see_the_books(self, session, people):
        with pytest.raises(Forbidden):
            ledger.finance_overview(session, people.seller)
        with pytest.raises(Unauthorized):
            ledger.finance_overview(session, None)


@contextmanager
def isolated_session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end, like the `session` fixture, for one
    hypothesis example (a function-scoped fixture would be shared by all examples)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


SUB_ORDER = st.tuples(
    st.integers(min_value=1, max_value=200_000),  # items
    st.integers(min_value=0, max_value=100),  # commission, in % of items
    st.integers(min_value=0, max_value=2_000),  # shipping
    st.integers(min_value=0, max_value=1),  # which seller
    st.booleans(),  # paid in cash to the agent
)
EVENT = st.one_of(
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(0, 10**6)),
    st.tuples(st.just("complete"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("batch"), st.just(0), st.just(0)),
    st.tuples(st.just("pay"), st.just(0), st.just(0)),
)


class TestRandomHistories:
    @settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=st.lists(SUB_ORDER, min_size=1, max_size=4), events=st.lists(EVENT, max_size=10))
    def test_any_history_keeps_the_books_balanced_and_each_balance_as_expected(self, engine, specs, events):
        with isolated_session(engine) as session:
            self.run_history(session, specs, events)

    def run_history(self, session: Session, specs: list[tuple], events: list[tuple]) -> None:  # type: ignore[type-arg]
        admin = add_user(session, Role.ADMIN)
        buyer, agent = add_user(session), add_user(session)
        sellers = [add_seller(session, "甲"), add_seller(session)]
        expected: dict[str, int] = defaultdict(int)  # debit-positive, built from the rules
        subs: list[SubOrder] = []
        taken: dict[int, list[int]] = {}  # per sub-order: seller, commission, shipping refunded
        for items, pct, shipping, which, cash in specs:
            commission = items * pct // 100
            sub = add_sub_order(
                session, buyer, sellers[which], items=items, commission=commission, shipping=shipping,
                method=PaymentMethod.CASH if cash else PaymentMethod.CARD,
            )  # fmt: skip
            source = f"cash_held:{agent.id}" if cash else ledger.CLEARING
            ledger.post_sub_order_paid(session, sub, via="cash" if cash else "gateway", agent_id=agent.id)
            expected[source] += items + shipping
            expected[f"seller_payable:{sub.seller_id}"] -= items - commission
            expected["platform_commission"] -= commission
            expected["logistics_fees"] -= shipping
            subs.append(sub)
            taken[sub.id] = [0, 0, 0]
        session.commit()
        open_batches: list[PayoutBatch] = []
        for kind, index, arg in events:
            sub = subs[index % len(subs)]
            if kind == "refund":
                left = sub.total_fen - sub.refunded_fen
                if left == 0:
                    continue
                amount = 1 + arg % left
                txn = ledger.post_refund(session, add_refund(session, sub, amount))
                split = [
                    txn.details["seller_fen"],
                    txn.details["commission_fen"],
                    txn.details["shipping_fen"],
                ]
                assert sum(split) == amount and min(split) >= 0
                taken[sub.id] = [t + s for t, s in zip(taken[sub.id], split, strict=True)]
                parts = [sub.items_fen - sub.commission_fen, sub.commission_fen, sub.shipping_fen]
                assert all(t <= p for t, p in zip(taken[sub.id], parts, strict=True))
                source = (
                    ledger.CLEARING
                    if sub.order.payment_method == PaymentMethod.CARD
                    else f"cash_held:{agent.id}"
                )
                expected[source] -= amount
                # Once the sub-order is in a batch, the seller's share is carried, to be netted.
                family = "seller_carried" if sub.payout_id is not None else "seller_payable"
                expected[f"{family}:{sub.seller_id}"] += split[0]
                expected["platform_commission"] += split[1]
                expected["logistics_fees"] += split[2]
                session.commit()
            elif kind == "complete" and sub.completed_at is None:
                sub.status = OrderStatus.COMPLETED
                sub.completed_at = LONG_AGO if arg else RECENTLY
                session.commit()
            elif kind == "batch":
                unbatched = {s.id for s in subs if s.payout_id is None}
                batch = ledger.create_payout_batch(session, admin, now=NOW)
                if batch is None:
                    continue
                open_batches.append(batch)
                for payout in batch.payouts:
                    included = [s for s in subs if s.payout_id == payout.id]
                    assert {s.id for s in included} <= unbatched
                    assert all(s.completed_at is not None and s.completed_at <= LONG_AGO for s in included)
                    owed = sum(s.items_fen - s.commission_fen - taken[s.id][0] for s in included)
                    carried = expected[f"seller_carried:{payout.seller_id}"]
                    assert payout.gross_fen == owed > 0
                    assert payout.netted_fen == min(owed, carried)
                    assert payout.amount_fen == owed - payout.netted_fen >= 0
                    expected[f"seller_payable:{payout.seller_id}"] += payout.netted_fen
                    expected[f"seller_carried:{payout.seller_id}"] -= payout.netted_fen

                # Every eligible sub-order of a seller with something owed went in. Paid in cash
                # to the agent, never: no cash is remitted in these histories, so it is all still
                # in the agent's hands (ledger.cash_in_agents_hands).
                eligible = {
                    o.id
                    for o in subs
                    if o.order.payment_method == PaymentMethod.CARD
                    and o.id in unbatched
                    and o.completed_at == LONG_AGO
                }
                for s in subs:
                    if s.id in unbatched and s.order.payment_method != PaymentMethod.CARD:
                        assert s.payout_id is None
                    elif s.id in eligible:
                        owed = sum(
                            o.items_fen - o.commission_fen - taken[o.id][0]
                            for o in subs
                            if o.seller_id == s.seller_id and o.id in eligible
                        )
                        assert (s.payout_id is not None) == (owed > 0)
            elif kind == "pay":
                for batch in open_batches:
                    ledger.mark_batch_paid(session, admin, batch.id)
                    for payout in batch.payouts:
                        expected[f"seller_payable:{payout.seller_id}"] += payout.amount_fen
                        expected[ledger.CLEARING] -= payout.amount_fen
                open_batches = []

        assert unbalanced_transactions(session) == []
        assert ledger.trial_balance(session) == 0
        books = ledger.balances(session)
        assert books == entry_sums(session)
        assert {code: books.get(code, 0) for code in expected} == dict(expected)
        assert books.get("refunds", 0) == 0
        for seller in sellers:
            assert ledger.seller_payable(session, seller.id) == -expected[f"seller_payable:{seller.id}"] >= 0
            assert ledger.seller_carried(session, seller.id) == expected[f"seller_carried:{seller.id}"] >= 0
        assert ledger_checks.find_breaches(session) == []


# --- payouts ----------------------------------------------------------------------------------


class TestPayoutBatch:
    def test_only_completed_sub_orders_past_the_holding_period_are_paid(self, session, people):
        old = paid_and_completed(session, people.buyer, people.seller, items=10_000, commission=1_000)
        old_too = paid_and_completed(session, people.buyer, people.seller, items=2_000, shipping=500)
        recent = paid_and_completed(session, people.buyer, people.seller, items=4_000, at=RECENTLY)
        not_done = add_sub_order(
            session, people.buyer, people.seller, items=8_000, status=OrderStatus.ACCEPTED
        )
        ledger.post_sub_order_paid(session, not_done)
        disputed = add_sub_order(
            session,
            people.buyer,
            people.seller,
            items=800,
            status=OrderStatus.REFUND_REQUESTED,
            completed_at=LONG_AGO,
        )
        ledger.post_sub_order_paid(session, disputed)
        session.commit()

        batch = ledger.create_payout_batch(session, people.admin, now=NOW, holding_days=7)
        assert batch is not None
        assert batch.status == PayoutBatchStatus.OPEN and batch.created_by_id == people.admin.id
        assert batch.cutoff == NOW - timedelta(days=7)
        [payout] = batch.payouts
        assert payout.seller_id == people.seller.id
        assert payout.amount_fen == 9_000 + 2_000 == batch.total_fen
        assert payout.sub_order_count == 2
        session.expire_all()
        assert {old.payout_id, old_too.payout_id} == {payout.id}
        assert recent.payout_id is None and not_done.payout_id is None and disputed.payout_id is None

    def test_a_shorter_holding_period_takes_recent_sub_orders_too(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=4_000, at=RECENTLY)
        session.commit()
        assert ledger.create_payout_batch(session, people.admin, now=NOW, holding_days=7) is None
        batch = ledger.create_payout_batch(session, people.admin, now=NOW, holding_days=1)
        assert batch is not None and batch.total_fen == 4_000

    def test_the_amount_is_what_the_seller_is_owed_net_of_refunds(self, session, people):
        a = paid_and_completed(
            session, people.buyer, people.seller, items=9_000, commission=900, shipping=1_000
        )
        ledger.post_refund(session, add_refund(session, a, 5_000))
        # A partly refunded sub-order stays completed, its refund beside it (issue 10, item 1).
        b = paid_and_completed(session, people.buyer, people.other_seller, items=3_000, commission=300)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        by_seller = {p.seller_id: p.amount_fen for p in batch.payouts}
        assert by_seller == {people.seller.id: 8_100 - 4_050, people.other_seller.id: 2_700}
        assert by_seller[people.seller.id] == ledger.seller_payable(session, people.seller.id)
        assert batch.total_fen == sum(by_seller.values())
        assert b.payout_id is not None

    def test_sub_orders_already_in_a_batch_are_not_paid_again(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=1_000)
        session.commit()
        first = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert first is not None
        assert ledger.create_payout_batch(session, people.admin, now=NOW) is None
        later = paid_and_completed(session, people.buyer, people.seller, items=700)
        session.commit()
        second = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert second is not None and second.total_fen == 700
        session.expire_all()
        assert later.payout_id == second.payouts[0].id
        assert count(session, PayoutBatch) == 2

    def test_a_seller_owed_nothing_is_left_out(self, session, people):
        gone = paid_and_completed(session, people.buyer, people.seller, items=1_000, shipping=100)
        ledger.post_refund(session, add_refund(session, gone, 1_100))
        paid_and_completed(session, people.buyer, people.other_seller, items=500)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        assert [p.seller_id for p in batch.payouts] == [people.other_seller.id]
        session.expire_all()
        assert gone.payout_id is None

    def test_nothing_to_pay_makes_no_batch(self, session, people):
        assert ledger.create_payout_batch(session, people.admin, now=NOW) is None
        assert count(session, PayoutBatch) == 0

    @pytest.mark.parametrize("days", [-1, 366, "7", 7.0, True, None])
    def test_a_bad_holding_period_is_refused_and_writes_nothing(self, session, people, days):
        paid_and_completed(session, people.buyer, people.seller, items=1_000)
        session.commit()
        with pytest.raises(ValidationError) as info:
            ledger.create_payout_batch(session, people.admin, now=NOW, holding_days=days)
        assert "holding_days" in info.value.field_errors
        assert count(session, PayoutBatch) == 0 and count(session, Payout) == 0

    def test_only_admins_build_batches(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=1_000)
        session.commit()
        with pytest.raises(Forbidden):
            ledger.create_payout_batch(session, people.seller, now=NOW)
        with pytest.raises(Unauthorized):
            ledger.create_payout_batch(session, None, now=NOW)
        for call in (ledger.list_batches, ledger.finance_overview):
            with pytest.raises(Forbidden):
                call(session, people.buyer)
        assert count(session, PayoutBatch) == 0


class TestMarkPaid:
    def test_marking_paid_posts_each_payout_and_the_seller_is_owed_nothing(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=10_000, commission=1_000, shipping=300)
        paid_and_completed(session, people.buyer, people.other_seller, items=4_000)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        assert ledger.seller_payable(session, people.seller.id) == 9_000  # a batch alone moves no money
        paid = ledger.mark_batch_paid(session, people.admin, batch.id)
        assert paid.status == PayoutBatchStatus.PAID
        assert paid.paid_by_id == people.admin.id and paid.paid_at is not None
        assert ledger.seller_payable(session, people.seller.id) == 0
        assert ledger.seller_payable(session, people.other_seller.id) == 0
        assert ledger.balance(session, ledger.CLEARING) == 10_300 + 4_000 - 13_000
        posted = session.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == "payout")).all()
        assert sorted(t.payout_id for t in posted) == sorted(p.id for p in batch.payouts)
        assert ledger.trial_balance(session) == 0

    def test_marking_paid_twice_changes_nothing(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=1_000)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        first = ledger.mark_batch_paid(session, people.admin, batch.id)
        paid_at, transactions = first.paid_at, count(session, LedgerTransaction)
        other_admin = add_user(session, Role.ADMIN)
        again = ledger.mark_batch_paid(session, other_admin, batch.id)
        assert again.paid_at == paid_at and again.paid_by_id == people.admin.id
        assert count(session, LedgerTransaction) == transactions
        assert ledger.seller_payable(session, people.seller.id) == 0

    def test_only_admins_mark_paid_and_an_unknown_batch_is_not_found(self, session, people):
        paid_and_completed(session, people.buyer, people.seller, items=1_000)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        with pytest.raises(Forbidden):
            ledger.mark_batch_paid(session, people.seller, batch.id)
        assert ledger.get_batch(session, people.admin, batch.id).status == PayoutBatchStatus.OPEN
        with pytest.raises(NotFound):
            ledger.mark_batch_paid(session, people.admin, batch.id + 1000)
        with pytest.raises(NotFound):
            ledger.get_batch(session, people.admin, batch.id + 1000)


# The bank reads the first six columns, as it always did; the last two show the netting.
HEADER = (
    "批次号",
    "卖家编号",
    "店铺名",
    "收款人手机号",
    "金额（元）",
    "子订单数",
    "应付（元）",
    "抵扣（元）",
)


class TestExports:
    @pytest.fixture()
    def batch(self, session, people) -> PayoutBatch:  # type: ignore[no-untyped-def]
        paid_and_completed(session, people.buyer, people.seller, items=12_345, commission=1_000, shipping=99)
        paid_and_completed(session, people.buyer, people.seller, items=5)
        paid_and_completed(session, people.buyer, people.other_seller, items=100_000, commission=3_000)
        self.plain = add_seller(session)  # no seller profile: the user's name stands in
        paid_and_completed(session, people.buyer, self.plain, items=10)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        return batch

    def expected_rows(self, people, batch) -> list[list[str]]:  # type: ignore[no-untyped-def]
        # Nothing was netted: what each seller is owed (gross) is what the bank pays them.
        return [
            [
                str(batch.id),
                str(people.seller.id),
                "梅县金柚园",
                people.seller.phone,
                "113.50",
                "2",
                "113.50",
                "0.00",
            ],
            [
                str(batch.id),
                str(people.other_seller.id),
                "平远脐橙合作社",
                people.other_seller.phone,
                "970.00",
                "1",
                "970.00",
                "0.00",
            ],
            [str(batch.id), str(self.plain.id), "农户", self.plain.phone, "0.10", "1", "0.10", "0.00"],
        ]

    def test_the_csv_opens_in_excel_with_chinese_headers_and_exact_yuan(self, people, batch):
        data = ledger.export_batch_csv(batch)
        assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert rows[0] == list(HEADER)
        assert sorted(rows[1:]) == sorted(self.expected_rows(people, batch))
        assert sum(Decimal(r[4]) for r in rows[1:]) == ledger.yuan(batch.total_fen) == Decimal("1083.60")

    def test_the_workbook_has_numbers_with_two_decimals_and_a_total_row(self, people, batch):
        wb = load_workbook(io.BytesIO(ledger.export_batch_xlsx(batch)))
        ws = wb.active
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == list(HEADER)
        body = rows[1:-1]
        assert sorted(
            [str(c) for c in r[:4]]
            + [
                f"{Decimal(str(r[4])):.2f}",
                str(r[5]),
                f"{Decimal(str(r[6])):.2f}",
                f"{Decimal(str(r[7])):.2f}",
            ]
            for r in body
        ) == sorted(self.expected_rows(people, batch))
        assert all(isinstance(r[4], (int, float)) for r in body)  # numbers, not text
        for column in (5, 7, 8):
            assert all(ws.cell(row=i, column=column).number_format == "0.00" for i in range(2, len(rows) + 1))
        assert all(isinstance(r[3], str) for r in body)  # phones stay text
        total = rows[-1]
        assert total[0] == "合计"
        assert Decimal(str(total[4])) == Decimal("1083.60") and total[5] == 4

    def test_a_shop_name_that_looks_like_a_formula_stays_text(self, session, people):
        sly = add_seller(session, '=HYPERLINK("http://x")')
        paid_and_completed(session, people.buyer, sly, items=100)
        session.commit()
        batch = ledger.create_payout_batch(session, people.admin, now=NOW)
        assert batch is not None
        rows = list(csv.reader(io.StringIO(ledger.export_batch_csv(batch).decode("utf-8-sig"))))
        assert rows[1][2] == '\'=HYPERLINK("http://x")'
        ws = load_workbook(io.BytesIO(ledger.export_batch_xlsx(batch))).active
        assert ws.cell(row=2, column=3).data_type == "s"
        assert ws.cell(row=2, column=3).value == '=HYPERLINK("http://x")'


@pytest.mark.skipif(backend() != "postgresql", reason="row locks between two connections: PostgreSQL")
class TestConcurrentBatches:
    def test_two_admins_building_a_batch_at_once_pay_each_sub_order_once(self, new_database):
        url = new_database("ledger")
        migrate(url)
        engine = make_engine(url)
        try:
            with Session(engine, expire_on_commit=False) as session:
                session.add(Division(code=DIVISION, name="广东省", level=DivisionLevel.PROVINCE))
                admins = [add_user(session, Role.ADMIN), add_user(session, Role.ADMIN)]
                buyer = add_user(session)
                sellers = [add_seller(session, f"卖家{i}") for i in range(5)]
                expected = 0
                for i in range(200):
                    sub = paid_and_completed(session, buyer, sellers[i % 5], items=100 + i, commission=i % 7)
                    expected += sub.items_fen - sub.commission_fen
                session.commit()

            barrier = threading.Barrier(2)
            results: list[Any] = [None, None]

            def build(i: int) -> None:
                with Session(engine, expire_on_commit=False) as session:
                    admin = session.get(User, admins[i].id)
                    barrier.wait()
                    try:
                        batch = ledger.create_payout_batch(session, admin, now=NOW)
                        results[i] = batch.id if batch is not None else None
                    except Exception as exc:  # a Conflict is an acceptable answer; double pay is not
                        results[i] = exc

            threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not any(isinstance(r, Exception) and not isinstance(r, Conflict) for r in results), results
            assert sum(isinstance(r, int) for r in results) == 1, results

            with Session(engine) as session:
                assert session.scalar(select(func.sum(Payout.amount_fen))) == expected
                assert (
                    session.scalar(
                        select(func.count()).select_from(SubOrder).where(SubOrder.payout_id.is_(None))
                    )
                    == 0
                )
                per_payout = dict(
                    session.execute(
                        select(SubOrder.payout_id, func.count()).group_by(SubOrder.payout_id)
                    ).all()
                )
                assert (
                    sum(p.sub_order_count for p in session.scalars(select(Payout)))
                    == sum(per_payout.values())
                    == 200
                )
        finally:
            engine.dispose()
