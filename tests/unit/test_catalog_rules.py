"""Catalog rules that need no database: prices typed in yuan become exact fen (Decimal, never
float), stocks are whole numbers in range, net weights in 斤/kg/g become whole grams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import MAX_PRICE_FEN, MAX_STOCK
from services import catalog
from services.errors import ValidationError


def refused(fn, *args) -> dict:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        fn(*args)
    return info.value.field_errors


class TestPriceInYuan:
    @pytest.mark.parametrize(
        ("typed", "fen"),
        [
            ("12.50", 1250),
            ("12.5", 1250),
            ("12", 1200),
            ("0.01", 1),
            (" 3.3 ", 330),
            ("１２.５", 1250),  # full-width digits from a Chinese keyboard
            ("¥8.80", 880),
            ("￥8.8", 880),
            ("8.8元", 880),
            ("1,280.00", 128000),
            ("100000", MAX_PRICE_FEN),
            ("0.29", 29),  # float(0.29) * 100 is 28.999999999999996
            ("1.15", 115),
        ],
    )
    def test_exact_fen(self, typed, fen):
        assert catalog.parse_yuan(typed) == fen

    @pytest.mark.parametrize(
        "typed",
        ["", "abc", "-1", "-0.5", "12.345", "1e3", "nan", "inf", "12..5", ".5", "0x10", "12.5.0", "<b>9</b>"],
    )
    def test_not_a_price(self, typed):
        assert "price_fen" in refused(catalog.parse_yuan, typed)

    @pytest.mark.parametrize("typed", ["0", "0.00", "100000.01", "999999999"])
    def test_zero_and_absurd_prices(self, typed):
        errors = refused(catalog.parse_yuan, typed)
        assert "between" in str(errors["price_fen"][0])

    @given(st.integers(min_value=1, max_value=MAX_PRICE_FEN))
    def test_any_fen_amount_round_trips_through_its_yuan_text(self, fen):
        assert catalog.parse_yuan(f"{fen // 100}.{fen % 100:02d}") == fen


class TestStock:
    @pytest.mark.parametrize(("typed", "n"), [("0", 0), ("100", 100), ("１００", 100), ("1,000", 1000)])
    def test_whole_numbers(self, typed, n):
        assert catalog.parse_count(typed) == n

    @pytest.mark.parametrize("typed", ["", "-5", "1.5", "ten", "1e3", str(MAX_STOCK + 1), "9" * 30])
    def test_refused(self, typed):
        assert "stock" in refused(catalog.parse_count, typed)


class TestNetWeight:
    @pytest.mark.parametrize(
        ("typed", "unit", "grams"),
        [
            ("5", "jin", 2500),
            ("2.5", "kg", 2500),
            ("0.3", "jin", 150),
            ("750", "g", 750),
            ("１０", "jin", 5000),
        ],
    )
    def test_whole_grams(self, typed, unit, grams):
        assert catalog.parse_weight_g(typed, unit) == grams

    def test_empty_is_no_weight(self):
        assert catalog.parse_weight_g("", "jin") is None
        assert catalog.parse_weight_g(None, "kg") is None

    @pytest.mark.parametrize(
        ("typed", "unit"),
        [
            ("0.001", "jin"),
            ("0", "kg"),
            ("-1", "kg"),
            ("abc", "jin"),
            ("5", "ton"),
            ("2000", "kg"),
            ("0.5", "g"),
        ],
    )
    def test_refused(self, typed, unit):
        assert "net_weight_g" in refused(catalog.parse_weight_g, typed, unit)

