"""Paying again, or another way, on the same order (issue 10, item 5), against the real
localstripe (which keeps Idempotency-Keys, as Stripe does): a declined WeChat payment is paid by
card without ordering again, the buyer moves between card, Alipay and WeChat Pay on the order's
one PaymentIntent, the stock stays held meanwhile, the order is paid and posted once; a paid,
cancelled, expired or processing order refuses with a 409 and nothing written; a repeated request
is one attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import object_session

from domain import (
    AttemptStatus,
    GatewayCustomer,
    LedgerTransaction,
    Order,
    OrderStatus,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Product,
    ReservationStatus,
    StockReservation,
    clock,
)
from services.errors import Conflict, ValidationError
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import CardDeclined, GatewayUnavailable
from services.payments.stripe import StripeGateway
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there

M = PaymentMethod
A = AttemptStatus


def fresh(session, order: Order) -> Order:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(Order, order.id)
    assert found is not None
    return found


def attempts(session, order: Order) -> list[tuple[int, M, A]]:  # type: ignore[no-untyped-def]
    rows = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.payment_id == order.payment.id)
        .order_by(PaymentAttempt.number)
    ).all()
    return [(a.number, a.method, a.status) for a in rows]


def held(session, order: Order) -> set[ReservationStatus]:  # type: ignore[no-untyped-def]
    rows = session.scalars(select(StockReservation).where(StockReservation.order_id == order.id)).all()
    return {r.status for r in rows}


def reserved(session, product: Product) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(Product, product.id)
    assert found is not None
    return found.reserved


def paid_postings(session, order: Order) -> int:  # type: ignore[no-untyped-def]
    return count(
        session,
        LedgerTransaction,
        LedgerTransaction.order_id == order.id,
        LedgerTransaction.kind == "sub_order_paid",
    )


def intents_of(localstripe, order: Order) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every PaymentIntent the gateway holds for this order (by its metadata), among its buyer's
    (the session's localstripe holds every test's intents: more than one page of them)."""
    session = object_session(order)
    assert session is not None
    customer = session.get(GatewayCustomer, order.buyer_id)
    if customer is None:
        return []
    resp = requests.get(
        f"{localstripe.url}/v1/payment_intents",
        params={"limit": "100", "customer": customer.customer_id},
        headers={"Authorization": f"Bearer {localstripe.secret_key}"},
        timeout=10,
    )
    resp.raise_for_status()
    return [pi for pi in resp.json()["data"] if (pi.get("metadata") or {}).get("order") == order.number]


def row(session, order: Order) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """What a refused request must leave as it was."""
    order = fresh(session, order)
    p = order.payment
    return (
        p.status,
        p.method,
        p.intent_id,
        p.next_action,
        p.last_error,
        p.amount_fen,
        order.payment_method,
        tuple(s.status for s in order.sub_orders),
        tuple(attempts(session, order)),
    )


def wechat_order(session, market, gateway) -> Order:  # type: ignore[no-untyped-def]
    order = market.place({"英德红茶": 1, "梅县金柚": 2}, SETTINGS, method="wechat_pay")
    payments.ensure_intent(session, gateway, order)
    assert payments.pay_state(order) == "wechat"
    return order


class TestDeclinedWalletPaidByCard:
    def test_a_declined_wechat_payment_is_paid_by_card_on_the_same_order(
        self, session, market, gateway, localstripe
    ):
        order = wechat_order(session, market, gateway)
        intent_id = order.payment.intent_id
        tea, pomelo = market.product("英德红茶"), market.product("梅县金柚")
        assert (reserved(session, tea), reserved(session, pomelo)) == (1, 2)

        localstripe.wallet_failed(intent_id)  # WeChat refuses (or the buyer gives up)
        order = fresh(session, order)
        payments.refresh(session, gateway, order)
        assert order.payment.status == PaymentStatus.REQUIRES_PAYMENT_METHOD
        assert order.payment.last_error
        assert payments.pay_state(order) == "wallet_retry"
        assert payments.method_choices(order) == [M.CARD, M.WECHAT_PAY, M.ALIPAY]
        assert attempts(session, order) == [(1, M.WECHAT_PAY, A.FAILED)]
        # The goods are still the buyer's while the order is payable.
        assert held(session, order) == {ReservationStatus.HELD}
        assert (reserved(session, tea), reserved(session, pomelo)) == (1, 2)
        assert {s.status for s in order.sub_orders} == {OrderStatus.PENDING_PAYMENT}

        payment = payments.switch_method(session, gateway, order, "card", key="switch-to-card-1")
        assert payment.intent_id == intent_id  # the same PaymentIntent, not a new order or intent
        assert payment.method == M.CARD and fresh(session, order).payment_method == M.CARD
        assert payment.status == PaymentStatus.REQUIRES_PAYMENT_METHOD
        assert payments.pay_state(fresh(session, order)) == "card"
        assert held(session, order) == {ReservationStatus.HELD}
        intent = gateway.retrieve_payment_intent(intent_id)
        assert intent.payment_method_types == ("card",)
        assert intent.amount == order.total_fen  # the amount never changes

        order = market.pay(fresh(session, order), gateway)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment.amount_received_fen == order.total_fen
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        assert held(session, order) == {ReservationStatus.COMMITTED}
        assert paid_postings(session, order) == len(order.sub_orders)
        # The same news again (a webhook, the return page, reconciliation) changes nothing.
        payments.refresh(session, gateway, order)
        payments.apply_intent(session, gateway, gateway.retrieve_payment_intent(intent_id))
        assert paid_postings(session, order) == len(order.sub_orders)
        assert [pi["id"] for pi in intents_of(localstripe, order)] == [intent_id]
        assert attempts(session, order) == [(1, M.WECHAT_PAY, A.FAILED), (2, M.CARD, A.SUCCEEDED)]

    def test_a_failed_wechat_payment_is_tried_again_with_a_new_code(
        self, session, market, gateway, localstripe
    ):
        order = wechat_order(session, market, gateway)
        first = payments.wechat_qr_text(order.payment)
        localstripe.wallet_failed(order.payment.intent_id)
        payments.refresh(session, gateway, order)
        payment = payments.switch_method(session, gateway, order, "wechat_pay", key="wechat-again-1")
        assert payment.status == PaymentStatus.REQUIRES_ACTION
        assert payments.pay_state(fresh(session, order)) == "wechat"
        assert payments.wechat_qr_text(payment) and first  # a code to scan again
        localstripe.wallet_paid(payment.intent_id)
        payments.refresh(session, gateway, order)
        order = fresh(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert paid_postings(session, order) == len(order.sub_orders)
        assert attempts(session, order) == [(1, M.WECHAT_PAY, A.FAILED), (2, M.WECHAT_PAY, A.SUCCEEDED)]


class TestSwitchingMethods:
    def test_card_then_alipay_then_card_on_one_intent(self, session, market, gateway, localstripe):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        payments.ensure_intent(session, gateway, order)
        intent_id = order.payment.intent_id
        assert payments.method_choices(order) == [M.WECHAT_PAY, M.ALIPAY]

        payment = payments.switch_method(
            session, gateway, order, "alipay", key="to-alipay-01", return_url="https://shop.example/r"
        )
        assert payment.intent_id == intent_id and payment.method == M.ALIPAY
        assert payments.pay_state(fresh(session, order)) == "alipay"
        assert payments.alipay_url(payment)
        assert gateway.retrieve_payment_intent(intent_id).payment_method_types == ("alipay",)

        # While the Alipay page is out, the buyer picks card after all: the Alipay attempt is
        # over at the gateway, its page can no longer be paid.
        payment = payments.switch_method(session, gateway, order, "card", key="back-to-card-1")
        assert payment.method == M.CARD and payment.next_action is None
        assert payments.pay_state(fresh(session, order)) == "card"
        with pytest.raises(RuntimeError, match="400"):
            localstripe.wallet_paid(intent_id)

        order = market.pay(fresh(session, order), gateway)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment.amount_received_fen == order.total_fen
        assert paid_postings(session, order) == 1
        assert [pi["id"] for pi in intents_of(localstripe, order)] == [intent_id]
        assert attempts(session, order) == [
            (1, M.CARD, A.SUPERSEDED),
            (2, M.ALIPAY, A.SUPERSEDED),
            (3, M.CARD, A.SUCCEEDED),
        ]

    def test_a_declined_card_then_wechat_pay(self, session, market, gateway, localstripe):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        with pytest.raises(CardDeclined):
            payments.confirm_with(session, gateway, order, "pm_card_chargeDeclined")
        order = fresh(session, order)
        assert attempts(session, order) == [(1, M.CARD, A.FAILED)]
        payment = payments.switch_method(session, gateway, order, "wechat_pay", key="card-to-wechat")
        assert payments.pay_state(fresh(session, order)) == "wechat"
        localstripe.wallet_paid(payment.intent_id)
        payments.refresh(session, gateway, order)
        order = fresh(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment_method == M.WECHAT_PAY
        assert paid_postings(session, order) == 1
        assert attempts(session, order) == [(1, M.CARD, A.FAILED), (2, M.WECHAT_PAY, A.SUCCEEDED)]

    def test_paid_by_the_code_shown_just_before_the_switch_is_paid_once(
        self, session, market, gateway, localstripe
    ):
        """The buyer scanned and paid, then (before the page noticed) tapped "bank card": the
        payment is the order's, applied once, and the switch is refused."""
        order = wechat_order(session, market, gateway)
        localstripe.wallet_paid(order.payment.intent_id)
        assert fresh(session, order).payment.status == PaymentStatus.REQUIRES_ACTION  # not seen yet
        with pytest.raises(payments.PaymentClosed):
            payments.switch_method(session, gateway, order, "card", key="too-late-1")
        order = fresh(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment.method == M.WECHAT_PAY
        assert paid_postings(session, order) == len(order.sub_orders)
        assert attempts(session, order) == [(1, M.WECHAT_PAY, A.SUCCEEDED)]

    def test_an_order_whose_intent_was_never_made_is_switched_and_paid(self, session, market, gateway):
        # The gateway was down when the order was placed: no intent yet.
        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        assert order.payment.intent_id is None
        payment = payments.switch_method(session, gateway, order, "card", key="first-by-card")
        assert payment.intent_id is not None and payment.method == M.CARD
        assert gateway.retrieve_payment_intent(payment.intent_id).payment_method_types == ("card",)
        order = market.pay(fresh(session, order), gateway)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert attempts(session, order) == [(1, M.WECHAT_PAY, A.SUPERSEDED), (2, M.CARD, A.SUCCEEDED)]

    def test_a_switch_the_gateway_did_not_answer_is_finished_by_the_same_request_again(
        self, session, market, gateway, localstripe
    ):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        payments.ensure_intent(session, gateway, order)
        with (
            StripeGateway(CLOSED_PORT_URL, "sk_test_x", max_retries=0, timeout=2) as down,
            pytest.raises(GatewayUnavailable),
        ):
            payments.switch_method(session, down, order, "wechat_pay", key="while-down-1")
        order = fresh(session, order)
        assert order.payment.method == M.CARD  # nothing changed at the gateway, nor here
        assert attempts(session, order)[-1] == (2, M.WECHAT_PAY, A.STARTED)
        payment = payments.switch_method(session, gateway, order, "wechat_pay", key="while-down-1")
        assert payments.pay_state(fresh(session, order)) == "wechat"
        assert attempts(session, order) == [(1, M.CARD, A.SUPERSEDED), (2, M.WECHAT_PAY, A.REQUIRES_ACTION)]
        assert [pi["id"] for pi in intents_of(localstripe, order)] == [payment.intent_id]


class TestLateNews:
    def test_a_webhooks_picture_from_before_the_switch_changes_nothing(
        self, session, market, gateway, localstripe
    ):
        """Webhooks carry the intent as it was when the event happened, and arrive late: the
        wallet's failure (or its QR code) from before the buyer switched to card is not news."""
        order = wechat_order(session, market, gateway)
        shown = gateway.retrieve_payment_intent(order.payment.intent_id)  # requires_action, QR
        localstripe.wallet_failed(shown.id)
        failed = gateway.retrieve_payment_intent(shown.id)  # requires_payment_method, wallet error
        payments.refresh(session, gateway, order)
        payments.switch_method(session, gateway, fresh(session, order), "card", key="late-news-01")
        before = row(session, order)
        for old in (failed, shown):
            payments.apply_intent(session, gateway, old)
        assert row(session, order) == before
        assert payments.pay_state(fresh(session, order)) == "card"
        order = market.pay(fresh(session, order), gateway)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert paid_postings(session, order) == len(order.sub_orders)


class TestIdempotency:
    def test_a_double_submitted_switch_is_one_attempt_and_one_intent(
        self, session, market, gateway, localstripe
    ):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        first = payments.switch_method(session, gateway, order, "wechat_pay", key="double-tap-01")
        qr = payments.wechat_qr_text(first)
        again = payments.switch_method(
            session, gateway, fresh(session, order), "wechat_pay", key="double-tap-01"
        )
        assert again.intent_id == first.intent_id
        assert payments.wechat_qr_text(again) == qr
        # The card chosen at checkout never reached the gateway; WeChat Pay is one attempt.
        assert attempts(session, order) == [(1, M.CARD, A.SUPERSEDED), (2, M.WECHAT_PAY, A.REQUIRES_ACTION)]
        assert len(intents_of(localstripe, order)) == 1

    def test_the_same_key_for_another_method_is_refused(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        payments.switch_method(session, gateway, order, "alipay", key="one-key-0001")
        before = row(session, order)
        with pytest.raises(Conflict):
            payments.switch_method(session, gateway, fresh(session, order), "wechat_pay", key="one-key-0001")
        assert row(session, order) == before


class TestRefused:
    def test_a_paid_order_cannot_be_paid_again(self, session, market, gateway):
        order = market.pay(market.place({"梅县金柚": 1}, SETTINGS), gateway)
        before = row(session, order)
        with pytest.raises(payments.PaymentClosed) as caught:
            payments.switch_method(session, gateway, order, "wechat_pay", key="after-paid-1")
        assert caught.value.status == 409
        assert row(session, order) == before
        assert payments.method_choices(fresh(session, order)) == []

    def test_a_cancelled_order_cannot_be_paid(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        payments.ensure_intent(session, gateway, order)
        payments.cancel_order(session, gateway, order, actor=market.buyer)
        before = row(session, order)
        with pytest.raises(payments.PaymentClosed) as caught:
            payments.switch_method(session, gateway, fresh(session, order), "card", key="after-cancel")
        assert caught.value.status == 409
        assert row(session, order) == before

    def test_an_expired_order_cannot_be_paid(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        payments.ensure_intent(session, gateway, order)
        later = order.pay_by + timedelta(seconds=1)
        before = row(session, order)
        with pytest.raises(payments.PaymentClosed) as caught:
            payments.switch_method(
                session, gateway, fresh(session, order), "card", key="too-late-01", now=later
            )
        assert caught.value.status == 409
        assert row(session, order) == before
        assert payments.method_choices(fresh(session, order), now=later) == []

    def test_no_switch_while_a_payment_is_processing(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        payments.ensure_intent(session, gateway, order)
        # The gateway reported the payment on its way (a bank transfer, a slow wallet).
        order.payment.status = PaymentStatus.PROCESSING
        session.commit()
        before = row(session, order)
        with pytest.raises(payments.PaymentProcessing) as caught:
            payments.switch_method(session, gateway, order, "wechat_pay", key="processing-1")
        assert caught.value.status == 409
        assert row(session, order) == before
        assert payments.method_choices(fresh(session, order)) == []

    @pytest.mark.parametrize("method", ["paypal", "cash", "", None, 3])
    def test_an_unknown_method_is_a_validation_error(self, session, market, gateway, method):
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        before = row(session, order)
        with pytest.raises(ValidationError) as caught:
            payments.switch_method(session, gateway, order, method, key="bad-method-1")
        assert caught.value.status == 422 and "method" in caught.value.field_errors
        assert row(session, order) == before

    def test_a_pre_sale_is_paid_by_card_only(self, session, market, gateway):
        lychee = market.shop.add(
            "预售妃子笑荔枝", "lychee-longan", 3000, stock=100, presale=True,
            ships_from=clock.today() + timedelta(days=60),
        )  # fmt: skip
        order = market.place({lychee.id: 1}, SETTINGS, method="card")
        payments.ensure_intent(session, gateway, order)
        assert payments.method_choices(order) == []
        before = row(session, order)
        with pytest.raises(ValidationError):
            payments.switch_method(session, gateway, order, "wechat_pay", key="presale-wx-1")
        assert row(session, order) == before
