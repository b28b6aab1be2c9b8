"""Stripe webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…][,v0=…]`.

v1 is HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint's secret. Several v1 values may
come (while a secret is being rolled); any one matching is enough. Other schemes are ignored.

StripeGateway.parse_webhook is the caller: the webhook view asks the gateway, not this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

from services.errors import ServiceError
from services.i18n import _

DEFAULT_TOLERANCE = 300  # seconds, as in Stripe's libraries
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class InvalidSignature(ServiceError):
    """A webhook whose signature is missing, malformed, stale or does not match."""

    status = 400
    code = "invalid_signature"

    def __init__(self, message: Any = None, *, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason  # a short English tag for logs

    @classmethod
    def default_message(cls) -> Any:
        return _("No webhook signature matches the payload.")


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex v1 signature of `payload` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """A full Stripe-Signature header value for `payload`, as Stripe would send it."""
    return f"t={timestamp},v1={compute_signature(payload, secret, timestamp)}"


def parse_header(header: str | None) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a Stripe-Signature header; InvalidSignature when malformed."""
    malformed = InvalidSignature(
        _("The Stripe-Signature header is missing or malformed."), reason="malformed header"
    )
    if not header or not header.strip():
        raise malformed
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise malformed
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            signatures.append(value.strip().lower())
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not signatures:
        raise malformed
    return int(timestamps[0]), signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> int:
    """Check a webhook delivery and return its signed timestamp, or raise InvalidSignature.

    `payload` must be the raw request body, byte for byte. Timestamps further than `tolerance`
    seconds from `now`, in the past or the future, are refused (replays).
    """
    if not secret:
        raise ValueError("the webhook signing secret is not configured")
    timestamp, signatures = parse_header(header)
    expected = compute_signature(payload, secret, timestamp).encode()
    # Every candidate is compared, so the time taken does not tell which one came close.
    matched = False
    for candidate in signatures:
        if _HEX_SHA256.fullmatch(candidate) and hmac.compare_digest(expected, candidate.encode()):
            matched = True
    if not matched:
        raise InvalidSignature(reason="no matching signature")
    # Wall time on purpose, not the product's clock: the tolerance is against the sender's clock.
    current = int(time.time()) if now is None else int(now)
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(
            _("The webhook timestamp is outside the allowed tolerance."), reason="timestamp outside tolerance"
        )
    return timestamp
