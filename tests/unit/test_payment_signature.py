"""Stripe webhook signatures: what verify_signature accepts and refuses."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.signature import InvalidSignature, compute_signature, sign_payload, verify_signature

SECRET = "whsec_test_secret"
NOW = 1_780_000_000
PAYLOAD = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'


def v1(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme written out independently of the code under test."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


class TestSignPayload:
    def test_gives_a_stripe_signature_header(self):
        assert sign_payload(PAYLOAD, SECRET, NOW) == f"t={NOW},v1={v1(PAYLOAD, SECRET, NOW)}"
        assert compute_signature(PAYLOAD, SECRET, NOW) == v1(PAYLOAD, SECRET, NOW)


class TestVerifySignature:
    def test_accepts_a_valid_signature_and_returns_its_timestamp(self):
        assert verify_signature(PAYLOAD, sign_payload(PAYLOAD, SECRET, NOW), SECRET, now=NOW) == NOW

    def test_accepts_any_of_several_v1_signatures_and_ignores_v0(self):
        header = f"t={NOW},v1={'0' * 64},v1={v1(PAYLOAD, SECRET, NOW)},v0={'f' * 64}"
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW) == NOW

    def test_accepts_spaces_and_scheme_order(self):
        header = f"v1={v1(PAYLOAD, SECRET, NOW)} , t={NOW}"
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW) == NOW

    def test_refuses_a_signature_made_with_another_secret(self):
        with pytest.raises(InvalidSignature) as caught:
            verify_signature(PAYLOAD, sign_payload(PAYLOAD, "whsec_other", NOW), SECRET, now=NOW)
        assert caught.value.status == 400
        assert caught.value.code == "invalid_signature"
        assert caught.value.reason == "no matching signature"

    def test_refuses_a_modified_payload(self):
        header = sign_payload(PAYLOAD, SECRET, NOW)
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD.replace(b"succeeded", b"failed"), header, SECRET, now=NOW)

    def test_refuses_a_signature_moved_to_another_timestamp(self):
        forged = f"t={NOW + 1},v1={v1(PAYLOAD, SECRET, NOW)}"
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD, forged, SECRET, now=NOW)

    @pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
    def test_refuses_stale_and_future_timestamps(self, offset):
        header = sign_payload(PAYLOAD, SECRET, NOW + offset)
        with pytest.raises(InvalidSignature) as caught:
            verify_signature(PAYLOAD, header, SECRET, now=NOW)
        assert caught.value.reason == "timestamp outside tolerance"

    @pytest.mark.parametrize("offset", [-300, 0, 300])
    def test_accepts_timestamps_within_the_tolerance(self, offset):
        header = sign_payload(PAYLOAD, SECRET, NOW + offset)
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW) == NOW + offset

    def test_tolerance_can_be_changed(self):
        header = sign_payload(PAYLOAD, SECRET, NOW - 10)
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD, header, SECRET, tolerance=5, now=NOW)

    def test_uses_the_clock_when_now_is_not_given(self):
        import time

        timestamp = int(time.time())
        assert verify_signature(PAYLOAD, sign_payload(PAYLOAD, SECRET, timestamp), SECRET) == timestamp

    @pytest.mark.parametrize("header", [None, "", "   "])
    def test_refuses_a_missing_header(self, header):
        with pytest.raises(InvalidSignature) as caught:
            verify_signature(PAYLOAD, header, SECRET, now=NOW)
        assert caught.value.reason == "malformed header"

    @pytest.mark.parametrize(
        "header",
        [
            "garbage",
            f"t={NOW}",  # no signature
            "v1=" + "a" * 64,  # no timestamp
            f"t=abc,v1={'a' * 64}",
            f"t=-{NOW},v1={'a' * 64}",
            f"t=١٢٣,v1={'a' * 64}",  # non-ASCII digits
            f"t={NOW},t={NOW},v1={'a' * 64}",  # two timestamps
            f"t={NOW},v1",
            f"t={NOW};v1={'a' * 64}",
        ],
    )
    def test_refuses_a_malformed_header(self, header):
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD, header, SECRET, now=NOW)

    def test_a_v0_signature_alone_is_not_enough(self):
        header = f"t={NOW},v0={v1(PAYLOAD, SECRET, NOW)}"
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD, header, SECRET, now=NOW)

    def test_an_empty_secret_is_a_configuration_error(self):
        with pytest.raises(ValueError):
            verify_signature(PAYLOAD, sign_payload(PAYLOAD, "", NOW), "", now=NOW)

    def test_the_message_is_translatable_text(self):
        with pytest.raises(InvalidSignature) as caught:
            verify_signature(PAYLOAD, "garbage", SECRET, now=NOW)
        assert str(caught.value) == "The Stripe-Signature header is missing or malformed."


class TestSignatureProperties:
    @given(
        payload=st.binary(max_size=512),
        secret=st.text(min_size=1, max_size=40),
        timestamp=st.integers(0, 10**11),
    )
    def test_what_sign_payload_signs_verifies(self, payload, secret, timestamp):
        assert (
            verify_signature(payload, sign_payload(payload, secret, timestamp), secret, now=timestamp)
            == timestamp
        )

    @given(payload=st.binary(max_size=256), extra=st.binary(min_size=1, max_size=16))
    def test_any_change_to_the_payload_is_caught(self, payload, extra):
        header = sign_payload(payload, SECRET, NOW)
        with pytest.raises(InvalidSignature):
            verify_signature(payload + extra, header, SECRET, now=NOW)

    @given(header=st.text(max_size=200))
    def test_arbitrary_headers_only_ever_raise_invalid_signature(self, header):
        with pytest.raises(InvalidSignature):
            verify_signature(PAYLOAD, header, SECRET, now=NOW)
