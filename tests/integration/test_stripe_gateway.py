"""StripeGateway against a real localstripe (devtools/localstripe.py): cards, manual capture,
refunds, declines, 3-D Secure, wallets, lookups, idempotency and signed webhooks."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from devtools.localstripe import LocalStripe, free_port, start_localstripe
from services.payments.gateway import CardDeclined, GatewayUnavailable, Intent, InvalidPaymentRequest
from services.payments.signature import InvalidSignature, verify_signature
from services.payments.stripe import StripeGateway

VISA = "4242424242424242"
DECLINED = "4000000000000002"
THREE_D_SECURE = "4000002760003184"


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture()
def gateway(localstripe: LocalStripe) -> Iterator[StripeGateway]:
    with StripeGateway(localstripe.url, localstripe.secret_key, backoff=0.01) as gw:
        yield gw


def card_intent(gw: StripeGateway, amount: int = 12_800, **overrides: Any) -> Intent:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": "cny",
        "payment_method_types": ["card"],
        "metadata": {"order": key()},
        "idempotency_key": key(),
        "description": "荔枝 5 斤",
    }
    params.update(overrides)
    return gw.create_payment_intent(**params)


def wechat_intent(gw: StripeGateway, amount: int = 3_650, **overrides: Any) -> Intent:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": "cny",
        "payment_method_types": ["wechat_pay"],
        "payment_method_options": {"wechat_pay": {"client": "web"}},
        "metadata": {"order": key()},
        "idempotency_key": key(),
        "confirm": True,
    }
    params.update(overrides)
    return gw.create_payment_intent(**params)


class TestCustomers:
    def test_creates_a_customer_with_name_phone_and_metadata(self, gateway, localstripe):
        customer = gateway.create_customer(
            name="陈大妈", phone="13800138000", metadata={"user_id": "42"}, idempotency_key=key()
        )
        assert customer.startswith("cus_")
        stored = requests.get(
            f"{localstripe.url}/v1/customers/{customer}",
            headers={"Authorization": f"Bearer {localstripe.secret_key}"},
            timeout=5,
        ).json()
        assert (stored["name"], stored["phone"], stored["metadata"]) == (
            "陈大妈",
            "13800138000",
            {"user_id": "42"},
        )


class TestCardPayments:
    def test_create_and_confirm_with_a_test_card_succeeds(self, gateway):
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        assert intent.status == "succeeded"
        assert (intent.amount, intent.amount_received, intent.currency) == (12_800, 12_800, "cny")
        assert intent.payment_method_types == ("card",)
        assert intent.raw["description"] == "荔枝 5 斤"

    def test_create_then_confirm_with_a_payment_method(self, gateway, localstripe):
        intent = card_intent(gateway, capture_method="automatic")
        assert intent.status == "requires_payment_method"
        assert intent.client_secret and intent.client_secret.startswith(intent.id)
        pm = localstripe.create_card_payment_method(VISA)
        confirmed = gateway.confirm_payment_intent(intent.id, idempotency_key=key(), payment_method=pm)
        assert confirmed.status == "succeeded"
        assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"

    def test_manual_capture_of_the_full_amount(self, gateway):
        intent = card_intent(gateway, capture_method="manual", payment_method="pm_card_visa")
        assert intent.status == "requires_confirmation"
        authorized = gateway.confirm_payment_intent(intent.id, idempotency_key=key())
        assert authorized.status == "requires_capture"
        assert (authorized.amount_capturable, authorized.amount_received) == (12_800, 0)
        captured = gateway.capture_payment_intent(intent.id, idempotency_key=key())
        assert captured.status == "succeeded"
        assert (captured.amount_capturable, captured.amount_received) == (0, 12_800)

    def test_manual_capture_of_part_of_the_amount(self, gateway):
        intent = card_intent(gateway, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        assert intent.status == "requires_capture"
        captured = gateway.capture_payment_intent(intent.id, idempotency_key=key(), amount_to_capture=9_000)
        assert captured.status == "succeeded"
        assert captured.amount_received == 9_000

    def test_capturing_an_intent_that_is_not_authorized_is_refused(self, gateway):
        intent = card_intent(gateway)
        with pytest.raises(InvalidPaymentRequest) as caught:
            gateway.capture_payment_intent(intent.id, idempotency_key=key())
        assert "requires_payment_method" in (caught.value.gateway_message or "")

    def test_cancel_an_unpaid_intent(self, gateway):
        intent = card_intent(gateway)
        assert gateway.cancel_payment_intent(intent.id, idempotency_key=key()).status == "canceled"

    def test_cancel_releases_an_authorization(self, gateway):
        intent = card_intent(gateway, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        assert gateway.cancel_payment_intent(intent.id, idempotency_key=key()).status == "canceled"

    def test_cancel_a_paid_intent_is_refused(self, gateway):
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(InvalidPaymentRequest):
            gateway.cancel_payment_intent(intent.id, idempotency_key=key())

    def test_full_and_partial_refunds(self, gateway):
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        partial = gateway.create_refund(
            payment_intent=intent.id, amount=2_800, idempotency_key=key(), metadata={"refund_key": "r1"}
        )
        assert (partial.status, partial.amount, partial.payment_intent) == ("succeeded", 2_800, intent.id)
        assert partial.id.startswith("re_") and partial.metadata == {"refund_key": "r1"}
        rest = gateway.create_refund(
            payment_intent=intent.id, amount=10_000, idempotency_key=key(), metadata={}
        )
        assert (rest.status, rest.amount) == ("succeeded", 10_000)

    def test_refunding_an_unpaid_intent_is_refused(self, gateway):
        intent = card_intent(gateway)
        with pytest.raises(InvalidPaymentRequest):
            gateway.create_refund(payment_intent=intent.id, amount=100, idempotency_key=key(), metadata={})


class TestDeclinesAndAuthentication:
    def test_a_declined_card_raises_card_declined(self, gateway, localstripe):
        pm = localstripe.create_card_payment_method(DECLINED)
        with pytest.raises(CardDeclined) as caught:
            card_intent(gateway, payment_method=pm, confirm=True)
        error = caught.value
        assert (error.status, error.code, error.decline_code) == (402, "card_declined", "generic_decline")
        assert error.gateway_message == "Your card was declined."
        assert error.payment_intent_id is not None
        intent = gateway.retrieve_payment_intent(error.payment_intent_id)
        assert intent.status == "requires_payment_method"
        assert intent.last_error == "Your card was declined."

    def test_a_declined_confirmation_can_be_retried_with_another_card(self, gateway):
        intent = card_intent(gateway, payment_method="pm_card_chargeDeclinedInsufficientFunds")
        with pytest.raises(CardDeclined) as caught:
            gateway.confirm_payment_intent(intent.id, idempotency_key=key())
        assert caught.value.decline_code == "insufficient_funds"
        retried = gateway.confirm_payment_intent(
            intent.id, idempotency_key=key(), payment_method="pm_card_visa"
        )
        assert retried.status == "succeeded"

    def test_a_3d_secure_card_requires_action_until_authenticated(self, gateway, localstripe):
        pm = localstripe.create_card_payment_method(THREE_D_SECURE)
        intent = card_intent(gateway, payment_method=pm, confirm=True, return_url="https://shop.example/paid")
        assert intent.status == "requires_action"
        assert intent.next_action is not None and intent.next_action["type"] == "use_stripe_sdk"
        assert intent.client_secret is not None
        localstripe.authenticate(intent.id, intent.client_secret)
        assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"


class TestWallets:
    def test_wechat_pay_shows_a_qr_code_then_succeeds_when_the_buyer_pays(self, gateway, localstripe):
        intent = wechat_intent(gateway)
        assert intent.status == "requires_action"
        assert intent.payment_method_types == ("wechat_pay",)
        assert intent.next_action is not None
        assert intent.next_action["type"] == "wechat_pay_display_qr_code"
        qr = intent.next_action["wechat_pay_display_qr_code"]
        assert qr["data"] == f"weixin://wxpay/bizpayurl?pr={intent.id}"
        assert qr["image_data_url"].startswith("data:image/png;base64,")
        for url in (qr["image_url_png"], qr["image_url_svg"], qr["hosted_instructions_url"]):
            assert requests.get(url, timeout=5).status_code == 200

        localstripe.wallet_paid(intent.id)
        paid = gateway.retrieve_payment_intent(intent.id)
        assert (paid.status, paid.amount_received, paid.next_action) == ("succeeded", 3_650, None)
        refund = gateway.create_refund(
            payment_intent=intent.id, amount=650, idempotency_key=key(), metadata={}
        )
        assert refund.status == "succeeded"

    def test_a_failed_wechat_payment_can_be_tried_again(self, gateway, localstripe):
        intent = wechat_intent(gateway)
        localstripe.wallet_failed(intent.id)
        failed = gateway.retrieve_payment_intent(intent.id)
        assert failed.status == "requires_payment_method"
        assert failed.last_error
        again = gateway.confirm_payment_intent(
            intent.id, idempotency_key=key(), payment_method_data={"type": "wechat_pay"}
        )
        assert again.status == "requires_action"
        localstripe.wallet_paid(intent.id)
        assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"

    def test_alipay_redirects_and_keeps_the_return_url(self, gateway, localstripe):
        intent = gateway.create_payment_intent(
            amount=990,
            currency="cny",
            payment_method_types=["alipay"],
            metadata={"order": key()},
            idempotency_key=key(),
            confirm=True,
            return_url="https://shop.example/orders/1",
        )
        assert intent.status == "requires_action"
        assert intent.next_action is not None and intent.next_action["type"] == "alipay_handle_redirect"
        redirect = intent.next_action["alipay_handle_redirect"]
        assert redirect["return_url"] == "https://shop.example/orders/1"
        assert redirect["url"].startswith(localstripe.url)
        localstripe.wallet_paid(intent.id)
        assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"

    def test_a_wallet_intent_that_is_not_waiting_cannot_be_paid(self, gateway, localstripe):
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(RuntimeError):
            localstripe.wallet_paid(intent.id)

    def test_return_url_without_confirm_is_refused_as_on_stripe(self, gateway):
        with pytest.raises(InvalidPaymentRequest):
            card_intent(gateway, return_url="https://shop.example/x")


class TestFindPaymentIntent:
    def test_finds_the_customers_intent_by_metadata(self, gateway):
        customer = gateway.create_customer(
            name="买家", phone="13900000000", metadata={}, idempotency_key=key()
        )
        other = gateway.create_customer(name="别人", phone="13900000001", metadata={}, idempotency_key=key())
        payment_key = key()
        card_intent(gateway, customer=customer, metadata={"payment": key()})
        mine = card_intent(gateway, customer=customer, metadata={"payment": payment_key})
        card_intent(gateway, customer=other, metadata={"payment": payment_key})
        found = gateway.find_payment_intent(
            customer=customer, metadata_key="payment", metadata_value=payment_key
        )
        assert found is not None and found.id == mine.id and found.customer == customer
        missing = gateway.find_payment_intent(customer=customer, metadata_key="payment", metadata_value=key())
        assert missing is None

    def test_finds_without_a_customer(self, gateway):
        payment_key = key()
        mine = card_intent(gateway, metadata={"payment": payment_key})
        found = gateway.find_payment_intent(customer=None, metadata_key="payment", metadata_value=payment_key)
        assert found is not None and found.id == mine.id

    def test_pages_through_more_than_one_page(self, gateway):
        customer = gateway.create_customer(
            name="老顾客", phone="13900000002", metadata={}, idempotency_key=key()
        )
        for _ in range(101):
            card_intent(gateway, customer=customer, amount=100)
        last = card_intent(gateway, customer=customer, metadata={"payment": "last"})
        found = gateway.find_payment_intent(customer=customer, metadata_key="payment", metadata_value="last")
        assert found is not None and found.id == last.id


class TestIdempotency:
    def test_the_same_key_returns_the_same_intent(self, gateway):
        same = key()
        first = card_intent(gateway, idempotency_key=same, metadata={"order": "O-1"})
        second = card_intent(gateway, idempotency_key=same, metadata={"order": "O-1"})
        assert first.id == second.id

    def test_the_same_key_with_other_parameters_is_refused(self, gateway):
        same = key()
        card_intent(gateway, idempotency_key=same, amount=100)
        with pytest.raises(InvalidPaymentRequest):
            card_intent(gateway, idempotency_key=same, amount=200)

    def test_plain_localstripe_ignores_idempotency_keys(self, tmp_path):
        with (
            start_localstripe(state_dir=tmp_path, idempotency=False) as plain,
            StripeGateway(plain.url, plain.secret_key) as gw,
        ):
            same = key()
            assert card_intent(gw, idempotency_key=same).id != card_intent(gw, idempotency_key=same).id


class WebhookReceiver:
    """A tiny HTTP endpoint on 127.0.0.1 that queues what it receives."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.put((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, event_type: str, object_id: str, timeout: float = 15) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                headers, body = self.received.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            event = json.loads(body)
            if event["type"] == event_type and event["data"]["object"].get("id") == object_id:
                return headers, body
        raise AssertionError(f"no {event_type} for {object_id} within {timeout}s")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def webhooks(localstripe: LocalStripe) -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver()
    secret = f"whsec_{uuid.uuid4().hex}"
    webhook_id = localstripe.register_webhook(
        receiver.url,
        secret,
        events=[
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "refund.created",
            "charge.refunded",
        ],
    )
    yield receiver, secret
    localstripe.unregister_webhook(webhook_id)
    receiver.stop()


class TestWebhooks:
    def test_a_card_payment_delivers_a_signed_event_that_verifies(self, gateway, webhooks):
        receiver, secret = webhooks
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        headers, body = receiver.wait_for("payment_intent.succeeded", intent.id)
        assert headers["Content-Type"].startswith("application/json")
        timestamp = verify_signature(body, headers["Stripe-Signature"], secret)
        assert abs(timestamp - time.time()) < 60
        event = json.loads(body)
        assert event["id"].startswith("evt_")
        assert event["data"]["object"]["status"] == "succeeded"
        with pytest.raises(InvalidSignature):
            verify_signature(body, headers["Stripe-Signature"], "whsec_wrong")

    def test_the_gateway_parses_a_real_delivery_with_its_secret(self, gateway, localstripe, webhooks):
        receiver, secret = webhooks
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        headers, body = receiver.wait_for("payment_intent.succeeded", intent.id)
        with StripeGateway(localstripe.url, localstripe.secret_key, webhook_secret=secret) as ours:
            event = ours.parse_webhook(body, headers["Stripe-Signature"])
        assert event["type"] == "payment_intent.succeeded"
        assert event["data"]["object"]["id"] == intent.id
        with (
            StripeGateway(localstripe.url, localstripe.secret_key, webhook_secret="whsec_wrong") as other,
            pytest.raises(InvalidSignature),
        ):
            other.parse_webhook(body, headers["Stripe-Signature"])

    def test_wallet_outcomes_fire_the_card_events(self, gateway, localstripe, webhooks):
        receiver, secret = webhooks
        paid = wechat_intent(gateway)
        localstripe.wallet_paid(paid.id)
        headers, body = receiver.wait_for("payment_intent.succeeded", paid.id)
        verify_signature(body, headers["Stripe-Signature"], secret)

        failed = wechat_intent(gateway)
        localstripe.wallet_failed(failed.id)
        headers, body = receiver.wait_for("payment_intent.payment_failed", failed.id)
        verify_signature(body, headers["Stripe-Signature"], secret)
        assert (
            json.loads(body)["data"]["object"]["last_payment_error"]["code"]
            == "payment_method_provider_decline"
        )

    def test_a_refund_fires_refund_created(self, gateway, webhooks):
        receiver, secret = webhooks
        intent = card_intent(gateway, payment_method="pm_card_visa", confirm=True)
        refund = gateway.create_refund(
            payment_intent=intent.id, amount=500, idempotency_key=key(), metadata={"refund_key": "k"}
        )
        headers, body = receiver.wait_for("refund.created", refund.id)
        verify_signature(body, headers["Stripe-Signature"], secret)
        obj = json.loads(body)["data"]["object"]
        assert (obj["payment_intent"], obj["amount"], obj["metadata"]) == (
            intent.id,
            500,
            {"refund_key": "k"},
        )


class TestUnavailable:
    def test_a_gateway_that_is_down_fails_fast_after_the_retries(self):
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(seconds)

        started = time.monotonic()
        with (
            StripeGateway(f"http://127.0.0.1:{free_port()}", "sk_test_x", backoff=0.01, sleep=sleep) as gw,
            pytest.raises(GatewayUnavailable),
        ):
            card_intent(gw)
        assert len(sleeps) == 2
        assert time.monotonic() - started < 2

    def test_flush_forgets_everything(self, tmp_path):
        with (
            start_localstripe(state_dir=tmp_path) as private,
            StripeGateway(private.url, private.secret_key) as gw,
        ):
            intent = card_intent(gw)
            private.flush()
            with pytest.raises(InvalidPaymentRequest):
                gw.retrieve_payment_intent(intent.id)
