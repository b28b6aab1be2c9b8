"""The payment gateway seen by the services: a Protocol, its result types and its errors.

Amounts are integers in the currency's smallest unit (fen for CNY). The real implementation is
`services.payments.stripe.StripeGateway` (Stripe's HTTP API, or localstripe locally and in tests),
built once per app in marketplace/gateways.py; fakes live in tests only.

The gateway also reads what it sends back: `parse_webhook` checks a delivery's signature (a
gateway's own scheme, with its own secret) and returns the event, so the webhook view knows
nothing of how a gateway signs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.errors import ServiceError
from services.i18n import _


class GatewayError(ServiceError):
    """The gateway failed in a way the buyer cannot fix (bad credentials, malformed answer, …)."""

    status = 502
    code = "payment_gateway_error"

    def __init__(
        self,
        message: Any = None,
        *,
        gateway_message: str | None = None,
        gateway_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        # What the gateway said, for logs only: users see our own translated message.
        self.gateway_message = gateway_message
        self.gateway_code = gateway_code
        self.http_status = http_status
        self.request_id = request_id

    @classmethod
    def default_message(cls) -> Any:
        return _("The payment service is not responding correctly. Please try again later.")


class CardDeclined(GatewayError):
    """The card (or wallet) was declined; the buyer should use another one."""

    status = 402
    code = "card_declined"

    def __init__(
        self,
        message: Any = None,
        *,
        decline_code: str | None = None,
        payment_intent_id: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(message, **kwargs)
        self.decline_code = decline_code
        # Stripe reports the PaymentIntent a failed confirmation belongs to (it still exists).
        self.payment_intent_id = payment_intent_id

    @classmethod
    def default_message(cls) -> Any:
        return _("Your card was declined. Please try another card or payment method.")


class InvalidPaymentRequest(GatewayError):
    """The gateway refused the request itself (4xx other than a decline)."""

    status = 422
    code = "invalid_payment_request"

    @classmethod
    def default_message(cls) -> Any:
        return _("The payment could not be processed. Please check the details and try again.")


class GatewayUnavailable(GatewayError):
    """Network error, timeout, 5xx or 429 after the retries, or an answer that is not JSON."""

    status = 503
    code = "payment_gateway_unavailable"

    @classmethod
    def default_message(cls) -> Any:
        return _("The payment service is temporarily unavailable. Please try again in a few minutes.")


@dataclass(frozen=True)
class Intent:
    """A PaymentIntent as the gateway last reported it."""

    id: str
    status: str
    amount: int
    amount_received: int
    amount_capturable: int
    currency: str
    capture_method: str
    client_secret: str | None
    customer: str | None
    metadata: dict[str, str]
    payment_method_types: tuple[str, ...]
    next_action: dict[str, Any] | None
    last_error: str | None  # last_payment_error.message, or its code
    raw: dict[str, Any]


@dataclass(frozen=True)
class RefundResult:
    """A refund as the gateway reported it."""

    id: str
    status: str
    amount: int
    payment_intent: str | None
    metadata: dict[str, str]
    raw: dict[str, Any]


class PaymentGateway(Protocol):
    """What the services need from a Stripe-compatible payment gateway."""

    def create_customer(
        self, *, name: str, phone: str, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        """Create a customer and return its id."""
        ...

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        payment_method_types: Sequence[str],
        capture_method: str = "automatic",
        customer: str | None = None,
        metadata: Mapping[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
        confirm: bool = False,
        return_url: str | None = None,
        payment_method_options: Mapping[str, Any] | None = None,
        description: str | None = None,
        payment_method_data: Mapping[str, Any] | None = None,
    ) -> Intent:
        """Create a PaymentIntent, and confirm it at once when `confirm`."""
        ...

    def retrieve_payment_intent(self, intent_id: str) -> Intent:
        """The PaymentIntent as it is now."""
        ...

    def confirm_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        payment_method: str | None = None,
        return_url: str | None = None,
        payment_method_data: Mapping[str, Any] | None = None,
    ) -> Intent:
        """Confirm a PaymentIntent (with this payment method, if given)."""
        ...

    def update_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        payment_method_types: Sequence[str] | None = None,
        payment_method_options: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Intent:
        """Change a PaymentIntent that is not paid yet (requires_payment_method, _confirmation or
        _action), e.g. the payment method types the buyer may pay it with. A payment method
        of a type no longer allowed is detached: the intent waits for a payment method again."""
        ...

    def capture_payment_intent(
        self, intent_id: str, *, idempotency_key: str, amount_to_capture: int | None = None
    ) -> Intent:
        """Capture an authorized PaymentIntent, in full or `amount_to_capture` of it."""
        ...

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        """Cancel a PaymentIntent that is not yet paid (releases an authorization)."""
        ...

    def create_refund(
        self, *, payment_intent: str, amount: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        """Refund `amount` of a paid PaymentIntent."""
        ...

    def find_payment_intent(
        self, *, customer: str | None, metadata_key: str, metadata_value: str
    ) -> Intent | None:
        """The PaymentIntent whose metadata[metadata_key] == metadata_value, if any."""
        ...

    def find_refund(
        self, *, payment_intent: str, metadata_key: str, metadata_value: str
    ) -> RefundResult | None:
        """The refund of `payment_intent` whose metadata[metadata_key] == metadata_value, if any.

        Authoritative: None means the gateway has made no such refund (so sending it again
        cannot refund twice), whatever became of the Idempotency-Key it was first sent with.
        """
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event a webhook delivery carries, once its signature is verified.

        `payload` is the raw request body, byte for byte; `signature_header` the signature header
        as received (Stripe-Signature), None when absent. Raises
        `services.payments.signature.InvalidSignature` when the signature is missing, malformed,
        stale or does not match, and ValueError when the body is not a JSON object (or no
        signing secret is configured).
        """
        ...
