"""Ledger rules that need no database: a refund splits exactly over seller, commission and
shipping, and any run of partial refunds stays within each part; a posting must balance;
money in the bank's file is exact yuan."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import AccountKind
from services import ledger
from services.ledger import Line, Parts, RefundTooLarge, UnbalancedTransaction

FEN = st.integers(min_value=0, max_value=50_000_000)


@st.composite
def sub_order_parts(draw: st.DrawFn) -> Parts:
    items = draw(FEN)
    commission = draw(st.integers(min_value=0, max_value=items))
    return Parts(items - commission, commission, draw(st.integers(min_value=0, max_value=2_000_000)))


@st.composite
def parts_and_refunds(draw: st.DrawFn) -> tuple[Parts, list[int]]:
    """A sub-order's parts and a run of partial refunds that together stay within its total."""
    parts = draw(sub_order_parts())
    left = sum(parts)
    refunds = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if left == 0:
            break
        amount = draw(st.one_of(st.integers(min_value=1, max_value=min(left, 50)), st.integers(1, left)))
        refunds.append(amount)
        left -= amount
    return parts, refunds


class TestAllocateRefund:
    @given(parts=sub_order_parts(), data=st.data())
    def test_parts_add_up_to_the_refund_exactly_and_are_never_negative(self, parts, data):
        amount = data.draw(st.integers(min_value=0, max_value=sum(parts)))
        split = ledger.allocate_refund(parts, amount)
        assert sum(split) == amount
        assert all(0 <= s <= p for s, p in zip(split, parts, strict=True))

    @given(case=parts_and_refunds())
    def test_partial_refunds_never_take_more_than_any_part_nor_the_total(self, case):
        parts, refunds = case
        taken = Parts(0, 0, 0)
        for amount in refunds:
            split = ledger.allocate_refund(parts, amount, already_refunded=taken)
            assert sum(split) == amount and min(split) >= 0
            taken = Parts(*(t + s for t, s in zip(taken, split, strict=True)))
            assert all(t <= p for t, p in zip(taken, parts, strict=True))
        assert sum(taken) == sum(refunds) <= sum(parts)

    @given(case=parts_and_refunds())
    def test_refunding_all_that_is_left_takes_every_part_back_whole(self, case):
        parts, refunds = case
        taken = Parts(0, 0, 0)
        for amount in refunds:
            split = ledger.allocate_refund(parts, amount, already_refunded=taken)
            taken = Parts(*(t + s for t, s in zip(taken, split, strict=True)))
        rest = ledger.allocate_refund(parts, sum(parts) - sum(taken), already_refunded=taken)
        assert Parts(*(t + r for t, r in zip(taken, rest, strict=True))) == parts

    @given(parts=sub_order_parts(), data=st.data())
    def test_each_part_is_within_one_fen_of_its_exact_share(self, parts, data):
        amount = data.draw(st.integers(min_value=0, max_value=sum(parts)))
        split = ledger.allocate_refund(parts, amount)
        for s, p in zip(split, parts, strict=True):
            exact = Decimal(amount) * p / sum(parts) if sum(parts) else Decimal(0)
            assert abs(s - exact) < 1

    def test_a_known_split(self):
        # 90 yuan of goods (9 commission) and 10 shipping: a 50-yuan refund is half of each.
        assert ledger.allocate_refund(Parts(8100, 900, 1000), 5000) == Parts(4050, 450, 500)
        # 1 fen cannot be split: it goes to the largest fraction (the seller's 81 %).
        assert ledger.allocate_refund(Parts(8100, 900, 1000), 1) == Parts(1, 0, 0)

    def test_a_part_already_given_back_gets_nothing_more(self):
        # Shipping was refunded in full before: the rest comes from the goods only.
        assert ledger.allocate_refund(
            Parts(8100, 900, 1000), 900, already_refunded=Parts(0, 0, 1000)
        ) == Parts(810, 90, 0)

    @given(case=parts_and_refunds())
    def test_more_than_what_is_left_is_refused(self, case):
        parts, refunds = case
        with pytest.raises(RefundTooLarge):
            ledger.allocate_refund(parts, sum(parts) + 1)
        taken = ledger.allocate_refund(parts, refunds[0]) if refunds else Parts(0, 0, 0)
        with pytest.raises(RefundTooLarge):
            ledger.allocate_refund(parts, sum(parts) - sum(taken) + 1, already_refunded=taken)

    def test_already_refunded_beyond_a_part_is_a_bug(self):
        with pytest.raises(ValueError):
            ledger.allocate_refund(Parts(100, 0, 0), 1, already_refunded=Parts(0, 1, 0))


def lines(*amounts: int) -> list[Line]:
    return [Line(f"acc{i}", AccountKind.ASSET, None, a) for i, a in enumerate(amounts)]


class TestCheckLines:
    @given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=6))
    def test_unbalanced_lines_are_refused(self, amounts):
        if sum(amounts) == 0:
            amounts = [*amounts, 1]
        with pytest.raises(UnbalancedTransaction):
            ledger.check_lines(lines(*amounts))

    @given(st.lists(st.integers(min_value=-(10**9), max_value=10**9).filter(bool), min_size=1, max_size=6))
    def test_balanced_lines_pass_with_zero_lines_dropped(self, amounts):
        checked = ledger.check_lines(lines(*amounts, 0, -sum(amounts)))
        assert sum(line.amount_fen for line in checked) == 0
        assert all(line.amount_fen != 0 for line in checked)
        assert len(checked) == len(amounts) + (1 if sum(amounts) else 0)

    @pytest.mark.parametrize(
        "amounts",
        [(), (0,), (0, 0), (5,), (5, 0), (0, -5, 0)],
    )
    def test_fewer_than_two_non_zero_lines_are_refused(self, amounts):
        with pytest.raises(UnbalancedTransaction):
            ledger.check_lines(lines(*amounts))

    @pytest.mark.parametrize("amount", [1.5, Decimal("1"), True, "100"])
    def test_amounts_must_be_whole_fen(self, amount):
        with pytest.raises(UnbalancedTransaction):
            ledger.check_lines([*lines(-1), Line("x", AccountKind.ASSET, None, amount)])

    def test_plain_tuples_are_lines_too(self):
        checked = ledger.check_lines(
            [
                ("buyer_payments_clearing", AccountKind.ASSET, None, 500),
                ("seller_payable:3", AccountKind.LIABILITY, 3, -500),
            ]
        )
        assert checked == [
            Line.fixed("buyer_payments_clearing", 500),
            Line.owned("seller_payable", 3, -500),
        ]


class TestYuan:
    @pytest.mark.parametrize(
        ("fen", "text"),
        [(0, "0.00"), (1, "0.01"), (10, "0.10"), (12345, "123.45"), (100, "1.00"), (-250, "-2.50")],
    )
    def test_exact_two_decimals(self, fen, text):
        assert f"{ledger.yuan(fen):.2f}" == text
        assert ledger.yuan(fen) == Decimal(text)

    @pytest.mark.parametrize("text", ["=HYPERLINK(1)", "+1", "-1", "@x"])
    def test_text_that_a_spreadsheet_would_run_is_quoted(self, text):
        assert ledger._cell_text(text) == "'" + text
        assert ledger._cell_text("荔枝园") == "荔枝园"
