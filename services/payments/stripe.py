"""StripeGateway: the PaymentGateway over Stripe's HTTP API with `requests`.

Only parameters documented by Stripe's API are sent, form-encoded with Stripe's bracket notation,
so the same client works against api.stripe.com, localstripe and stripe-mock.

Every POST carries an Idempotency-Key; network errors, timeouts, 429 and 5xx are retried with the
same key (exponential backoff with jitter), 4xx never are.

Webhook deliveries are verified with the endpoint's signing secret (services.payments.signature)
before their JSON is read.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import requests  # type: ignore[import-untyped]

from services.payments.gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    Intent,
    InvalidPaymentRequest,
    RefundResult,
)
from services.payments.signature import DEFAULT_TOLERANCE, verify_signature

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 10.0)  # (connect, read) seconds
MAX_DELAY = 5.0  # seconds, whatever the attempt
LIST_PAGE_SIZE = 100  # Stripe's maximum


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested params the way Stripe reads them: a[b][c]=v, list[0]=v; None is left out."""
    pairs: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub, item in value.items():
                walk(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))

    for key, value in params.items():
        walk(str(key), value)
    return pairs


def _id_of(value: Any) -> str | None:
    """An id whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def intent_from_json(data: Mapping[str, Any]) -> Intent:
    """An Intent from a PaymentIntent object (an API answer or a webhook event's data.object)."""
    error = data.get("last_payment_error")
    last_error = None
    if isinstance(error, Mapping):
        last_error = error.get("message") or error.get("code")
    next_action = data.get("next_action")
    try:
        return Intent(
            id=str(data["id"]),
            status=str(data["status"]),
            amount=int(data.get("amount") or 0),
            amount_received=int(data.get("amount_received") or 0),
            amount_capturable=int(data.get("amount_capturable") or 0),
            currency=str(data.get("currency") or ""),
            capture_method=str(data.get("capture_method") or "automatic"),
            client_secret=data.get("client_secret"),
            customer=_id_of(data.get("customer")),
            metadata=_metadata(data.get("metadata")),
            payment_method_types=tuple(str(t) for t in data.get("payment_method_types") or ()),
            next_action=dict(next_action) if isinstance(next_action, Mapping) and next_action else None,
            last_error=str(last_error) if last_error else None,
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GatewayError(gateway_message=f"malformed PaymentIntent: {exc!r}") from exc


def refund_from_json(data: Mapping[str, Any]) -> RefundResult:
    """A RefundResult from a Refund object (an API answer or a webhook event's data.object)."""
    try:
        return RefundResult(
            id=str(data["id"]),
            status=str(data["status"]),
            amount=int(data["amount"]),
            payment_intent=_id_of(data.get("payment_intent")),
            metadata=_metadata(data.get("metadata")),
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GatewayError(gateway_message=f"malformed Refund: {exc!r}") from exc


class StripeGateway:
    """PaymentGateway over a Stripe-compatible HTTP API (api.stripe.com, localstripe, stripe-mock)."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        api_version: str | None = None,
        pool_size: int = 32,
        webhook_secret: str = "",
        webhook_tolerance: int = DEFAULT_TOLERANCE,
    ):
        if not secret_key:
            raise ValueError("a Stripe secret key is required")
        self.base_url = base_url.rstrip("/")
        self._secret_key = secret_key
        self._timeout = timeout
        self._max_retries = max(0, max_retries)
        self._backoff = backoff
        self._owns_session = session is None
        self._session = session or requests.Session()
        if session is None:
            # Every thread of a worker may be waiting on the gateway at once (a slow gateway
            # must not throttle checkout): keep that many connections, not requests' 10.
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size))
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
            # The proxy and CA settings of the environment are read once, for the one gateway:
            # requests would read every variable of os.environ twice per call (trust_env).
            self._session.proxies = requests.utils.get_environ_proxies(self.base_url)
            self._session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            self._session.trust_env = False
        self._sleep = sleep
        self._api_version = api_version
        self._random = random.Random()
        # The webhook endpoint's signing secret (whsec_…): not an API credential, Stripe gives
        # one per endpoint. Only parse_webhook needs it.
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance

    def close(self) -> None:
        """Release pooled connections (only those of a session this gateway created)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- PaymentGateway --------------------------------------------------------------------------

    def create_customer(
        self, *, name: str, phone: str, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        data = self._post(
            "/v1/customers",
            {"name": name, "phone": phone, "metadata": dict(metadata)},
            idempotency_key,
        )
        customer_id = _id_of(data)
        if customer_id is None:
            raise GatewayError(gateway_message="customer without an id")
        return customer_id

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
        """Create (and, with `confirm`, confirm) a PaymentIntent.

        Confirming a wallet intent (one non-card type, e.g. ["wechat_pay"]) without a payment
        method sends payment_method_data[type]=<that type>, which Stripe needs to show the QR
        code or the redirect. `return_url` is only accepted by Stripe together with confirm=True.
        """
        types = [str(t) for t in payment_method_types]
        if (
            confirm
            and payment_method is None
            and payment_method_data is None
            and len(types) == 1
            and types[0] != "card"
        ):
            payment_method_data = {"type": types[0]}
        params: dict[str, Any] = {
            "amount": int(amount),
            "currency": currency.lower(),
            "payment_method_types": types,
            "capture_method": capture_method,
            "customer": customer,
            "metadata": dict(metadata),
            "payment_method": payment_method,
            "payment_method_data": payment_method_data,
            "payment_method_options": payment_method_options,
            "description": description,
            "confirm": True if confirm else None,
            "return_url": return_url,
        }
        return intent_from_json(self._post("/v1/payment_intents", params, idempotency_key))

    def retrieve_payment_intent(self, intent_id: str) -> Intent:
        return intent_from_json(self._get(f"/v1/payment_intents/{_path(intent_id)}", {}))

    def confirm_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        payment_method: str | None = None,
        return_url: str | None = None,
        payment_method_data: Mapping[str, Any] | None = None,
    ) -> Intent:
        params = {
            "payment_method": payment_method,
            "payment_method_data": payment_method_data,
            "return_url": return_url,
        }
        return intent_from_json(
            self._post(f"/v1/payment_intents/{_path(intent_id)}/confirm", params, idempotency_key)
        )

    def update_payment_intent(
        self,
        intent_id: str,
        *,
        idempotency_key: str,
        payment_method_types: Sequence[str] | None = None,
        payment_method_options: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Intent:
        """POST /v1/payment_intents/{id} (Stripe's "Update a PaymentIntent")."""
        types = None if payment_method_types is None else [str(t) for t in payment_method_types]
        params: dict[str, Any] = {
            "payment_method_types": types,
            "payment_method_options": payment_method_options,
            "metadata": None if metadata is None else dict(metadata),
        }
        path = f"/v1/payment_intents/{_path(intent_id)}"
        return intent_from_json(self._post(path, params, idempotency_key))

    def capture_payment_intent(
        self, intent_id: str, *, idempotency_key: str, amount_to_capture: int | None = None
    ) -> Intent:
        params = {"amount_to_capture": None if amount_to_capture is None else int(amount_to_capture)}
        return intent_from_json(
            self._post(f"/v1/payment_intents/{_path(intent_id)}/capture", params, idempotency_key)
        )

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        return intent_from_json(
            self._post(f"/v1/payment_intents/{_path(intent_id)}/cancel", {}, idempotency_key)
        )

    def create_refund(
        self, *, payment_intent: str, amount: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        params = {"payment_intent": payment_intent, "amount": int(amount), "metadata": dict(metadata)}
        return refund_from_json(self._post("/v1/refunds", params, idempotency_key))

    def find_payment_intent(
        self, *, customer: str | None, metadata_key: str, metadata_value: str
    ) -> Intent | None:
        """Page through the customer's PaymentIntents for the one carrying this metadata.

        The app's guard against double charges when a create response was lost. The customer
        filter is also applied here, for servers that list more than asked. When several match,
        a live one wins over a canceled one.
        """
        canceled: Intent | None = None
        for item in self._list("/v1/payment_intents", {"customer": customer}):
            if customer is not None and _id_of(item.get("customer")) != customer:
                continue
            if _metadata(item.get("metadata")).get(metadata_key) != metadata_value:
                continue
            found = intent_from_json(item)
            if found.status != "canceled":
                return found
            canceled = canceled or found
        return canceled

    def find_refund(
        self, *, payment_intent: str, metadata_key: str, metadata_value: str
    ) -> RefundResult | None:
        """Page through the PaymentIntent's refunds (GET /v1/refunds?payment_intent=) for the one
        carrying this metadata: how a refund whose create answer was lost is found again after
        Stripe may have forgotten its Idempotency-Key (kept about 24 hours). The intent filter is
        applied here too, for servers that list more than asked. When several match, a live one
        (succeeded, pending, requires_action) wins over a failed or canceled one."""
        ended: RefundResult | None = None
        for item in self._list("/v1/refunds", {"payment_intent": payment_intent}):
            if _id_of(item.get("payment_intent")) not in (None, payment_intent):
                continue
            if _metadata(item.get("metadata")).get(metadata_key) != metadata_value:
                continue
            found = refund_from_json(item)
            if found.status not in ("failed", "canceled"):
                return found
            ended = ended or found
        return ended

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """Verify a Stripe-Signature over the raw body, then read the event (Stripe's own
        libraries call this construct_event). The signature comes first: an unsigned body is
        never parsed."""
        verify_signature(payload, signature_header, self._webhook_secret, tolerance=self._webhook_tolerance)
        event = json.loads(payload)
        if not isinstance(event, dict):
            raise ValueError("a webhook event is a JSON object")
        return event

    # --- HTTP --------------------------------------------------------------------------------------

    def _list(self, path: str, params: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        query: dict[str, Any] = {**params, "limit": LIST_PAGE_SIZE}
        while True:
            page = self._get(path, query)
            data = page.get("data")
            if not isinstance(data, list):
                raise GatewayError(gateway_message=f"list without data: {path}")
            for item in data:
                if isinstance(item, Mapping):
                    yield item
            if not page.get("has_more") or not data:
                return
            last = _id_of(data[-1])
            if last is None or last == query.get("starting_after"):
                return  # a server that ignores starting_after would loop forever
            query["starting_after"] = last

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._request("GET", path, params, idempotency_key=None)

    def _post(self, path: str, params: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        if not idempotency_key:
            raise ValueError("every POST to the payment gateway needs an idempotency key")
        return self._request("POST", path, params, idempotency_key=idempotency_key)

    def _request(
        self, method: str, path: str, params: Mapping[str, Any], *, idempotency_key: str | None
    ) -> dict[str, Any]:
        url = self.base_url + path
        encoded = urlencode(encode_params(params))
        headers = {"Authorization": f"Bearer {self._secret_key}", "Accept": "application/json"}
        if self._api_version:
            headers["Stripe-Version"] = self._api_version
        body: str | None = None
        if method == "POST":
            # Stripe reads form bodies only; the header goes even with an empty body.
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            body = encoded
        elif encoded:
            url = f"{url}?{encoded}"

        attempts = self._max_retries + 1
        failure = ""
        for attempt in range(attempts):
            try:
                response = self._session.request(
                    method, url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            except requests.RequestException as exc:
                raise GatewayUnavailable(gateway_message=f"{type(exc).__name__}: {exc}") from exc
            else:
                status = response.status_code
                if status < 500 and status != 429:
                    return self._handle(response)
                failure = f"HTTP {status}"
                if response.headers.get("Stripe-Should-Retry", "").lower() == "false":
                    raise self._unavailable(response, failure)
                if attempt == attempts - 1:
                    raise self._unavailable(response, failure)
                response.close()
            if attempt < attempts - 1:
                delay = self._delay(attempt)
                log.warning(
                    "payment gateway %s %s failed (%s); retry %d/%d in %.2fs",
                    method,
                    path,
                    failure,
                    attempt + 1,
                    self._max_retries,
                    delay,
                )
                self._sleep(delay)
        raise GatewayUnavailable(gateway_message=f"{method} {path}: {failure} after {attempts} attempts")

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of backoff·2^attempt."""
        ceiling = min(MAX_DELAY, self._backoff * (2**attempt))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    @staticmethod
    def _unavailable(response: requests.Response, failure: str) -> GatewayUnavailable:
        message = None
        try:
            error = response.json().get("error") or {}
            message = error.get("message")
        except (ValueError, AttributeError):
            pass
        return GatewayUnavailable(
            gateway_message=message or failure,
            http_status=response.status_code,
            request_id=response.headers.get("Request-Id"),
        )

    @staticmethod
    def _handle(response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        request_id = response.headers.get("Request-Id")
        try:
            payload = response.json()
        except ValueError as exc:
            raise GatewayUnavailable(
                gateway_message=f"HTTP {status} with a non-JSON body",
                http_status=status,
                request_id=request_id,
            ) from exc
        if not isinstance(payload, dict):
            raise GatewayUnavailable(
                gateway_message=f"HTTP {status} with a JSON body that is not an object",
                http_status=status,
                request_id=request_id,
            )
        if 200 <= status < 300:
            return payload
        error = payload.get("error")
        if not isinstance(error, dict):
            error = {}
        details: dict[str, Any] = {
            "gateway_message": error.get("message"),
            "gateway_code": error.get("code"),
            "http_status": status,
            "request_id": request_id,
        }
        if status == 402 or error.get("type") == "card_error":
            intent = error.get("payment_intent")
            raise CardDeclined(
                decline_code=error.get("decline_code") or error.get("code"),
                payment_intent_id=_id_of(intent),
                **details,
            )
        if status in (401, 403):
            # Our credentials, not the buyer's request: a gateway failure.
            raise GatewayError(**details)
        raise InvalidPaymentRequest(**details)


def _path(identifier: str) -> str:
    return quote(identifier, safe="")


if TYPE_CHECKING:
    from services.payments.gateway import PaymentGateway

    def _conforms(gateway: StripeGateway) -> PaymentGateway:
        return gateway  # mypy checks that StripeGateway implements the Protocol
