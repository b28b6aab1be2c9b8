"""POST /webhooks/stripe: real signed deliveries from localstripe are verified and applied once;
forged, stale, unsigned, malformed and replayed deliveries change nothing."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from domain import OrderStatus, PaymentStatus, WebhookEvent
from services import ledger
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.signature import sign_payload
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


class Inbox:
    """A tiny HTTP server standing where the app would: keeps every delivery as it arrived."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.deliveries.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, event_type: str, object_id: str, timeout: float = 15) -> tuple[bytes, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, headers in list(self.deliveries):
                event = json.loads(body)
                if event["type"] == event_type and event["data"]["object"]["id"] == object_id:
                    return body, headers
            time.sleep(0.1)
        raise AssertionError(f"no {event_type} for {object_id} arrived")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def inbox(localstripe, _app):  # type: ignore[no-untyped-def]
    box = Inbox()
    webhook_id = localstripe.register_webhook(box.url, _app.config["STRIPE_WEBHOOK_SECRET"])
    yield box
    localstripe.unregister_webhook(webhook_id)
    box.close()


def deliver(client, body: bytes, signature: str | None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=body, headers=headers)


def paid_intent_event(session, market, gateway, secret):  # type: ignore[no-untyped-def]
    """An order whose card was charged at the gateway, and a signed event saying so."""
    order = market.place({"梅县金柚": 1}, SETTINGS)
    payment = payments.ensure_intent(session, gateway, order)
    intent = gateway.confirm_payment_intent(
        payment.intent_id, payment_method="pm_card_visa", idempotency_key=f"c-{order.number}"
    )
    event = {"id": f"evt_{order.number}", "type": "payment_intent.succeeded", "data": {"object": intent.raw}}
    body = json.dumps(event).encode()
    return order, body


class TestRealDeliveries:
    def test_a_delivery_from_localstripe_pays_the_order_once(self, session, client, market, gateway, inbox):
        order = market.place({"梅县金柚": 2, "英德红茶": 1}, SETTINGS)
        payment = payments.ensure_intent(session, gateway, order)
        gateway.confirm_payment_intent(
            payment.intent_id, payment_method="pm_card_visa", idempotency_key=f"c-{order.number}"
        )
        body, headers = inbox.wait_for("payment_intent.succeeded", payment.intent_id)
        assert "v1=" in headers["Stripe-Signature"]
        response = deliver(client, body, headers["Stripe-Signature"])
        assert response.status_code == 200, response.get_data(as_text=True)
        session.expire_all()
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        # The gateway retries a delivery it thinks failed: the second one is acknowledged, ignored.
        again = deliver(client, body, headers["Stripe-Signature"])
        assert again.status_code == 200 and again.get_json()["duplicate"] is True
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        assert count(session, WebhookEvent) == 1

    def test_a_wallet_payment_finishes_by_webhook(self, session, client, market, gateway, inbox, localstripe):
        order = market.place({"英德红茶": 1}, SETTINGS, method="wechat_pay")
        payment = payments.ensure_intent(session, gateway, order)
        assert payment.status == PaymentStatus.REQUIRES_ACTION
        assert payment.next_action["type"] == "wechat_pay_display_qr_code"
        assert payment.next_action["wechat_pay_display_qr_code"]["data"]
        localstripe.wallet_paid(payment.intent_id)  # the buyer scans and pays in WeChat
        body, headers = inbox.wait_for("payment_intent.succeeded", payment.intent_id)
        assert deliver(client, body, headers["Stripe-Signature"]).status_code == 200
        session.expire_all()
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        assert order.sub_orders[0].status == OrderStatus.PAID


class TestRefusedDeliveries:
    def test_forged_signature(self, session, client, market, gateway, _app):
        order, body = paid_intent_event(session, market, gateway, _app.config["STRIPE_WEBHOOK_SECRET"])
        forged = sign_payload(body, "whsec_not_ours", int(time.time()))
        response = deliver(client, body, forged)
        assert response.status_code == 400
        assert response.get_json()["code"] == "invalid_signature"
        assert count(session, WebhookEvent) == 0
        assert payments.payment_of(session, order).status != PaymentStatus.SUCCEEDED

    def test_stale_signature(self, session, client, market, gateway, _app):
        _order, body = paid_intent_event(session, market, gateway, _app.config["STRIPE_WEBHOOK_SECRET"])
        stale = sign_payload(body, _app.config["STRIPE_WEBHOOK_SECRET"], int(time.time()) - 3600)
        assert deliver(client, body, stale).status_code == 400
        assert count(session, WebhookEvent) == 0

    def test_unsigned(self, session, client, market, gateway, _app):
        _order, body = paid_intent_event(session, market, gateway, _app.config["STRIPE_WEBHOOK_SECRET"])
        response = deliver(client, body, None)
        assert response.status_code == 400
        assert response.get_json()["message"]
        assert count(session, WebhookEvent) == 0

    def test_tampered_body_with_a_good_signature_of_another(self, session, client, market, gateway, _app):
        _order, body = paid_intent_event(session, market, gateway, _app.config["STRIPE_WEBHOOK_SECRET"])
        signature = sign_payload(body, _app.config["STRIPE_WEBHOOK_SECRET"], int(time.time()))
        tampered = body.replace(b'"payment_intent.succeeded"', b'"payment_intent.canceled"')
        assert deliver(client, tampered, signature).status_code == 400
        assert count(session, WebhookEvent) == 0

    @pytest.mark.parametrize(
        "body", [b"{not json", b"[1, 2]", b'{"id": "evt_1"}', b'{"id": 5, "type": "x", "data": {}}']
    )
    def test_malformed_events(self, session, client, _app, body):
        signature = sign_payload(body, _app.config["STRIPE_WEBHOOK_SECRET"], int(time.time()))
        response = deliver(client, body, signature)
        assert response.status_code == 400
        assert response.is_json and response.get_json()["message"]
        assert count(session, WebhookEvent) == 0

    def test_a_replayed_event_id_is_applied_once(self, session, client, market, gateway, _app):
        secret = _app.config["STRIPE_WEBHOOK_SECRET"]
        order, body = paid_intent_event(session, market, gateway, secret)
        for _ in range(3):
            response = deliver(client, body, sign_payload(body, secret, int(time.time())))
            assert response.status_code == 200
        assert count(session, WebhookEvent) == 1
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
