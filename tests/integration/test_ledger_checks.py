"""Issue 10, item 10: the ledger's invariants (services/ledger_checks.py) hold on books kept by the
services, and each breach planted directly in the database is reported; the check-ledger job
records the breaches and counts as failed, and the finance page shows them."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from sqlalchemy import select, update

from domain import (
    AccountKind,
    CashRemittance,
    JobRun,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentMethod,
    Payout,
    PayoutBatch,
    RemittanceStatus,
    Role,
    SubOrder,
)
from services import jobs, ledger, ledger_checks
from services.ledger import Line
from tests.factories import add_refund, add_seller, add_sub_order, add_user, paid_and_completed

# The tests below break the books on purpose: the suite's after-test check would report it again.
planted = pytest.mark.ledger_unchecked(reason="plants a breach on purpose")


@pytest.fixture()
def books(session, admin):  # type: ignore[no-untyped-def]
    """Two sellers' completed sub-orders, a refund, a paid batch, a refund after it: clean books."""

    class Books:
        pass

    b = Books()
    b.admin = admin
    b.buyer = add_user(session)
    b.seller = add_seller(session, "梅县金柚园")
    b.other = add_seller(session, "平远脐橙合作社")
    b.agent = add_user(session, Role.BUYER, name="村小二")
    b.sub = paid_and_completed(session, b.buyer, b.seller, items=10_000, commission=500, shipping=800)
    ledger.post_refund(session, add_refund(session, b.sub, 1_000))
    paid_and_completed(session, b.buyer, b.other, items=3_000)
    session.commit()
    b.batch = ledger.create_payout_batch(session, admin)
    ledger.mark_batch_paid(session, admin, b.batch.id)
    ledger.post_refund(session, add_refund(session, b.sub, 2_000))  # after the payout: carried
    session.commit()
    return b


def village_point_id(session) -> int:  # type: ignore[no-untyped-def]
    """Any node: the remittance rows these checks plant need one to point at."""
    from domain import Node, NodeKind
    from services import places
    from tests.factories import first_village

    node = session.scalar(select(Node.id).limit(1))
    if node is not None:
        return int(node)
    admin = add_user(session, Role.ADMIN)
    point = places.create_node(
        session,
        admin,
        NodeKind.VILLAGE_POINT,
        {"division_code": first_village(session, "441403").code, "name": "点"},
    )
    return point.id


def checks(session) -> set[str]:  # type: ignore[no-untyped-def]
    return {b.check for b in ledger_checks.find_breaches(session)}


class TestCleanBooks:
    def test_books_kept_by_the_services_have_no_breach(self, session, books):
        assert ledger.seller_carried(session, books.seller.id) > 0
        assert ledger_checks.find_breaches(session) == []

    def test_an_empty_ledger_has_no_breach(self, session):
        assert ledger_checks.find_breaches(session) == []


class TestPlantedBreaches:
    @planted
    def test_an_unbalanced_entry_inserted_directly_is_reported(self, session, books):
        plant_unbalanced_entry(session, books)
        found = ledger_checks.find_breaches(session)
        assert found[:2] == [
            ledger_checks.Breach("trial_balance", "ledger", 0, 7),
            ledger_checks.Breach("unbalanced_transaction", f"paid:{books.sub.id}", 0, 7),
        ]
        assert {b.check for b in found} == {"trial_balance", "unbalanced_transaction", "payment_received"}

    @planted
    def test_a_payments_refunded_total_that_is_not_its_refunds_is_reported(self, session, books):
        session.execute(
            update(Payment)
            .where(Payment.order_id == books.sub.order_id)
            .values(amount_refunded_fen=Payment.amount_refunded_fen + 1)
        )
        assert checks(session) == {"payment_refunded"}

    @planted
    def test_a_sub_orders_refunded_total_that_is_not_its_refunds_is_reported(self, session, books):
        session.execute(update(SubOrder).where(SubOrder.id == books.sub.id).values(refunded_fen=1))
        assert checks(session) == {"sub_order_refunded"}

    @planted
    def test_a_paid_order_the_ledger_never_saw_is_reported(self, session, books):
        add_sub_order(session, books.buyer, books.other, items=500)
        assert checks(session) == {"payment_received"}

    @planted
    def test_a_payout_or_batch_amount_edited_after_the_fact_is_reported(self, session, books):
        session.execute(update(PayoutBatch).where(PayoutBatch.id == books.batch.id).values(total_fen=1))
        assert checks(session) == {"batch_total"}
        payout = books.batch.payouts[0]
        session.execute(
            update(Payout)
            .where(Payout.id == payout.id)
            .values(amount_fen=Payout.amount_fen + 5, gross_fen=Payout.gross_fen + 5)
        )
        assert checks(session) == {"batch_total", "payout_gross", "payout_posting"}

    @planted
    def test_a_seller_payable_below_zero_without_a_carried_record_is_reported(self, session, books):
        # A refund's share taken from seller_payable after the payout, as the old code did.
        ledger.post(
            session,
            key="test:old-refund-after-payout",
            kind="test",
            lines=[
                Line.owned("seller_payable", books.other.id, 100),
                Line.fixed(ledger.CLEARING, -100),
            ],
        )
        found = ledger_checks.find_breaches(session)
        assert [(b.check, b.subject, b.found) for b in found] == [
            ("seller_payable", f"seller_payable:{books.other.id}", 100)
        ]

    @planted
    def test_a_carried_balance_netted_below_zero_is_reported(self, session, books):
        ledger.post(
            session,
            key="test:over-netted",
            kind="test",
            lines=[
                Line.owned("seller_carried", books.other.id, -50),
                Line.owned("seller_payable", books.other.id, 50),
            ],
        )
        assert "seller_carried" in checks(session)

    @planted
    def test_cash_held_by_an_agent_with_no_cash_orders_is_reported(self, session, books):
        ledger.post(
            session,
            key="test:cash",
            kind="test",
            lines=[Line.owned("cash_held", books.agent.id, 300), Line.fixed(ledger.CLEARING, -300)],
        )
        assert checks(session) == {"cash_held"}

    def test_cash_held_matches_the_cash_orders_collected_and_not_refunded(self, session, books):
        sub = add_sub_order(session, books.buyer, books.other, items=2_000, method=PaymentMethod.CASH)
        ledger.post_sub_order_paid(session, sub, via="cash", agent_id=books.agent.id)
        ledger.post_refund(session, add_refund(session, sub, 500))
        assert ledger.balance(session, ledger.cash_held_code(books.agent.id)) == 1_500
        assert ledger_checks.find_breaches(session) == []

    def test_cash_held_is_collected_less_the_counted_remittances(self, session, books, make_user):
        sub = add_sub_order(session, books.buyer, books.other, items=2_000, method=PaymentMethod.CASH)
        ledger.post_sub_order_paid(session, sub, via="cash", agent_id=books.agent.id)
        session.add(
            CashRemittance(
                agent_id=books.agent.id,
                node_id=village_point_id(session),
                county_code="441403",
                declared_fen=1_500,
                counted_fen=1_200,
                status=RemittanceStatus.CONFIRMED,
                idempotency_key="remit-check-0001",
            )
        )
        session.flush()
        remittance_id = session.scalar(select(CashRemittance.id))
        ledger.post_cash_remitted(
            session, remittance_id=remittance_id, agent_id=books.agent.id, counted_fen=1_200
        )
        assert ledger.balance(session, ledger.cash_held_code(books.agent.id)) == 800
        assert ledger_checks.find_breaches(session) == []

    @planted
    def test_cash_remitted_in_the_ledger_without_a_confirmed_remittance_is_reported(self, session, books):
        sub = add_sub_order(session, books.buyer, books.other, items=2_000, method=PaymentMethod.CASH)
        ledger.post_sub_order_paid(session, sub, via="cash", agent_id=books.agent.id)
        ledger.post_cash_remitted(session, remittance_id=999, agent_id=books.agent.id, counted_fen=500)
        assert checks(session) == {"cash_held"}

    @planted
    def test_an_account_of_the_wrong_kind_is_reported(self, session, books):
        session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.code == ledger.seller_carried_code(books.seller.id))
            .values(kind=AccountKind.LIABILITY)
        )
        assert checks(session) == {"account_kind"}


def scope(session):  # type: ignore[no-untyped-def]
    return lambda: nullcontext(session)


class TestTheJob:
    def test_clean_books_run_ok(self, session, books):
        outcome = jobs.run_job(scope(session), "check-ledger")
        assert (outcome.ran, outcome.ok, outcome.result) == (True, True, {"breaches": 0, "listed": []})

    @planted
    def test_a_breach_fails_the_run_and_is_recorded_for_the_admins(self, session, books, as_user):
        plant_unbalanced_entry(session, books)
        session.commit()
        outcome = jobs.run_job(scope(session), "check-ledger")
        assert outcome.ran and outcome.ok is False
        # The 7 fen went to the clearing account: the payment no longer matches its posting either.
        assert outcome.error.startswith("3 ledger breaches: trial_balance: ledger: expected 0, found 7")
        assert outcome.result["breaches"] == 3
        assert {b["check"] for b in outcome.result["listed"]} == {
            "trial_balance",
            "unbalanced_transaction",
            "payment_received",
        }
        run = session.get(JobRun, "check-ledger")
        assert run is not None and run.ok is False and run.failures == 1 and run.result["breaches"] == 3

        # Admins see it in red on the jobs page and, with each breach, on the finance page.
        client = as_user(books.admin)
        jobs_page = client.get("/admin/jobs").get_data(as_text=True)
        card = jobs_page.split('data-job="check-ledger"', 1)[1].split("</li>", 1)[0]
        assert 'class="tag off"' in card and "trial_balance" in card
        finance = client.get("/finance/").get_data(as_text=True)
        section = finance.split('<section class="card ledger-check"', 1)[1].split("</section>", 1)[0]
        assert 'data-ok="false"' in section
        assert section.count('class="breach"') == 3
        assert f"paid:{books.sub.id}" in section

    def test_the_finance_page_says_when_the_last_check_found_nothing(self, session, books, as_user):
        jobs.run_job(scope(session), "check-ledger")
        finance = as_user(books.admin).get("/finance/").get_data(as_text=True)
        section = finance.split('<section class="card ledger-check"', 1)[1].split("</section>", 1)[0]
        assert 'data-ok="true"' in section and 'class="breach"' not in section


def plant_unbalanced_entry(session, books) -> None:  # type: ignore[no-untyped-def]
    """7 fen more on the sub-order's payment posting, inserted directly: the books no longer balance."""
    txn = session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == f"paid:{books.sub.id}"))
    session.add(LedgerEntry(transaction_id=txn.id, account_id=txn.entries[0].account_id, amount_fen=7))
    session.flush()
