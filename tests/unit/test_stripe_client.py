"""StripeGateway over HTTP: encoding, headers, retries and error mapping, against a scripted server
on 127.0.0.1 (the network edge is real; only the far side is scripted); and its webhook parsing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    Intent,
    InvalidPaymentRequest,
)
from services.payments.signature import InvalidSignature, sign_payload
from services.payments.stripe import StripeGateway, encode_params

SECRET = "sk_test_unit"


def intent_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "pi_123",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": 1250,
        "amount_received": 0,
        "amount_capturable": 0,
        "currency": "cny",
        "capture_method": "automatic",
        "client_secret": "pi_123_secret_abc",
        "customer": None,
        "metadata": {"order": "O-1"},
        "payment_method_types": ["card"],
        "next_action": None,
        "last_payment_error": None,
    }
    data.update(overrides)
    return data


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=intent_json)
    raw: bytes | None = None  # sent as is instead of JSON
    reset: bool = False  # close the connection without answering
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True)


class ScriptedStripe:
    """Answers requests with the queued replies, in order (the last one repeats), and records them."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                script.seen.append(
                    Seen(
                        self.command,
                        parts.path,
                        parse_qsl(parts.query, keep_blank_values=True),
                        dict(self.headers.items()),
                        body,
                    )
                )
                reply = script.replies.pop(0) if len(script.replies) > 1 else script.replies[0]
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def stripe_server() -> Iterator[ScriptedStripe]:
    server = ScriptedStripe()
    server.reply(Reply())
    yield server
    server.stop()


@pytest.fixture()
def sleeps() -> list[float]:
    return []


@pytest.fixture()
def gateway(stripe_server: ScriptedStripe, sleeps: list[float]) -> Iterator[StripeGateway]:
    gw = StripeGateway(
        stripe_server.url, SECRET, timeout=(2, 2), max_retries=2, backoff=0.2, sleep=sleeps.append
    )
    yield gw
    gw.close()


def create(gw: StripeGateway, **overrides: Any) -> Intent:
    params: dict[str, Any] = {
        "amount": 1250,
        "currency": "CNY",
        "payment_method_types": ["card"],
        "metadata": {"order": "O-1"},
        "idempotency_key": "order-O-1-attempt-1",
    }
    params.update(overrides)
    return gw.create_payment_intent(**params)


class TestEncodeParams:
    def test_flattens_nested_params_with_brackets(self):
        assert encode_params(
            {
                "amount": 100,
                "metadata": {"order": "O-1", "buyer": "7"},
                "payment_method_types": ["wechat_pay", "alipay"],
                "payment_method_options": {"wechat_pay": {"client": "web"}},
                "items": [{"price": "p1", "quantity": 2}],
                "confirm": True,
                "off_session": False,
                "customer": None,
            }
        ) == [
            ("amount", "100"),
            ("metadata[order]", "O-1"),
            ("metadata[buyer]", "7"),
            ("payment_method_types[0]", "wechat_pay"),
            ("payment_method_types[1]", "alipay"),
            ("payment_method_options[wechat_pay][client]", "web"),
            ("items[0][price]", "p1"),
            ("items[0][quantity]", "2"),
            ("confirm", "true"),
            ("off_session", "false"),
        ]

    def test_leaves_out_none_and_empty_containers(self):
        assert encode_params({"a": None, "metadata": {}, "types": [], "b": {"c": None}}) == []

    @given(
        st.dictionaries(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
            st.text(max_size=20) | st.integers(),
            max_size=6,
        )
    )
    def test_metadata_round_trips_through_the_form_encoding(self, metadata):
        from urllib.parse import urlencode

        pairs = parse_qsl(urlencode(encode_params({"metadata": metadata})), keep_blank_values=True)
        assert dict(pairs) == {f"metadata[{k}]": str(v) for k, v in metadata.items()}


class TestRequests:
    def test_create_sends_a_form_with_auth_and_idempotency_key(self, gateway, stripe_server):
        intent = create(
            gateway,
            payment_method_types=["wechat_pay"],
            payment_method_options={"wechat_pay": {"client": "web"}},
            description="订单 O-1",
            customer="cus_1",
        )
        (seen,) = stripe_server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/payment_intents")
        assert seen.headers["Authorization"] == f"Bearer {SECRET}"
        assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert seen.headers["Idempotency-Key"] == "order-O-1-attempt-1"
        assert seen.form == [
            ("amount", "1250"),
            ("currency", "cny"),
            ("payment_method_types[0]", "wechat_pay"),
            ("capture_method", "automatic"),
            ("customer", "cus_1"),
            ("metadata[order]", "O-1"),
            ("payment_method_options[wechat_pay][client]", "web"),
            ("description", "订单 O-1"),
        ]
        assert intent == Intent(
            id="pi_123",
            status="requires_payment_method",
            amount=1250,
            amount_received=0,
            amount_capturable=0,
            currency="cny",
            capture_method="automatic",
            client_secret="pi_123_secret_abc",
            customer=None,
            metadata={"order": "O-1"},
            payment_method_types=("card",),
            next_action=None,
            last_error=None,
            raw=intent_json(),
        )

    def test_confirming_a_wallet_intent_sends_its_payment_method_data(self, gateway, stripe_server):
        create(gateway, payment_method_types=["alipay"], confirm=True, return_url="https://shop.example/back")
        form = dict(stripe_server.seen[0].form)
        assert form["payment_method_data[type]"] == "alipay"
        assert form["confirm"] == "true"
        assert form["return_url"] == "https://shop.example/back"

    def test_card_intents_get_no_payment_method_data(self, gateway, stripe_server):
        create(gateway, confirm=True, payment_method="pm_card_visa")
        form = dict(stripe_server.seen[0].form)
        assert "payment_method_data[type]" not in form
        assert form["payment_method"] == "pm_card_visa"

    @pytest.mark.parametrize(
        ("call", "path"),
        [
            (
                lambda gw: gw.cancel_payment_intent("pi_123", idempotency_key="k"),
                "/v1/payment_intents/pi_123/cancel",
            ),
            (
                lambda gw: gw.capture_payment_intent("pi_123", idempotency_key="k"),
                "/v1/payment_intents/pi_123/capture",
            ),
            (
                lambda gw: gw.confirm_payment_intent("pi_123", idempotency_key="k"),
                "/v1/payment_intents/pi_123/confirm",
            ),
        ],
    )
    def test_posts_without_params_still_say_they_are_forms(self, gateway, stripe_server, call, path):
        call(gateway)
        (seen,) = stripe_server.seen
        assert seen.path == path
        assert seen.body == b""
        assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert seen.headers["Idempotency-Key"] == "k"

    def test_capture_sends_the_amount_to_capture(self, gateway, stripe_server):
        gateway.capture_payment_intent("pi_123", idempotency_key="k", amount_to_capture=800)
        assert stripe_server.seen[0].form == [("amount_to_capture", "800")]

    def test_confirm_sends_payment_method_and_return_url(self, gateway, stripe_server):
        gateway.confirm_payment_intent(
            "pi_123", idempotency_key="k", payment_method="pm_1", return_url="https://x.example/r"
        )
        assert stripe_server.seen[0].form == [
            ("payment_method", "pm_1"),
            ("return_url", "https://x.example/r"),
        ]

    def test_retrieve_is_a_get_without_idempotency_key(self, gateway, stripe_server):
        gateway.retrieve_payment_intent("pi_123")
        (seen,) = stripe_server.seen
        assert (seen.method, seen.path) == ("GET", "/v1/payment_intents/pi_123")
        assert "Idempotency-Key" not in seen.headers

    def test_ids_are_escaped_in_paths(self, gateway, stripe_server):
        gateway.retrieve_payment_intent("pi_1/../x")
        assert stripe_server.seen[0].path == "/v1/payment_intents/pi_1%2F..%2Fx"

    def test_create_customer_returns_its_id(self, gateway, stripe_server):
        stripe_server.reply(Reply(body={"id": "cus_9", "object": "customer"}))
        assert (
            gateway.create_customer(
                name="李四", phone="13800000000", metadata={"user": "7"}, idempotency_key="user-7"
            )
            == "cus_9"
        )
        assert stripe_server.seen[0].form == [
            ("name", "李四"),
            ("phone", "13800000000"),
            ("metadata[user]", "7"),
        ]

    def test_create_refund(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                body={
                    "id": "re_1",
                    "status": "succeeded",
                    "amount": 300,
                    "payment_intent": "pi_123",
                    "metadata": {"order": "O-1"},
                }
            )
        )
        refund = gateway.create_refund(
            payment_intent="pi_123", amount=300, idempotency_key="r-1", metadata={"order": "O-1"}
        )
        assert (refund.id, refund.status, refund.amount, refund.payment_intent) == (
            "re_1",
            "succeeded",
            300,
            "pi_123",
        )
        assert stripe_server.seen[0].form == [
            ("payment_intent", "pi_123"),
            ("amount", "300"),
            ("metadata[order]", "O-1"),
        ]

    def test_a_post_without_idempotency_key_is_refused_before_sending(self, gateway, stripe_server):
        with pytest.raises(ValueError):
            gateway.cancel_payment_intent("pi_123", idempotency_key="")
        assert stripe_server.seen == []

    def test_last_error_and_next_action_are_read(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                body=intent_json(
                    status="requires_payment_method",
                    last_payment_error={"code": "card_declined", "message": "Your card was declined."},
                    next_action={"type": "use_stripe_sdk"},
                    customer={"id": "cus_1", "object": "customer"},
                )
            )
        )
        intent = gateway.retrieve_payment_intent("pi_123")
        assert intent.last_error == "Your card was declined."
        assert intent.next_action == {"type": "use_stripe_sdk"}
        assert intent.customer == "cus_1"


class TestFindPaymentIntent:
    def page(self, ids_and_orders, has_more):
        return Reply(
            body={
                "object": "list",
                "has_more": has_more,
                "data": [
                    intent_json(id=i, customer="cus_1", metadata={"order": o}) for i, o in ids_and_orders
                ],
            }
        )

    def test_pages_with_starting_after_until_it_finds_the_metadata(self, gateway, stripe_server):
        stripe_server.reply(
            self.page([("pi_1", "O-1"), ("pi_2", "O-2")], has_more=True),
            self.page([("pi_3", "O-3"), ("pi_4", "O-4")], has_more=True),
        )
        found = gateway.find_payment_intent(customer="cus_1", metadata_key="order", metadata_value="O-3")
        assert found is not None and found.id == "pi_3"
        first, second = stripe_server.seen
        assert first.query == [("customer", "cus_1"), ("limit", "100")]
        assert second.query == [("customer", "cus_1"), ("limit", "100"), ("starting_after", "pi_2")]

    def test_returns_none_when_no_intent_matches(self, gateway, stripe_server):
        stripe_server.reply(self.page([("pi_1", "O-1")], has_more=False))
        assert (
            gateway.find_payment_intent(customer="cus_1", metadata_key="order", metadata_value="O-9") is None
        )

    def test_filters_on_the_customer_when_the_server_does_not(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                body={
                    "object": "list",
                    "has_more": False,
                    "data": [
                        intent_json(id="pi_other", customer="cus_2", metadata={"order": "O-1"}),
                        intent_json(id="pi_mine", customer="cus_1", metadata={"order": "O-1"}),
                    ],
                }
            )
        )
        found = gateway.find_payment_intent(customer="cus_1", metadata_key="order", metadata_value="O-1")
        assert found is not None and found.id == "pi_mine"

    def test_prefers_a_live_intent_to_a_canceled_one(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                body={
                    "object": "list",
                    "has_more": False,
                    "data": [
                        intent_json(id="pi_old", status="canceled", metadata={"order": "O-1"}),
                        intent_json(id="pi_new", status="requires_action", metadata={"order": "O-1"}),
                    ],
                }
            )
        )
        found = gateway.find_payment_intent(customer=None, metadata_key="order", metadata_value="O-1")
        assert found is not None and found.id == "pi_new"
        assert stripe_server.seen[0].query == [("limit", "100")]

    def test_stops_when_the_server_ignores_starting_after(self, gateway, stripe_server):
        stripe_server.reply(self.page([("pi_1", "O-1")], has_more=True))
        assert (
            gateway.find_payment_intent(customer="cus_1", metadata_key="order", metadata_value="O-9") is None
        )
        assert len(stripe_server.seen) == 2


class TestRetries:
    def test_a_500_is_retried_with_the_same_idempotency_key(self, gateway, stripe_server, sleeps):
        stripe_server.reply(Reply(status=500, body={"error": {"type": "api_error"}}), Reply())
        assert create(gateway).id == "pi_123"
        keys = [seen.headers["Idempotency-Key"] for seen in stripe_server.seen]
        assert keys == ["order-O-1-attempt-1"] * 2
        assert stripe_server.seen[0].body == stripe_server.seen[1].body
        assert len(sleeps) == 1 and 0.1 <= sleeps[0] <= 0.2

    def test_a_429_is_retried(self, gateway, stripe_server, sleeps):
        stripe_server.reply(Reply(status=429, body={"error": {"type": "rate_limit_error"}}), Reply())
        assert create(gateway).id == "pi_123"
        assert len(stripe_server.seen) == 2

    def test_a_connection_reset_is_retried_with_the_same_key(self, gateway, stripe_server, sleeps):
        stripe_server.reply(Reply(reset=True), Reply())
        assert gateway.cancel_payment_intent("pi_123", idempotency_key="cancel-1").id == "pi_123"
        assert [seen.headers["Idempotency-Key"] for seen in stripe_server.seen] == ["cancel-1"] * 2

    def test_a_read_timeout_is_retried(self, stripe_server, sleeps):
        stripe_server.reply(Reply(delay=0.6), Reply())
        with StripeGateway(stripe_server.url, SECRET, timeout=(1, 0.2), sleep=sleeps.append) as gw:
            assert gw.retrieve_payment_intent("pi_123").id == "pi_123"
        assert len(stripe_server.seen) == 2

    def test_backoff_grows_exponentially_then_gives_up(self, gateway, stripe_server, sleeps):
        stripe_server.reply(Reply(status=503, body={"error": {"message": "down for maintenance"}}))
        with pytest.raises(GatewayUnavailable) as caught:
            create(gateway)
        assert len(stripe_server.seen) == 3  # max_retries=2
        assert len(sleeps) == 2
        assert 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4
        error = caught.value
        assert (error.status, error.code, error.http_status) == (503, "payment_gateway_unavailable", 503)
        assert error.gateway_message == "down for maintenance"

    def test_stripe_should_retry_false_stops_retries(self, gateway, stripe_server, sleeps):
        stripe_server.reply(
            Reply(status=500, headers={"Stripe-Should-Retry": "false"}, body={"error": {"type": "api_error"}})
        )
        with pytest.raises(GatewayUnavailable):
            create(gateway)
        assert len(stripe_server.seen) == 1

    @pytest.mark.parametrize("status", [400, 402, 404, 409])
    def test_4xx_is_never_retried(self, gateway, stripe_server, sleeps, status):
        stripe_server.reply(Reply(status=status, body={"error": {"type": "invalid_request_error"}}), Reply())
        with pytest.raises(GatewayError):
            create(gateway)
        assert len(stripe_server.seen) == 1
        assert sleeps == []

    def test_a_closed_port_gives_unavailable_after_the_retries(self, sleeps):
        from devtools.localstripe import free_port

        with (
            StripeGateway(
                f"http://127.0.0.1:{free_port()}", SECRET, max_retries=3, sleep=sleeps.append
            ) as gw,
            pytest.raises(GatewayUnavailable) as caught,
        ):
            gw.retrieve_payment_intent("pi_123")
        assert len(sleeps) == 3
        assert "ConnectionError" in (caught.value.gateway_message or "")


class TestErrorMapping:
    def test_a_decline_is_card_declined_with_its_code(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                status=402,
                body={
                    "error": {
                        "type": "card_error",
                        "code": "card_declined",
                        "decline_code": "insufficient_funds",
                        "message": "Your card has insufficient funds.",
                        "payment_intent": {"id": "pi_9"},
                    }
                },
            )
        )
        with pytest.raises(CardDeclined) as caught:
            create(gateway, payment_method="pm_card_visa", confirm=True)
        error = caught.value
        assert (error.status, error.code) == (402, "card_declined")
        assert error.decline_code == "insufficient_funds"
        assert error.payment_intent_id == "pi_9"
        assert error.gateway_message == "Your card has insufficient funds."
        # users read our own message, in their language
        assert str(error) == "Your card was declined. Please try another card or payment method."

    def test_a_card_error_type_is_a_decline_whatever_the_status(self, gateway, stripe_server):
        stripe_server.reply(Reply(status=400, body={"error": {"type": "card_error", "code": "expired_card"}}))
        with pytest.raises(CardDeclined) as caught:
            create(gateway)
        assert caught.value.decline_code == "expired_card"

    def test_another_4xx_is_an_invalid_request_keeping_the_gateway_message(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                status=400,
                body={
                    "error": {
                        "type": "invalid_request_error",
                        "code": "parameter_invalid_integer",
                        "message": "Invalid integer: x",
                    }
                },
                headers={"Request-Id": "req_1"},
            )
        )
        with pytest.raises(InvalidPaymentRequest) as caught:
            create(gateway)
        error = caught.value
        assert (error.status, error.code) == (422, "invalid_payment_request")
        assert (error.gateway_message, error.gateway_code, error.request_id) == (
            "Invalid integer: x",
            "parameter_invalid_integer",
            "req_1",
        )
        assert "Invalid integer" not in str(error)

    def test_bad_credentials_are_a_gateway_error_not_the_buyers_fault(self, gateway, stripe_server):
        stripe_server.reply(
            Reply(
                status=401,
                body={"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
            )
        )
        with pytest.raises(GatewayError) as caught:
            create(gateway)
        assert type(caught.value) is GatewayError
        assert caught.value.status == 502

    @pytest.mark.parametrize("status", [200, 400])
    def test_a_body_that_is_not_json_is_unavailable(self, gateway, stripe_server, status):
        stripe_server.reply(Reply(status=status, raw=b"<html>proxy error</html>"))
        with pytest.raises(GatewayUnavailable):
            create(gateway)

    def test_json_that_is_not_an_object_is_unavailable(self, gateway, stripe_server):
        stripe_server.reply(Reply(raw=b"[1, 2]"))
        with pytest.raises(GatewayUnavailable):
            create(gateway)

    def test_an_intent_without_id_is_a_gateway_error(self, gateway, stripe_server):
        stripe_server.reply(Reply(body={"object": "payment_intent"}))
        with pytest.raises(GatewayError):
            gateway.retrieve_payment_intent("pi_123")

    def test_the_errors_are_service_errors_with_translatable_messages(self):
        from services.errors import ServiceError

        for cls in (GatewayError, CardDeclined, InvalidPaymentRequest, GatewayUnavailable):
            error = cls()
            assert isinstance(error, ServiceError)
            assert str(error)


class TestParseWebhook:
    """parse_webhook: the signature over the raw body first (with the endpoint's secret), then the
    JSON; no request reaches the API."""

    WEBHOOK_SECRET = "whsec_unit_" + "5" * 32
    EVENT = {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": intent_json()}}

    @pytest.fixture()
    def receiver(self, stripe_server: ScriptedStripe) -> Iterator[StripeGateway]:
        with StripeGateway(stripe_server.url, SECRET, webhook_secret=self.WEBHOOK_SECRET) as gw:
            yield gw
        assert stripe_server.seen == []

    def signed(self, body: bytes, *, secret: str | None = None, age: int = 0) -> str:
        return sign_payload(body, secret or self.WEBHOOK_SECRET, int(time.time()) - age)

    def test_a_signed_delivery_gives_its_event(self, receiver):
        body = json.dumps(self.EVENT).encode()
        assert receiver.parse_webhook(body, self.signed(body)) == self.EVENT

    @pytest.mark.parametrize(
        "header",
        [None, "", "t=1,v1=00", "garbage"],
        ids=["absent", "empty", "bad signature", "malformed"],
    )
    def test_a_missing_or_malformed_signature_is_refused(self, receiver, header):
        with pytest.raises(InvalidSignature):
            receiver.parse_webhook(json.dumps(self.EVENT).encode(), header)

    def test_another_secret_or_a_changed_body_is_refused(self, receiver):
        body = json.dumps(self.EVENT).encode()
        with pytest.raises(InvalidSignature):
            receiver.parse_webhook(body, self.signed(body, secret="whsec_someone_else"))
        with pytest.raises(InvalidSignature):
            receiver.parse_webhook(body.replace(b"succeeded", b"failed"), self.signed(body))

    def test_a_stale_delivery_is_refused_by_the_configured_tolerance(self, stripe_server):
        body = json.dumps(self.EVENT).encode()
        header = self.signed(body, age=120)
        with StripeGateway(stripe_server.url, SECRET, webhook_secret=self.WEBHOOK_SECRET) as default:
            assert default.parse_webhook(body, header)["id"] == "evt_1"  # within Stripe's 300 s
        with (
            StripeGateway(
                stripe_server.url, SECRET, webhook_secret=self.WEBHOOK_SECRET, webhook_tolerance=60
            ) as strict,
            pytest.raises(InvalidSignature),
        ):
            strict.parse_webhook(body, header)

    @pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"], ids=["text", "array", "bytes"])
    def test_a_signed_body_that_is_not_a_json_object_is_a_value_error(self, receiver, body):
        with pytest.raises(ValueError):
            receiver.parse_webhook(body, self.signed(body))

    def test_an_unsigned_body_is_never_parsed(self, receiver):
        with pytest.raises(InvalidSignature):
            receiver.parse_webhook(b"not json", None)

    def test_without_a_signing_secret_nothing_verifies(self, gateway):
        body = json.dumps(self.EVENT).encode()
        with pytest.raises(ValueError, match="secret"):
            gateway.parse_webhook(body, self.signed(body))
