"""Issue 10, item 3: a pre-sale authorisation captured for less. Any amount up to the
authorisation is taken, the ledger posts exactly what was taken (per sub-order), the rest of the
hold is released, and only what was taken can be refunded or paid out; bad amounts are refused
with nothing written. On SQLite and PostgreSQL, against the real localstripe.

The hand-in that captures is the intake at the point (services/intake.py, issue 11): the lychee
is sold by the 斤 at ¥30, so each gram weighed is 6 fen; 4 斤 ordered is 2000 g."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from domain import LedgerTransaction, Order, OrderStatus, PaymentStatus, SubOrder, clock
from services import ledger
from services.errors import ValidationError
from services.orders import manage
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.service import PaymentClosed
from tests.factories import receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)


@pytest.fixture()
def lychee(market):  # type: ignore[no-untyped-def]
    return market.shop.add(
        "预售妃子笑荔枝", "citrus", 3000, stock=100, presale=True, ships_from=date(2027, 5, 20)
    )


def fresh(session, order: Order) -> Order:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Order, order.id)  # type: ignore[return-value]


@pytest.fixture()
def authorised(session, market, gateway, lychee):  # type: ignore[no-untyped-def]
    order = market.place({lychee.id: 4}, SETTINGS)
    market.pay(order, gateway)
    order = fresh(session, order)
    assert order.payment.status == PaymentStatus.REQUIRES_CAPTURE
    manage.move(session, market.shop.meixian_farmer, order.sub_orders[0].number, S.ACCEPTED)
    return fresh(session, order)


def postings(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count(LedgerTransaction.id)))


class TestCaptureForLess:
    def test_hand_in_takes_the_weighed_amount_posts_exactly_it_and_releases_the_rest(
        self, session, market, gateway, admin, authorised
    ):
        sub = authorised.sub_orders[0]
        taken = sub.total_fen - 1800
        receive(session, gateway, sub, weights={"预售妃子笑荔枝": 1700})  # 300 g short: 1800 fen
        order = fresh(session, authorised)
        sub = order.sub_orders[0]
        assert sub.status == S.HANDED_IN
        assert (order.payment.status, order.payment.amount_received_fen) == (PaymentStatus.SUCCEEDED, taken)
        intent = gateway.retrieve_payment_intent(order.payment.intent_id)
        assert (intent.status, intent.amount_received) == ("succeeded", taken)
        assert sub.released_fen == 1800
        assert ledger.balance(session, "buyer_payments_clearing") == taken
        seller, commission, shipping = ledger.charged_parts(sub)
        assert seller + commission + shipping == taken
        assert ledger.seller_payable(session, sub.seller_id) == seller
        assert ledger.trial_balance(session) == 0
        # Only what was taken can be given back.
        assert payments.refundable_fen(session, sub) == taken
        with pytest.raises(ValidationError):
            payments.refund_sub_order(session, gateway, admin, sub.id, taken + 1, reason="too much")

    def test_the_whole_of_what_was_taken_refunded_ends_refunded(
        self, session, market, gateway, admin, authorised
    ):
        sub = authorised.sub_orders[0]
        taken = sub.total_fen - 1500
        receive(session, gateway, sub, weights={"预售妃子笑荔枝": 1750})
        manage.staff_refund(session, gateway, admin, sub.number, None, "全部退款", f"k-{uuid.uuid4().hex}")
        order = fresh(session, authorised)
        sub = order.sub_orders[0]
        assert (sub.status, sub.refunded_fen) == (S.REFUNDED, taken)
        assert order.payment.amount_refunded_fen == taken
        assert ledger.seller_payable(session, sub.seller_id) == 0
        assert ledger.balance(session, "buyer_payments_clearing") == 0
        assert ledger.trial_balance(session) == 0

    def test_completed_it_is_paid_out_the_net_of_what_was_taken(
        self, session, market, gateway, admin, authorised
    ):
        sub = authorised.sub_orders[0]
        taken = sub.total_fen - 996
        receive(session, gateway, sub, weights={"预售妃子笑荔枝": 1834})
        assert fresh(session, authorised).payment.amount_received_fen == taken
        for target in (S.IN_TRANSIT, S.READY_FOR_PICKUP):
            manage.move(session, admin, sub.number, target)
        manage.move(session, market.buyer, sub.number, S.COMPLETED)
        batch = ledger.create_payout_batch(session, admin, now=clock.now() + timedelta(days=30))
        sub = session.get(SubOrder, sub.id)
        assert batch is not None and [p.amount_fen for p in batch.payouts] == [
            ledger.charged_parts(sub).seller
        ]
        ledger.mark_batch_paid(session, admin, batch.id)
        assert ledger.balance(session, "buyer_payments_clearing") == taken - ledger.charged_parts(sub).seller
        assert ledger.trial_balance(session) == 0

    def test_capture_in_full_by_default_is_unchanged(self, session, market, gateway, admin, authorised):
        sub = authorised.sub_orders[0]
        receive(session, gateway, sub)  # weighed as ordered: taken in full
        order = fresh(session, authorised)
        assert order.payment.amount_received_fen == order.total_fen
        assert order.sub_orders[0].released_fen == 0
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen

    def test_capture_with_an_amount_for_the_whole_order(self, session, market, gateway, authorised):
        payments.capture(session, gateway, authorised, amount_fen=authorised.total_fen - 100)
        order = fresh(session, authorised)
        assert order.payment.amount_received_fen == order.total_fen - 100
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen - 100
        # Asked again (a lost answer, a double tap): nothing is taken or posted twice.
        before = postings(session)
        payments.capture(session, gateway, order, amount_fen=order.total_fen - 100)
        assert postings(session) == before
        assert (
            gateway.retrieve_payment_intent(order.payment.intent_id).amount_received == order.total_fen - 100
        )


class TestBadCaptures:
    @pytest.mark.parametrize("amount", [0, -1, True, "100", 1.5])
    def test_zero_negative_or_not_whole_fen_is_refused(self, session, gateway, authorised, amount):
        with pytest.raises(ValidationError):
            payments.capture(session, gateway, authorised, amount_fen=amount)
        assert fresh(session, authorised).payment.status == PaymentStatus.REQUIRES_CAPTURE
        assert postings(session) == 0

    def test_above_the_authorisation_is_refused(self, session, market, gateway, admin, authorised):
        with pytest.raises(ValidationError):
            payments.capture(session, gateway, authorised, amount_fen=authorised.total_fen + 1)
        sub = authorised.sub_orders[0]
        with pytest.raises(ValidationError):  # weighed over 3 × the order: refused at the intake
            receive(session, gateway, sub, weights={"预售妃子笑荔枝": 3 * 2000 + 1})
        with pytest.raises(ValidationError):
            payments.capture(session, gateway, authorised, amounts={sub.id + 999: 100})
        order = fresh(session, authorised)
        assert order.payment.status == PaymentStatus.REQUIRES_CAPTURE
        assert order.sub_orders[0].status == S.ACCEPTED
        assert gateway.retrieve_payment_intent(order.payment.intent_id).status == "requires_capture"
        assert postings(session) == 0

    def test_a_payment_that_is_not_authorised_cannot_be_captured_for_less(
        self, session, market, gateway, admin
    ):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        market.pay(order, gateway)
        order = fresh(session, order)
        with pytest.raises(PaymentClosed):
            payments.capture(session, gateway, order, amount_fen=100)
        sub = order.sub_orders[0]
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        # Weighed short, it is the difference that is refunded: nothing is captured again.
        received = receive(session, gateway, sub, weights={"梅县金柚": 400})
        assert received.settlement == "refund"
        order = fresh(session, order)
        assert order.payment.amount_received_fen == order.total_fen
        assert order.sub_orders[0].released_fen == 0

    def test_a_second_capture_for_a_different_amount_is_refused(self, session, gateway, authorised):
        payments.capture(session, gateway, authorised, amount_fen=authorised.total_fen - 100)
        before = postings(session)
        with pytest.raises(PaymentClosed):
            payments.capture(
                session, gateway, fresh(session, authorised), amount_fen=authorised.total_fen - 200
            )
        assert postings(session) == before


def test_the_buyer_sees_what_was_not_charged(session, market, gateway, admin, authorised, client, bearer):
    from tests.conftest import login

    sub = authorised.sub_orders[0]
    receive(session, gateway, sub, weights={"预售妃子笑荔枝": 1800})  # 200 g short: 1200 fen
    got = client.get(f"/api/v1/orders/{authorised.number}", headers=bearer(market.buyer)).get_json()
    assert got["sub_orders"][0]["released_fen"] == 1200
    login(client, market.buyer.phone)
    page = client.get(f"/orders/{authorised.number}").get_data(as_text=True)
    assert 'class="num released" data-fen="1200"' in page
