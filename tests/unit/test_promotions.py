"""The campaign pricing engine (services/orders/promotions.py): worked examples from issue 13,
edge cases and properties (never negative, never above list, 满减 only from its threshold, exact
splits and funding, exact refunds, deterministic whatever the order of lines and rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.errors import ValidationError
from services.orders.promotions import (
    AppliedRule,
    Buyer,
    CartLine,
    Discount,
    DiscountKind,
    FirstOrderOff,
    FixedPrice,
    Funding,
    LineBreakdown,
    PercentOff,
    PricedCart,
    Rule,
    Scope,
    TierBasis,
    TierOff,
    check_campaign_price,
    price_cart,
    refund_line,
    split_largest_remainder,
)

LYCHEE, HONEY, TEA, RICE = 11, 12, 13, 14
MAOMING_FARM, MEIZHOU_FARM = 101, 102
TIERS = ((10_000, 2_000), (20_000, 5_000))  # 满100减20, 满200减50


def line(key: str, product: int, seller: int, unit: int, qty: int = 1, **kw: object) -> CartLine:
    return CartLine(key=key, product_id=product, seller_id=seller, unit_list_fen=unit, quantity=qty, **kw)  # type: ignore[arg-type]


def refund_all_unit_by_unit(cart: PricedCart) -> tuple[int, int, int]:
    """(buyer, platform, seller) fen given back by refunding every unit one at a time."""
    buyer = platform = seller = 0
    for priced in cart.lines:
        for done in range(priced.quantity):
            r = refund_line(priced, 1, already_refunded=done)
            assert 0 <= r.buyer_fen <= priced.unit_list_fen
            buyer, platform, seller = buyer + r.buyer_fen, platform + r.platform_fen, seller + r.seller_fen
    return buyer, platform, seller


class TestWorkedExamples:
    def test_lychee_at_a_fixed_campaign_price(self):
        rule = FixedPrice(
            "lychee", 1, 1990, scope=Scope(product_ids=frozenset({LYCHEE})), funding=Funding.seller()
        )
        cart = price_cart(
            [line("a", LYCHEE, MAOMING_FARM, 3000, 3), line("b", HONEY, MAOMING_FARM, 5000)], [rule]
        )
        lychee = cart.line("a")
        assert (lychee.list_fen, lychee.paid_fen, lychee.discounted_units) == (9000, 5970, 3)
        (d,) = lychee.discounts
        assert (d.kind, d.amount_fen, d.platform_fen, d.seller_fen) == (
            DiscountKind.FIXED_PRICE,
            3030,
            0,
            3030,
        )
        assert cart.line("b").discounts == () and cart.line("b").paid_fen == 5000
        assert (cart.list_fen, cart.paid_fen, cart.platform_fen) == (14000, 10970, 0)

    def test_tiers_per_seller_the_highest_reached_applies_once(self):
        rule = TierOff("mj", 2, TIERS, basis=TierBasis.SELLER)
        cart = price_cart(
            [
                line("a1", LYCHEE, MAOMING_FARM, 5000, 3),  # seller A: 150.00 → 满100减20
                line("b1", TEA, MEIZHOU_FARM, 12_000),  # seller B: 250.00 → 满200减50
                line("b2", RICE, MEIZHOU_FARM, 6_500, 2),
            ],
            [rule],
        )
        by_seller = {a.seller_id: (a.basis_fen, a.amount_fen) for a in cart.applied}
        assert by_seller == {MAOMING_FARM: (15_000, 2_000), MEIZHOU_FARM: (25_000, 5_000)}
        # Seller B's 50.00 over its two lines in proportion: 120/250 and 130/250 of it.
        assert cart.line("b1").discount_fen == 2_400 and cart.line("b2").discount_fen == 2_600
        assert cart.paid_by_seller() == {MAOMING_FARM: 13_000, MEIZHOU_FARM: 20_000}

    def test_a_tier_exactly_at_its_threshold_applies_and_one_fen_below_does_not(self):
        rule = TierOff("mj", 2, TIERS)
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 10_000)], [rule]).paid_fen == 8_000
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 9_999)], [rule]).paid_fen == 9_999
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 20_000)], [rule]).paid_fen == 15_000

    def test_a_campaign_tier_spanning_two_sellers_splits_across_sub_orders_exactly(self):
        rule = TierOff("gd", 3, TIERS, basis=TierBasis.CAMPAIGN, funding=Funding.shared(3_000))
        cart = price_cart(
            [
                line("c", TEA, MEIZHOU_FARM, 3_334),
                line("a", LYCHEE, MAOMING_FARM, 3_333),
                line("b", HONEY, MAOMING_FARM, 3_333),
            ],
            [rule],
        )
        (applied,) = cart.applied
        assert (applied.amount_fen, applied.platform_fen, applied.basis_fen) == (2_000, 600, 10_000)
        # Exact shares 666.6, 666.6, 666.8: floors 666 each, the 2 fen left to .8 (c), then the
        # tie at .6 to the smaller key (a).
        assert [(k, amt) for k, amt, _p in applied.split] == [("a", 667), ("b", 666), ("c", 667)]
        assert sum(p for _k, _a, p in applied.split) == 600
        for priced in cart.lines:
            (d,) = priced.discounts
            assert d.platform_fen + d.seller_fen == d.amount_fen
        assert cart.paid_by_seller() == {MAOMING_FARM: 6_666 - 1_333, MEIZHOU_FARM: 3_334 - 667}
        assert (cart.platform_fen, cart.seller_fen) == (600, 1_400)

    def test_per_buyer_limit_units_beyond_it_pay_the_list_price(self):
        flash = FixedPrice("flash", 4, 990, scope=Scope(product_ids=frozenset({LYCHEE})), per_buyer_limit=2)
        buyer = Buyer(prior_units={("flash", LYCHEE): 1})
        cart = price_cart([line("a", LYCHEE, MAOMING_FARM, 1_500, 3)], [flash], buyer)
        assert cart.line("a").discounted_units == 1
        assert cart.paid_fen == 990 + 2 * 1_500
        # Used up already: list price for all.
        spent = Buyer(prior_units={("flash", LYCHEE): 2})
        assert price_cart([line("a", LYCHEE, MAOMING_FARM, 1_500, 3)], [flash], spent).paid_fen == 4_500

    def test_first_order_discount_only_on_a_first_order_platform_funded(self):
        rule = FirstOrderOff("new", 5, 1_000)
        lines = [line("a", LYCHEE, MAOMING_FARM, 3_000), line("b", TEA, MEIZHOU_FARM, 1_000)]
        assert price_cart(lines, [rule], Buyer(first_order=False)).paid_fen == 4_000
        cart = price_cart(lines, [rule], Buyer(first_order=True))
        assert cart.paid_fen == 3_000 and cart.platform_fen == 1_000
        assert (cart.line("a").discount_fen, cart.line("b").discount_fen) == (750, 250)
        # Never more than what is left.
        small = price_cart([line("a", TEA, MEIZHOU_FARM, 600)], [rule], Buyer(first_order=True))
        assert small.paid_fen == 0 and small.applied[0].amount_fen == 600

    def test_stacking_unit_price_then_tiers_on_the_discounted_subtotal_then_first_order(self):
        rules: list[Rule] = [
            PercentOff("ten", 6, 1_000),
            TierOff("mj", 2, TIERS),
            FirstOrderOff("new", 5, 500),
        ]
        first = Buyer(first_order=True)
        # 110.00 less 10 % is 99.00: below 满100, no tier.
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 11_000)], rules, first).paid_fen == 9_900 - 500
        cart = price_cart([line("a", TEA, MEIZHOU_FARM, 12_000)], rules, first)
        kinds = [(d.kind, d.amount_fen) for d in cart.line("a").discounts]
        assert kinds == [
            (DiscountKind.PERCENT_OFF, 1_200),
            (DiscountKind.TIER, 2_000),
            (DiscountKind.FIRST_ORDER, 500),
        ]
        assert cart.paid_fen == 8_300

    def test_the_lowest_unit_price_rule_wins_and_only_one_applies(self):
        scope = Scope(product_ids=frozenset({LYCHEE}))
        rules: list[Rule] = [FixedPrice("fix", 1, 2_500, scope=scope), PercentOff("pct", 6, 2_000)]
        cart = price_cart(
            [line("a", LYCHEE, MAOMING_FARM, 3_000, 2), line("b", TEA, MEIZHOU_FARM, 1_000)], rules
        )
        assert [d.rule_id for d in cart.line("a").discounts] == ["pct"]  # 24.00 < 25.00
        assert cart.line("a").paid_fen == 4_800 and cart.line("b").paid_fen == 800

    def test_percent_rounds_per_unit_half_a_fen_down(self):
        half = PercentOff("pct", 6, 500)  # 5 % of 0.10 is half a fen: rounds down to no discount
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 10, 3)], [half]).paid_fen == 30
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 11, 3)], [half]).paid_fen == 30  # 0.55 → 1 fen off

    def test_overlapping_tiers_one_per_line_the_larger_first(self):
        small = TierOff("a-small", 2, ((5_000, 500),), basis=TierBasis.CAMPAIGN)
        big = TierOff("b-big", 3, TIERS, scope=Scope(seller_ids=frozenset({MEIZHOU_FARM})))
        cart = price_cart(
            [line("a", TEA, MEIZHOU_FARM, 10_000), line("b", LYCHEE, MAOMING_FARM, 6_000)], [small, big]
        )
        assert [(a.rule_id, a.amount_fen) for a in cart.applied] == [("b-big", 2_000), ("a-small", 500)]
        assert [d.rule_id for d in cart.line("a").discounts] == ["b-big"]
        assert [d.rule_id for d in cart.line("b").discounts] == ["a-small"]

    def test_scope_counties_categories_certified_and_gi(self):
        scope = Scope(county_codes=frozenset({"440923"}), category_ids=frozenset({7}), gi_only=True)
        rule = PercentOff("gi", 7, 1_000, scope=scope)
        lines = [
            line("in", LYCHEE, MAOMING_FARM, 1_000, county_code="440923", category_id=7, gi=True),
            line("not-gi", HONEY, MAOMING_FARM, 1_000, county_code="440923", category_id=7),
            line("other-county", TEA, MEIZHOU_FARM, 1_000, county_code="441422", category_id=7, gi=True),
        ]
        cart = price_cart(lines, [rule])
        assert [p.paid_fen for p in cart.lines] == [900, 1_000, 1_000]
        certified = PercentOff("c", 7, 1_000, scope=Scope(certified_only=True))
        assert price_cart([line("a", TEA, MEIZHOU_FARM, 1_000, certified=True)], [certified]).paid_fen == 900


class TestEdgesAndBadInput:
    def test_empty_cart(self):
        cart = price_cart(
            [], [TierOff("mj", 2, TIERS), FirstOrderOff("new", 5, 500)], Buyer(first_order=True)
        )
        assert cart.lines == () and cart.applied == ()
        assert (cart.list_fen, cart.paid_fen, cart.platform_fen) == (0, 0, 0)

    @pytest.mark.parametrize("qty", [0, -1])
    def test_zero_or_negative_quantity_is_refused(self, qty):
        with pytest.raises(ValidationError, match="Quantity must be at least 1"):
            line("a", TEA, MEIZHOU_FARM, 1_000, qty)

    def test_a_campaign_price_below_zero_or_above_list_is_refused(self):
        with pytest.raises(ValidationError, match="below zero"):
            FixedPrice("x", 1, -1)
        with pytest.raises(ValidationError, match="above the list price"):
            check_campaign_price(1_000, 1_001)
        with pytest.raises(ValidationError, match="below zero"):
            check_campaign_price(1_000, -1)
        check_campaign_price(1_000, 1_000)
        check_campaign_price(1_000, 0)

    def test_a_fixed_price_above_a_lowered_list_price_does_not_apply(self):
        cart = price_cart([line("a", LYCHEE, MAOMING_FARM, 1_500, 2)], [FixedPrice("x", 1, 1_990)])
        assert cart.paid_fen == 3_000 and cart.line("a").discounts == ()

    def test_a_free_campaign_price(self):
        cart = price_cart([line("a", LYCHEE, MAOMING_FARM, 1_500, 2)], [FixedPrice("x", 1, 0)])
        assert cart.paid_fen == 0 and refund_all_unit_by_unit(cart) == (0, 3_000, 0)

    @pytest.mark.parametrize(
        "tiers",
        [
            (),
            ((20_000, 5_000), (10_000, 2_000)),
            ((10_000, 5_000), (20_000, 2_000)),
            ((100, 200),),
            ((100, 0),),
        ],
    )
    def test_tiers_out_of_order_or_impossible_are_refused(self, tiers):
        with pytest.raises(ValidationError, match="Tiers must rise"):
            TierOff("mj", 2, tiers)

    def test_other_bad_rules(self):
        with pytest.raises(ValidationError):
            PercentOff("p", 1, 0)
        with pytest.raises(ValidationError):
            PercentOff("p", 1, 10_001)
        with pytest.raises(ValidationError):
            Funding.shared(10_001)
        with pytest.raises(ValidationError):
            FixedPrice("f", 1, 100, per_buyer_limit=0)
        with pytest.raises(ValidationError):
            FirstOrderOff("n", 1, 0)
        with pytest.raises(ValueError, match="rule ids"):
            price_cart([], [PercentOff("p", 1, 10), PercentOff("p", 2, 20)])
        with pytest.raises(ValueError, match="line keys"):
            price_cart([line("a", TEA, 1, 100), line("a", RICE, 1, 100)], [])

    def test_refund_more_than_is_left_is_refused(self):
        priced = price_cart([line("a", TEA, MEIZHOU_FARM, 1_000, 2)], []).line("a")
        with pytest.raises(ValidationError, match="Only 1 of these units"):
            refund_line(priced, 2, already_refunded=1)

    def test_refund_of_some_units_of_a_line_with_a_tier_piece(self):
        rule = TierOff("mj", 2, ((1_000, 667),), funding=Funding.shared(3_000))
        priced = price_cart([line("a", TEA, MEIZHOU_FARM, 400, 3)], [rule]).line("a")
        assert priced.paid_fen == 1_200 - 667
        first = refund_line(priced, 1)
        # 667 fen over 3 units: 222 each, the spare fen on unit 0.
        assert (first.buyer_fen, first.discounts[0].amount_fen) == (400 - 223, 223)
        rest = refund_line(priced, 2, already_refunded=1)
        assert first.buyer_fen + rest.buyer_fen == priced.paid_fen
        assert first.platform_fen + rest.platform_fen == 200  # 30 % of 667, rounded down

    def test_split_largest_remainder(self):
        assert split_largest_remainder(10, [("b", 1), ("a", 1), ("c", 1)]) == {"a": 4, "b": 3, "c": 3}
        assert split_largest_remainder(0, [("a", 0)]) == {"a": 0}
        with pytest.raises(ValueError):
            split_largest_remainder(1, [("a", 0)])


# -- properties ---------------------------------------------------------------------------

SCOPES = st.builds(
    Scope,
    product_ids=st.frozensets(st.integers(1, 4), max_size=2),
    seller_ids=st.frozensets(st.integers(1, 3), max_size=2),
    county_codes=st.frozensets(st.sampled_from(["440923", "441422"]), max_size=1),
    category_ids=st.frozensets(st.integers(1, 3), max_size=1),
    certified_only=st.booleans(),
    gi_only=st.booleans(),
) | st.just(Scope())
FUNDINGS = st.builds(Funding, st.integers(0, 10_000))
LIMITS = st.none() | st.integers(1, 5)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    n = draw(st.integers(1, 3))
    thresholds = sorted(draw(st.sets(st.integers(3, 60_000), min_size=n, max_size=n)))
    offs = sorted(draw(st.sets(st.integers(1, thresholds[0]), min_size=n, max_size=n)))
    return tuple(zip(thresholds, offs, strict=True))


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    makers = [
        st.builds(
            PercentOff, st.just(""), st.integers(1, 3), st.integers(1, 10_000), SCOPES, FUNDINGS, LIMITS
        ),
        st.builds(
            FixedPrice, st.just(""), st.integers(1, 3), st.integers(0, 30_000), SCOPES, FUNDINGS, LIMITS
        ),
        st.builds(
            TierOff,
            st.just(""),
            st.integers(1, 3),
            tier_lists(),
            st.sampled_from(TierBasis),
            SCOPES,
            FUNDINGS,
        ),
        st.builds(FirstOrderOff, st.just(""), st.integers(1, 3), st.integers(1, 20_000), SCOPES, FUNDINGS),
    ]
    drawn = draw(st.lists(st.one_of(makers), max_size=6))
    # Unique ids: r0, r1, ... (the engine refuses duplicates).
    return [type(r)(**{**r.__dict__, "rule_id": f"r{i}"}) for i, r in enumerate(drawn)]


CART_LINES = st.lists(
    st.builds(
        CartLine,
        key=st.sampled_from("abcdefgh"),
        product_id=st.integers(1, 4),
        seller_id=st.integers(1, 3),
        unit_list_fen=st.integers(0, 30_000) | st.integers(0, 30),
        quantity=st.integers(1, 12),
        category_id=st.integers(1, 3),
        county_code=st.sampled_from(["440923", "441422"]),
        certified=st.booleans(),
        gi=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda cl: cl.key,
)
BUYERS = st.builds(
    Buyer,
    first_order=st.booleans(),
    prior_units=st.dictionaries(
        st.tuples(st.sampled_from(["r0", "r1", "r2"]), st.integers(1, 4)), st.integers(0, 6)
    ),
)


class TestProperties:
    @given(CART_LINES, rule_sets(), BUYERS)
    @settings(max_examples=300)
    def test_prices_never_negative_never_above_list_and_funding_exact(self, lines, rules, buyer):
        cart = price_cart(lines, rules, buyer)
        for priced in cart.lines:
            assert 0 <= priced.paid_fen <= priced.list_fen
            kinds = [d.kind for d in priced.discounts]
            assert sum(k in (DiscountKind.PERCENT_OFF, DiscountKind.FIXED_PRICE) for k in kinds) <= 1
            assert kinds.count(DiscountKind.TIER) <= 1 and kinds.count(DiscountKind.FIRST_ORDER) <= 1
            for d in priced.discounts:
                assert d.amount_fen > 0 and d.platform_fen >= 0 and d.seller_fen >= 0
                assert d.platform_fen + d.seller_fen == d.amount_fen
        assert sum(a.kind == DiscountKind.FIRST_ORDER for a in cart.applied) <= (
            1 if buyer.first_order else 0
        )
        assert cart.paid_fen + cart.discount_fen == cart.list_fen
        assert cart.platform_fen + cart.seller_fen == cart.discount_fen

    @given(CART_LINES, rule_sets(), BUYERS)
    @settings(max_examples=300)
    def test_tiers_only_from_their_threshold_and_every_split_exact(self, lines, rules, buyer):
        cart = price_cart(lines, rules, buyer)
        by_id = {r.rule_id: r for r in rules}
        for applied in cart.applied:
            rule = by_id[applied.rule_id]
            if isinstance(rule, TierOff):
                assert applied.basis_fen >= rule.tiers[0][0]
                assert applied.amount_fen == rule.off_for(applied.basis_fen)
            assert 0 < applied.amount_fen <= applied.basis_fen
            assert applied.platform_fen == rule.funding.platform_share(applied.amount_fen)
            assert sum(amount for _k, amount, _p in applied.split) == applied.amount_fen
            assert sum(p for _k, _a, p in applied.split) == applied.platform_fen
            for key, amount, platform in applied.split:
                assert 0 <= platform <= amount
                assert any(
                    d.rule_id == rule.rule_id and d.amount_fen == amount for d in cart.line(key).discounts
                )

    @given(CART_LINES, rule_sets(), BUYERS)
    @settings(max_examples=200)
    def test_per_buyer_limits_hold(self, lines, rules, buyer):
        cart = price_cart(lines, rules, buyer)
        taken: dict[tuple[str, int], int] = {}
        for priced in cart.lines:
            for d in priced.discounts:
                if d.kind in (DiscountKind.PERCENT_OFF, DiscountKind.FIXED_PRICE):
                    k = (d.rule_id, priced.product_id)
                    taken[k] = taken.get(k, 0) + priced.discounted_units
        by_id = {r.rule_id: r for r in rules}
        for (rule_id, product_id), units in taken.items():
            limit = getattr(by_id[rule_id], "per_buyer_limit", None)
            if limit is not None:
                assert units + buyer.prior_units.get((rule_id, product_id), 0) <= limit

    @given(CART_LINES, rule_sets(), BUYERS, st.randoms(use_true_random=False))
    @settings(max_examples=200)
    def test_same_result_whatever_the_order_of_lines_and_rules(self, lines, rules, buyer, rnd):
        once = price_cart(lines, rules, buyer)
        assert price_cart(lines, rules, buyer) == once
        lines, rules = list(lines), list(rules)
        rnd.shuffle(lines)
        rnd.shuffle(rules)
        assert price_cart(lines, rules, buyer) == once

    @given(CART_LINES, rule_sets(), BUYERS)
    @settings(max_examples=300)
    def test_refunding_every_unit_returns_exactly_what_was_paid_and_the_subsidy(self, lines, rules, buyer):
        cart = price_cart(lines, rules, buyer)
        assert refund_all_unit_by_unit(cart) == (cart.paid_fen, cart.platform_fen, cart.seller_fen)

    @given(CART_LINES, rule_sets(), BUYERS, st.data())
    @settings(max_examples=200)
    def test_any_run_of_partial_refunds_adds_up_exactly(self, lines, rules, buyer, data):
        cart = price_cart(lines, rules, buyer)
        for priced in cart.lines:
            done = buyer_back = 0
            per_discount = [0] * len(priced.discounts)
            per_platform = [0] * len(priced.discounts)
            while done < priced.quantity:
                k = data.draw(st.integers(1, priced.quantity - done))
                r = refund_line(priced, k, already_refunded=done)
                assert 0 <= r.buyer_fen <= k * priced.unit_list_fen
                for i, dr in enumerate(r.discounts):
                    assert dr.amount_fen >= 0 and dr.platform_fen >= 0 and dr.seller_fen >= 0
                    per_discount[i] += dr.amount_fen
                    per_platform[i] += dr.platform_fen
                buyer_back += r.buyer_fen
                done += k
            assert buyer_back == priced.paid_fen
            assert per_discount == [d.amount_fen for d in priced.discounts]
            assert per_platform == [d.platform_fen for d in priced.discounts]


# -- the optimised engine against a straightforward reference ------------------------------
# `_reference_price_cart` is price_cart as first written (commit af0a561), kept here verbatim in
# substance: every rule re-scanned, every line checked against every scope, every group summed
# again on every pass. It only reads the rules' fields (not their methods) and splits with its own
# largest-remainder, so a change to the engine cannot change the reference with it.


def _ref_covers(scope: Scope, cl: CartLine) -> bool:
    return (
        (not scope.product_ids or cl.product_id in scope.product_ids)
        and (not scope.seller_ids or cl.seller_id in scope.seller_ids)
        and (not scope.county_codes or cl.county_code in scope.county_codes)
        and (not scope.category_ids or cl.category_id in scope.category_ids)
        and (not scope.certified_only or cl.certified)
        and (not scope.gi_only or cl.gi)
    )


def _ref_unit_price(rule: PercentOff | FixedPrice, unit_list_fen: int) -> int:
    if isinstance(rule, PercentOff):
        return unit_list_fen - (unit_list_fen * rule.off_bps + 4_999) // 10_000
    return min(rule.unit_price_fen, unit_list_fen)


def _ref_off_for(rule: TierOff, subtotal_fen: int) -> int:
    return max((off for threshold, off in rule.tiers if subtotal_fen >= threshold), default=0)


def _ref_platform(funding: Funding, amount_fen: int) -> int:
    return amount_fen * funding.platform_bps // 10_000


def _ref_split(amount_fen: int, weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    total = sum(w for _key, w in weights)
    if total == 0:
        assert amount_fen == 0
        return {key: 0 for key, _w in weights}
    shares = {key: amount_fen * w // total for key, w in weights}
    order = sorted(weights, key=lambda kw: (-(amount_fen * kw[1] % total), kw[0]))
    for key, _w in order[: amount_fen - sum(shares.values())]:
        shares[key] += 1
    return shares


@dataclass
class _RefWork:
    line: CartLine
    discounts: list[Discount] = field(default_factory=list)
    discounted_units: int = 0

    @property
    def amount(self) -> int:
        return self.line.list_fen - sum(d.amount_fen for d in self.discounts)


def _ref_spread(
    rule: TierOff | FirstOrderOff,
    kind: DiscountKind,
    amount: int,
    works: Sequence[_RefWork],
    seller: int | None,
) -> AppliedRule:
    basis = sum(w.amount for w in works)
    platform = _ref_platform(rule.funding, amount)
    pieces = _ref_split(amount, [(w.line.key, w.amount) for w in works])
    platform_pieces = _ref_split(platform, list(pieces.items()))
    split = []
    for w in works:
        piece, p = pieces[w.line.key], platform_pieces[w.line.key]
        if piece:
            w.discounts.append(Discount(rule.rule_id, rule.campaign_id, kind, piece, p, piece - p))
            split.append((w.line.key, piece, p))
    return AppliedRule(rule.rule_id, rule.campaign_id, kind, amount, platform, basis, seller, tuple(split))


def _reference_price_cart(lines: Iterable[CartLine], rules: Iterable[Rule], buyer: Buyer) -> PricedCart:
    works = [_RefWork(cl) for cl in sorted(lines, key=lambda cl: cl.key)]
    ordered = sorted(rules, key=lambda r: r.rule_id)
    applied: list[AppliedRule] = []

    unit_rules = [r for r in ordered if isinstance(r, PercentOff | FixedPrice)]
    used: dict[tuple[str, int], int] = dict(buyer.prior_units)
    for w in works:
        best: tuple[int, str, PercentOff | FixedPrice, int, int] | None = None
        for rule in unit_rules:
            if not _ref_covers(rule.scope, w.line):
                continue
            unit = _ref_unit_price(rule, w.line.unit_list_fen)
            if unit >= w.line.unit_list_fen:
                continue
            units = w.line.quantity
            if rule.per_buyer_limit is not None:
                units = min(
                    units, max(0, rule.per_buyer_limit - used.get((rule.rule_id, w.line.product_id), 0))
                )
            if units == 0:
                continue
            line_amount = w.line.list_fen - units * (w.line.unit_list_fen - unit)
            if best is None or (line_amount, rule.rule_id) < best[:2]:
                best = (line_amount, rule.rule_id, rule, unit, units)
        if best is None:
            continue
        _amount, _id, rule, unit, units = best
        if rule.per_buyer_limit is not None:
            key = (rule.rule_id, w.line.product_id)
            used[key] = used.get(key, 0) + units
        off = units * (w.line.unit_list_fen - unit)
        kind = DiscountKind.PERCENT_OFF if isinstance(rule, PercentOff) else DiscountKind.FIXED_PRICE
        platform = _ref_platform(rule.funding, off)
        w.discounts.append(Discount(rule.rule_id, rule.campaign_id, kind, off, platform, off - platform))
        w.discounted_units = units

    tier_rules = [r for r in ordered if isinstance(r, TierOff)]
    claimed: set[str] = set()
    while True:
        candidate: tuple[int, str, int, TierOff, list[_RefWork]] | None = None
        for tier_rule in tier_rules:
            groups: dict[int, list[_RefWork]] = {}
            for w in works:
                if w.line.key not in claimed and w.amount > 0 and _ref_covers(tier_rule.scope, w.line):
                    group = w.line.seller_id if tier_rule.basis == TierBasis.SELLER else -1
                    groups.setdefault(group, []).append(w)
            for group, members in groups.items():
                off = _ref_off_for(tier_rule, sum(m.amount for m in members))
                if off and (candidate is None or (-off, tier_rule.rule_id, group) < candidate[:3]):
                    candidate = (-off, tier_rule.rule_id, group, tier_rule, members)
        if candidate is None:
            break
        neg_off, _rid, group, tier_rule, members = candidate
        seller = group if tier_rule.basis == TierBasis.SELLER else None
        applied.append(_ref_spread(tier_rule, DiscountKind.TIER, -neg_off, members, seller))
        claimed.update(m.line.key for m in members)

    if buyer.first_order:
        first: tuple[int, str, FirstOrderOff, list[_RefWork]] | None = None
        for fo_rule in (r for r in ordered if isinstance(r, FirstOrderOff)):
            members = [w for w in works if w.amount > 0 and _ref_covers(fo_rule.scope, w.line)]
            off = min(fo_rule.off_fen, sum(m.amount for m in members))
            if off and (first is None or (-off, fo_rule.rule_id) < first[:2]):
                first = (-off, fo_rule.rule_id, fo_rule, members)
        if first is not None:
            neg_off, _rid, fo_rule, members = first
            applied.append(_ref_spread(fo_rule, DiscountKind.FIRST_ORDER, -neg_off, members, None))

    return PricedCart(
        lines=tuple(
            LineBreakdown(
                key=w.line.key,
                product_id=w.line.product_id,
                seller_id=w.line.seller_id,
                quantity=w.line.quantity,
                unit_list_fen=w.line.unit_list_fen,
                discounts=tuple(w.discounts),
                discounted_units=w.discounted_units,
            )
            for w in works
        ),
        applied=tuple(applied),
    )


# Bigger carts and rule sets than above, so that scopes overlap, several lines of one product
# share a limit, several tier rules (per seller and per campaign) compete for the same lines and
# claiming some lines drops other groups below their tiers.
MANY_SCOPES = (
    st.builds(
        Scope,
        product_ids=st.frozensets(st.integers(1, 5), max_size=3),
        seller_ids=st.frozensets(st.integers(1, 4), max_size=3),
        county_codes=st.frozensets(st.sampled_from(["440923", "441422", "440117"]), max_size=2),
        category_ids=st.frozensets(st.integers(1, 3), max_size=2),
        certified_only=st.booleans(),
        gi_only=st.booleans(),
    )
    | st.just(Scope())
    | st.builds(Scope, seller_ids=st.frozensets(st.integers(1, 4), min_size=1, max_size=2))
    | st.builds(Scope, product_ids=st.frozensets(st.integers(1, 5), min_size=1, max_size=3))
    | st.builds(Scope, county_codes=st.frozensets(st.sampled_from(["440923", "441422"]), min_size=1))
    | st.builds(Scope, certified_only=st.just(True))
)


@st.composite
def many_rules(draw: st.DrawFn) -> list[Rule]:
    campaign = st.integers(1, 4)
    tiers = tier_lists() | st.sampled_from([TIERS, ((30_000, 3_000), (60_000, 8_000)), ((5_000, 500),)])
    makers = [
        st.builds(
            PercentOff,
            st.just(""),
            campaign,
            st.integers(1, 10_000) | st.just(1_000),
            MANY_SCOPES,
            FUNDINGS,
            LIMITS,
        ),
        st.builds(FixedPrice, st.just(""), campaign, st.integers(0, 30_000), MANY_SCOPES, FUNDINGS, LIMITS),
        st.builds(TierOff, st.just(""), campaign, tiers, st.sampled_from(TierBasis), MANY_SCOPES, FUNDINGS),
        st.builds(TierOff, st.just(""), campaign, tiers, st.sampled_from(TierBasis), MANY_SCOPES, FUNDINGS),
        st.builds(FirstOrderOff, st.just(""), campaign, st.integers(1, 20_000), MANY_SCOPES, FUNDINGS),
    ]
    drawn = draw(st.lists(st.one_of(makers), max_size=9))
    ids = draw(st.permutations([f"r{i}" for i in range(len(drawn))]))  # ids not in drawing order
    return [type(r)(**{**r.__dict__, "rule_id": rule_id}) for r, rule_id in zip(drawn, ids, strict=True)]


MANY_LINES = st.lists(
    st.builds(
        CartLine,
        key=st.text("abcdefghijklmnop", min_size=1, max_size=2),
        product_id=st.integers(1, 5),
        seller_id=st.integers(1, 4),
        unit_list_fen=st.integers(0, 30_000) | st.integers(0, 30) | st.sampled_from([1_990, 3_000, 10_000]),
        quantity=st.integers(1, 12),
        category_id=st.none() | st.integers(1, 3),
        county_code=st.none() | st.sampled_from(["440923", "441422", "440117"]),
        certified=st.booleans(),
        gi=st.booleans(),
    ),
    max_size=20,
    unique_by=lambda cl: cl.key,
)
MANY_BUYERS = st.builds(
    Buyer,
    first_order=st.booleans(),
    prior_units=st.dictionaries(
        st.tuples(st.sampled_from([f"r{i}" for i in range(9)]), st.integers(1, 5)), st.integers(0, 6)
    ),
)


class TestAgainstTheReference:
    @given(MANY_LINES, many_rules(), MANY_BUYERS)
    @settings(max_examples=600)
    def test_the_engine_gives_what_the_reference_gives(self, lines, rules, buyer):
        assert price_cart(lines, rules, buyer) == _reference_price_cart(lines, rules, buyer)

    def test_the_reference_can_tell_a_difference(self):
        """The comparison above compares everything: one fen moved between lines is seen."""
        rules: list[Rule] = [
            TierOff("mj", 2, TIERS, basis=TierBasis.CAMPAIGN),
            FirstOrderOff("new", 5, 1_001),
        ]
        lines = [line("a", TEA, MEIZHOU_FARM, 6_000), line("b", LYCHEE, MAOMING_FARM, 6_000, 3)]
        ours = _reference_price_cart(lines, rules, Buyer(first_order=True))
        assert price_cart(lines, rules, Buyer(first_order=True)) == ours
        a, b = ours.lines
        moved = (
            a.discounts[0],
            Discount(**{**vars(b.discounts[1]), "amount_fen": b.discounts[1].amount_fen - 1}),
        )
        assert PricedCart((a, LineBreakdown(**{**vars(b), "discounts": moved})), ours.applied) != ours

    def test_a_market_day_cart_under_five_overlapping_campaigns(self):
        """The cart of bench/campaigns.py in miniature: four sellers, every kind of rule at once."""
        lines = [
            line(f"l{i:02}", product, seller, unit, qty, county_code=county, category_id=cat, certified=cert)
            for i, (product, seller, unit, qty, county, cat, cert) in enumerate(
                [
                    (1, 1, 3_990, 3, "440923", 1, True),
                    (2, 1, 3_590, 2, "440923", 1, True),
                    (3, 1, 1_250, 4, "440923", 1, False),
                    (4, 2, 12_800, 1, "441422", 2, True),
                    (5, 2, 4_500, 2, "441422", 2, False),
                    (1, 3, 6_800, 2, "441422", 3, True),
                    (2, 3, 2_600, 3, "441422", 3, False),
                    (3, 4, 5_990, 2, "440117", 4, True),
                    (4, 4, 1_800, 3, "440117", 4, False),
                ]
            )
        ]
        rules: list[Rule] = [
            FixedPrice("fix", 1, 2_990, scope=Scope(product_ids=frozenset({1, 2})), per_buyer_limit=5),
            PercentOff("dabu", 2, 1_000, scope=Scope(county_codes=frozenset({"441422"}))),
            TierOff("seller", 3, TIERS),
            TierOff(
                "all", 4, ((30_000, 3_000), (60_000, 8_000)), TierBasis.CAMPAIGN, Scope(certified_only=True)
            ),
            FirstOrderOff("new", 5, 1_500),
        ]
        buyer = Buyer(first_order=True, prior_units={("fix", 1): 2})
        cart = price_cart(lines, rules, buyer)
        assert cart == _reference_price_cart(lines, rules, buyer)
        # The campaign-wide 满300减30 (30.00 off) goes first and claims the certified lines; no
        # seller's other lines then reach 满100 on their own.
        assert [(a.rule_id, a.amount_fen) for a in cart.applied] == [("all", 3_000), ("new", 1_500)]
        # Product 1: 3 units at the fixed price in l00 use up the limit (2 bought before), so l05
        # gets 大埔's 9折 instead.
        assert cart.line("l00").discounted_units == 3
        assert [d.rule_id for d in cart.line("l05").discounts] == ["dabu", "all", "new"]
        assert cart.paid_fen == 71_710
