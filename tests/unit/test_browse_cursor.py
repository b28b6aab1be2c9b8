"""Keyset cursors (services.browse): opaque, round-trip exactly, and refuse anything else."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.browse import InvalidCursor, Sort, decode_cursor, encode_cursor


class TestCursors:
    @given(
        key=st.integers(min_value=0, max_value=10_000_000),
        product_id=st.integers(min_value=1, max_value=2**31 - 1),
        sort=st.sampled_from([Sort.PRICE_ASC, Sort.PRICE_DESC, Sort.SALES, Sort.RELEVANCE]),
    )
    def test_round_trip(self, key, product_id, sort):
        assert decode_cursor(encode_cursor(sort, key, product_id), sort) == (key, product_id)

    def test_a_publication_time_round_trips_to_the_microsecond(self):
        when = datetime(2026, 11, 26, 2, 35, 7, 123456, tzinfo=UTC)
        assert decode_cursor(encode_cursor(Sort.NEW, when, 7), Sort.NEW) == (when, 7)

    def test_it_is_url_safe_and_unpadded(self):
        cursor = encode_cursor(Sort.NEW, datetime.now(UTC), 123456)
        assert cursor.isascii() and not set(cursor) & set("+/=")

    @pytest.mark.parametrize(
        "raw",
        [
            b"not json",
            b"{}",
            b'["new"]',
            b'["price_asc", 1, 1]',  # another order's
            b'["new", "2026-01-01", 1]',  # no time zone
            b'["new", null, 1]',
            b'["new", "2026-01-01T00:00:00+00:00", 0]',
            b'["new", "2026-01-01T00:00:00+00:00", "1"]',
            b'["new", "2026-01-01T00:00:00+00:00", true]',
        ],
    )
    def test_anything_else_is_an_invalid_cursor(self, raw):
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, Sort.NEW)

    @given(st.text(max_size=300))
    def test_random_text_never_raises_anything_but_invalid_cursor(self, text):
        with contextlib.suppress(InvalidCursor):
            decode_cursor(text, Sort.PRICE_ASC)

    @pytest.mark.parametrize("key", [1.5, float("inf"), True, "12", 2**70])
    def test_price_keys_are_whole_numbers(self, key):
        raw = (
            json.dumps(["price_asc", key, 1]).encode() if key != float("inf") else b'["price_asc", 1e999, 1]'
        )
        with pytest.raises(InvalidCursor):
            decode_cursor(base64.urlsafe_b64encode(raw).decode(), Sort.PRICE_ASC)
