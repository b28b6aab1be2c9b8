"""Issue 10, item 2: a refund after the seller's payout is carried (seller_carried) and netted by
the next batches: a payout is what the newly payable sub-orders owe less what the seller
carries, never negative; what cannot be netted yet is carried further; a refund still pending
at the gateway holds its sub-order back; the bank's files still add up to the batch. Through
the real services and localstripe, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from domain import LedgerTransaction, PayoutBatch, Refund, RefundStatus, SubOrder, clock
from services import ledger, ledger_checks
from services.errors import ServiceError
from services.ledger import Parts, allocate_refund, charged_parts
from services.orders import manage
from services.payments.gateway import GatewayUnavailable
from services.payments.stripe import StripeGateway
from tests.conftest import count
from tests.integration.test_partial_refunds import FULFILMENT, advance, key, paid_sub, sub_of


def completed(session, market, gateway, admin, items=None) -> SubOrder:  # type: ignore[no-untyped-def]
    sub = paid_sub(session, market, gateway, items)
    for target in FULFILMENT:
        advance(session, gateway, market, admin, sub, target)
    return sub_of(session, sub)


def build(session, admin) -> PayoutBatch | None:  # type: ignore[no-untyped-def]
    return ledger.create_payout_batch(session, admin, now=clock.now() + timedelta(days=30))


def build_and_pay(session, admin) -> PayoutBatch:  # type: ignore[no-untyped-def]
    batch = build(session, admin)
    assert batch is not None
    return ledger.mark_batch_paid(session, admin, batch.id)


def refund_after_sale(session, market, gateway, admin, sub: SubOrder, amount: int) -> int:  # type: ignore[no-untyped-def]
    """The buyer asks, an admin gives back `amount`; returns the seller's share of it."""
    before = ledger.refunded_parts(session, sub_of(session, sub))
    manage.request_refund(session, gateway, market.buyer, sub.number, "有坏的")
    manage.staff_refund(session, gateway, admin, sub.number, amount, "退部分", key())
    return allocate_refund(charged_parts(sub), amount, already_refunded=before).seller


def csv_amounts(batch: PayoutBatch) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(ledger.export_batch_csv(batch).decode("utf-8-sig"))))
    assert rows[0][4:] == ["金额（元）", "子订单数", "应付（元）", "抵扣（元）"]
    return rows[1:]


def no_breaches(session) -> None:  # type: ignore[no-untyped-def]
    assert [str(b) for b in ledger_checks.find_breaches(session)] == []


class TestRefundAfterPayout:
    def test_the_sellers_share_is_carried_and_the_next_batch_nets_it(self, session, market, gateway, admin):
        first = completed(session, market, gateway, admin)
        seller = first.seller_id
        build_and_pay(session, admin)
        assert ledger.seller_payable(session, seller) == 0

        share = refund_after_sale(session, market, gateway, admin, first, 1000)
        assert share > 0
        # The platform paid the seller already: it owes nothing less than nothing; the seller carries it.
        assert ledger.seller_payable(session, seller) == 0
        assert ledger.seller_carried(session, seller) == share
        refund_txn = session.scalar(select(LedgerTransaction).where(LedgerTransaction.kind == "refund"))
        assert refund_txn is not None and refund_txn.details["after_payout_id"] == first.payout_id
        no_breaches(session)

        second = completed(session, market, gateway, admin)
        batch = build(session, admin)
        assert batch is not None
        (payout,) = batch.payouts
        owed = Parts.of(second).seller
        assert (payout.seller_id, payout.gross_fen, payout.netted_fen, payout.amount_fen) == (
            seller,
            owed,
            share,
            owed - share,
        )
        assert batch.total_fen == owed - share
        assert ledger.seller_carried(session, seller) == 0
        assert ledger.seller_payable(session, seller) == owed - share  # the open batch's transfer
        netting = session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.key == f"netting:{payout.id}")
        )
        assert netting is not None and netting.details == {
            "batch_id": batch.id,
            "gross_fen": owed,
            "netted_fen": share,
        }
        no_breaches(session)

        # The bank's files: the transfer, and beside it what was owed and what was netted.
        (row,) = csv_amounts(batch)
        assert [Decimal(row[4]), Decimal(row[6]), Decimal(row[7])] == [
            ledger.yuan(owed - share),
            ledger.yuan(owed),
            ledger.yuan(share),
        ]
        assert Decimal(row[4]) == ledger.yuan(batch.total_fen)
        ws = load_workbook(io.BytesIO(ledger.export_batch_xlsx(batch))).active
        total = list(ws.iter_rows(values_only=True))[-1]
        assert total[0] == "合计" and Decimal(str(total[4])) == ledger.yuan(batch.total_fen)

        ledger.mark_batch_paid(session, admin, batch.id)
        assert ledger.seller_payable(session, seller) == 0
        assert ledger.balance(session, ledger.CLEARING) >= 0
        no_breaches(session)

    def test_netting_larger_than_what_is_owed_pays_nothing_and_carries_the_rest(
        self, session, market, gateway, admin
    ):
        big = completed(session, market, gateway, admin, {"梅县金柚": 2})
        seller = big.seller_id
        build_and_pay(session, admin)
        share = refund_after_sale(session, market, gateway, admin, big, big.total_fen - 100)

        # Nothing newly payable: no batch, no row; the seller keeps carrying it.
        assert build(session, admin) is None
        assert ledger.seller_carried(session, seller) == share

        small = completed(session, market, gateway, admin, {"梅县蜜柚": 1})
        owed = Parts.of(small).seller
        assert 0 < owed < share
        batch = build(session, admin)
        assert batch is not None
        (payout,) = batch.payouts
        assert (payout.gross_fen, payout.netted_fen, payout.amount_fen) == (owed, owed, 0)
        assert batch.total_fen == 0
        assert sub_of(session, small).payout_id == payout.id  # claimed: never netted or paid twice
        assert ledger.seller_carried(session, seller) == share - owed
        assert csv_amounts(batch) == []  # nothing for the bank to transfer
        ledger.mark_batch_paid(session, admin, batch.id)
        assert count(session, LedgerTransaction, LedgerTransaction.key == f"payout:{payout.id}") == 0
        assert ledger.seller_payable(session, seller) == 0
        no_breaches(session)

        # The next sale nets the rest, and the seller is paid the remainder.
        last = completed(session, market, gateway, admin, {"梅县金柚": 2})
        owed_last = Parts.of(last).seller
        batch = build(session, admin)
        assert batch is not None
        (payout,) = batch.payouts
        carried = share - owed
        assert (payout.gross_fen, payout.netted_fen, payout.amount_fen) == (
            owed_last,
            carried,
            owed_last - carried,
        )
        assert ledger.seller_carried(session, seller) == 0
        ledger.mark_batch_paid(session, admin, batch.id)
        no_breaches(session)

    def test_a_refund_above_what_remains_after_earlier_refunds_is_refused_and_writes_nothing(
        self, session, market, gateway, admin
    ):
        sub = completed(session, market, gateway, admin)
        build_and_pay(session, admin)
        refund_after_sale(session, market, gateway, admin, sub, 1000)
        build(session, admin)  # nothing to net it against yet
        left = sub_of(session, sub).total_fen - 1000
        carried = ledger.seller_carried(session, sub.seller_id)
        refunds = count(session, Refund)
        with pytest.raises(ServiceError) as refused:
            manage.staff_refund(session, gateway, admin, sub.number, left + 1, "太多", key())
        assert refused.value.status == 422
        assert count(session, Refund) == refunds
        assert ledger.seller_carried(session, sub.seller_id) == carried
        # All that is left is still refundable, and carried in full.
        share = refund_after_sale(session, market, gateway, admin, sub, left)
        assert ledger.seller_carried(session, sub.seller_id) == carried + share
        assert ledger.seller_carried(session, sub.seller_id) == Parts.of(sub).seller
        no_breaches(session)


class TestPendingRefundAtBatchTime:
    def test_a_sub_order_with_a_refund_pending_at_the_gateway_waits_for_a_later_batch(
        self, session, market, gateway, admin
    ):
        sub = completed(session, market, gateway, admin)
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        refund_key = key()
        with pytest.raises(GatewayUnavailable):
            manage.staff_refund(session, down, admin, sub.number, 700, "压坏", refund_key)
        assert (
            session.scalar(select(Refund.status).where(Refund.sub_order_id == sub.id)) == RefundStatus.PENDING
        )
        # Paying it now could pay the seller money that is about to go back to the buyer.
        assert build(session, admin) is None
        assert sub_of(session, sub).payout_id is None

        # The gateway confirms (the same key sent again): the refund comes out before the payout.
        manage.staff_refund(session, gateway, admin, sub.number, 700, "压坏", refund_key)
        share = allocate_refund(charged_parts(sub), 700).seller
        batch = build(session, admin)
        assert batch is not None
        (payout,) = batch.payouts
        assert (payout.gross_fen, payout.netted_fen, payout.amount_fen) == (
            Parts.of(sub).seller - share,
            0,
            Parts.of(sub).seller - share,
        )
        assert ledger.seller_carried(session, sub.seller_id) == 0
        no_breaches(session)
