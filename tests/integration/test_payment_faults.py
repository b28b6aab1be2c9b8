"""Faults between the app and the gateway, made at the network edge by a proxy in front of a
localstripe that ignores Idempotency-Key (as a local server may): the gateway acts but its
answer never arrives, or it is down mid-checkout. One order, at most one charge, nothing lost."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from sqlalchemy import select

from devtools.localstripe import start_localstripe
from domain import Order, OrderStatus, PaymentStatus, clock
from services import ledger
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import GatewayUnavailable
from services.payments.stripe import StripeGateway
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


@pytest.fixture(scope="module")
def forgetful_stripe(tmp_path_factory):  # type: ignore[no-untyped-def]
    """localstripe without idempotency: a retried create makes a second PaymentIntent."""
    server = start_localstripe(state_dir=tmp_path_factory.mktemp("forgetful"), idempotency=False)
    yield server
    server.stop()


class LossyProxy:
    """Forwards to the gateway; for the next `drop` requests matching (method, path suffix) it
    forwards, lets the gateway act, then hangs up without answering."""

    def __init__(self, upstream: str) -> None:
        self.drops: list[tuple[str, str]] = []
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = requests.request(
                    self.command, upstream + self.path, data=body, headers=headers, timeout=10
                )
                proxy.seen.append((self.command, self.path))
                for i, (method, suffix) in enumerate(proxy.drops):
                    if method == self.command and self.path.split("?")[0].endswith(suffix):
                        del proxy.drops[i]
                        self.close_connection = True
                        return  # the gateway acted; its answer is lost on the way back
                payload = answer.content
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxy(forgetful_stripe):  # type: ignore[no-untyped-def]
    p = LossyProxy(forgetful_stripe.url)
    yield p
    p.close()


def intents_of(forgetful_stripe, customer: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = requests.get(
        f"{forgetful_stripe.url}/v1/payment_intents",
        params={"customer": customer, "limit": 100},
        headers={"Authorization": f"Bearer {forgetful_stripe.secret_key}"},
        timeout=10,
    )
    return list(response.json()["data"])


def customer_of(session, order: Order) -> str:  # type: ignore[no-untyped-def]
    from domain import GatewayCustomer

    return session.get(GatewayCustomer, order.buyer_id).customer_id


class TestLostResponses:
    @pytest.mark.parametrize("retries", [0, 2])
    def test_create_answer_lost_after_the_gateway_made_the_intent(
        self, session, market, proxy, forgetful_stripe, retries
    ):
        gateway = StripeGateway(proxy.url, forgetful_stripe.secret_key, max_retries=retries, backoff=0.01)
        order = market.place({"梅县金柚": 1}, SETTINGS)
        proxy.drops.append(("POST", "/v1/payment_intents"))
        payments.ensure_intent(session, gateway, order)
        payments.confirm_with(session, gateway, order, "pm_card_visa")
        payments.confirm_with(session, gateway, order, "pm_card_visa")  # the buyer taps again
        session.expire_all()
        assert count(session, Order) == 1
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        made = intents_of(forgetful_stripe, customer_of(session, order))
        # Without retries the lost intent is found again by its metadata. With them, this server
        # (which ignores Idempotency-Key) made a second one; the first is never confirmed, since
        # only the intent recorded on the payment ever is, so it can never take money.
        assert len(made) == (1 if retries == 0 else 2)
        orphans = ["requires_payment_method"] if retries else []
        assert sorted(i["status"] for i in made) == sorted(["succeeded", *orphans])
        assert sum(i.get("amount_received", 0) for i in made) == order.total_fen
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen

    @pytest.mark.parametrize("retries", [0, 2])
    def test_confirm_answer_lost_after_the_charge_shows_success_not_an_error(
        self, session, market, proxy, forgetful_stripe, retries
    ):
        gateway = StripeGateway(proxy.url, forgetful_stripe.secret_key, max_retries=retries, backoff=0.01)
        order = market.place({"梅县金柚": 1}, SETTINGS)
        payments.ensure_intent(session, gateway, order)
        proxy.drops.append(("POST", "/confirm"))
        payment = payments.confirm_with(session, gateway, order, "pm_card_visa")
        assert payment.status == PaymentStatus.SUCCEEDED
        made = intents_of(forgetful_stripe, customer_of(session, order))
        assert [i["status"] for i in made] == ["succeeded"]
        assert made[0]["amount_received"] == order.total_fen


class TestGatewayDown:
    def test_down_mid_checkout_the_order_stays_payable_and_pays_later(
        self, session, market, gateway, forgetful_stripe
    ):
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=1, backoff=0.01)
        order = market.place({"梅县金柚": 2}, SETTINGS)
        with pytest.raises(GatewayUnavailable) as caught:
            payments.ensure_intent(session, down, order)
        assert "unavailable" in str(caught.value.message).lower() or caught.value.status == 503
        session.expire_all()
        assert count(session, Order) == 1
        assert order.sub_orders[0].status == OrderStatus.PENDING_PAYMENT
        assert market.product("梅县金柚").reserved == 2
        payments.confirm_with(session, gateway, order, "pm_card_visa")
        session.expire_all()
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED


class TestRefundWhileGatewayDown:
    def _paid_sub(self, session, market, gateway):  # type: ignore[no-untyped-def]
        order = market.place({"英德红茶": 1}, SETTINGS)
        payments.confirm_with(session, gateway, order, "pm_card_visa")
        session.expire_all()
        return order, order.sub_orders[0]

    def test_the_same_request_again_sends_it_once_the_gateway_is_back(self, session, market, gateway, admin):
        from domain import Refund, RefundStatus
        from services.orders import manage

        order, sub = self._paid_sub(session, market, gateway)
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        key = f"refund-{order.number}"
        with pytest.raises(GatewayUnavailable):
            manage.staff_refund(session, down, admin, sub.number, None, "茶叶受潮", key)
        session.expire_all()
        refund = session.scalars(select(Refund)).one()
        assert (refund.status, refund.gateway_refund_id) == (RefundStatus.PENDING, None)
        assert sub.status == OrderStatus.REFUND_REQUESTED and sub.refunded_fen == 0
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        manage.staff_refund(
            session, gateway, admin, sub.number, None, "茶叶受潮", key
        )  # the staff taps again
        session.expire_all()
        assert count(session, Refund) == 1
        assert (sub.status, sub.refunded_fen) == (OrderStatus.REFUNDED, sub.total_fen)
        assert ledger.balance(session, "buyer_payments_clearing") == 0 and ledger.trial_balance(session) == 0

    def test_the_reconciliation_job_sends_a_stuck_refund(self, session, market, gateway, admin):
        from datetime import timedelta

        from services.orders import manage

        order, sub = self._paid_sub(session, market, gateway)
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        with pytest.raises(GatewayUnavailable):
            manage.staff_refund(session, down, admin, sub.number, 1000, "少了半斤", f"refund-{order.number}")
        report = payments.reconcile(session, gateway, now=clock.now() + timedelta(minutes=10))
        assert report.refunds_sent == 1
        session.expire_all()
        # A partial refund is money, not a state: the paid sub-order stays paid.
        assert (sub.status, sub.refunded_fen) == (OrderStatus.PAID, 1000)
        assert payments.reconcile(session, gateway, now=clock.now() + timedelta(minutes=10)).refunds_sent == 0
