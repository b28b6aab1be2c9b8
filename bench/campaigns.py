"""The campaign issue's figures (issue 13): `make bench B=campaigns`.

Pricing (services/orders/promotions.py, `price_cart`), pure computation, no database. One
realistic cart is priced again and again:

- 20 lines from 4 sellers (a 茂名 lychee farm, a 梅州 tea and pomelo farm, a 大埔 honey
  cooperative, a 从化 rice mill), 1 to 6 units each at 3.50 to 128.00 yuan, with their counties,
  categories and certified / GI flags;
- 5 overlapping campaigns, all live at once (a line may fall under four of them):
  1. a fixed price on four products (lychee 糯米糍, 桂味, pomelo, honey) with a per-buyer limit of
     5 units, the buyer having bought 2 lychees at that price before (`Buyer.prior_units`);
  2. 9折 (10 % off, `PercentOff` 1000 bps) on every product of 大埔县 (441422), overlapping the
     fixed price on the honey (the lower line amount wins);
  3. 满减 per seller: 满100减20, 满200减50 (`TierOff`, `TierBasis.SELLER`), every line;
  4. 满减 across the campaign spanning sellers: 满300减30, 满600减80 (`TierBasis.CAMPAIGN`) on
     certified products, competing with 3 for the same lines (one tier rule per line, the larger
     first);
  5. a first-order discount of 15.00 yuan (the buyer's first order).

Figures, one per line as `name: value`:

- `pricing_carts_per_s_no_campaign`: carts priced per second with no rule (`price_cart(lines,
  [])`: sorting, the breakdown built, no discount);
- `pricing_carts_per_s_campaigns`: the same cart under the 5 campaigns;
- `pricing_campaign_ratio`: the second over the first (the issue's target: >= 0.5).

Both are measured in the same run, in interleaved rounds (no campaign, campaigns, no campaign, …;
BENCH_CAMPAIGN_ROUNDS, default 9, each about BENCH_CAMPAIGN_ROUND_S seconds, default 0.3), so a
burst of other work on the machine falls on both; each figure is the median of its rounds, and
`pricing_campaign_ratio_rounds_min` / `_max` give the spread of the ratio round by round. Time is
this process's CPU time (`time.process_time`), not the wall clock: on the shared machine other
processes took turns on the cores and moved wall-clock figures by ±30 %; the pricing is one
thread of pure computation, so its CPU time is what a cart costs. One core, one process; absolute
figures depend on the machine, the ratio does less.

Each group of figures is a function yielding (name, value) pairs; main() prints them all.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from services.orders.promotions import (  # noqa: E402
    Buyer,
    CartLine,
    FirstOrderOff,
    FixedPrice,
    Funding,
    PercentOff,
    PricedCart,
    Rule,
    Scope,
    TierBasis,
    TierOff,
    price_cart,
)

RATIO_TARGET = 0.5

# Sellers and their counties.
MAOMING_LYCHEE, MEIZHOU_TEA, DABU_HONEY, CONGHUA_RICE = 201, 202, 203, 204
GAOZHOU, MEIXIAN, DABU, CONGHUA = "440981", "441403", "441422", "440117"
FRUIT, TEA_CAT, HONEY_CAT, GRAIN = 1, 2, 3, 4

# (product, seller, county, category, unit fen, quantity, certified, gi)
CART: list[tuple[int, int, str, int, int, int, bool, bool]] = [
    (1001, MAOMING_LYCHEE, GAOZHOU, FRUIT, 3_990, 3, True, True),  # 糯米糍 lychee, fixed price
    (1002, MAOMING_LYCHEE, GAOZHOU, FRUIT, 3_590, 2, True, True),  # 桂味 lychee, fixed price
    (1003, MAOMING_LYCHEE, GAOZHOU, FRUIT, 2_800, 1, False, False),
    (1004, MAOMING_LYCHEE, GAOZHOU, FRUIT, 1_250, 4, False, False),
    (1005, MAOMING_LYCHEE, GAOZHOU, FRUIT, 6_800, 1, True, False),
    (2001, MEIZHOU_TEA, MEIXIAN, TEA_CAT, 12_800, 1, True, True),
    (2002, MEIZHOU_TEA, MEIXIAN, TEA_CAT, 8_800, 1, True, False),
    (2003, MEIZHOU_TEA, MEIXIAN, FRUIT, 1_990, 6, True, True),  # 金柚 pomelo, fixed price
    (2004, MEIZHOU_TEA, MEIXIAN, TEA_CAT, 4_500, 2, False, False),
    (2005, MEIZHOU_TEA, MEIXIAN, TEA_CAT, 350, 5, False, False),
    (3001, DABU_HONEY, DABU, HONEY_CAT, 6_800, 2, True, True),  # honey: fixed price and 9折
    (3002, DABU_HONEY, DABU, HONEY_CAT, 4_200, 1, True, False),
    (3003, DABU_HONEY, DABU, HONEY_CAT, 2_600, 3, False, False),
    (3004, DABU_HONEY, DABU, TEA_CAT, 9_900, 1, False, True),
    (3005, DABU_HONEY, DABU, FRUIT, 1_500, 2, False, False),
    (4001, CONGHUA_RICE, CONGHUA, GRAIN, 5_990, 2, True, False),
    (4002, CONGHUA_RICE, CONGHUA, GRAIN, 3_200, 1, False, False),
    (4003, CONGHUA_RICE, CONGHUA, GRAIN, 8_800, 1, True, True),
    (4004, CONGHUA_RICE, CONGHUA, GRAIN, 1_800, 3, False, False),
    (4005, CONGHUA_RICE, CONGHUA, FRUIT, 2_200, 2, False, False),
]


def cart_lines() -> list[CartLine]:
    return [
        CartLine(
            key=f"line-{i:02}",
            product_id=product,
            seller_id=seller,
            unit_list_fen=unit,
            quantity=qty,
            category_id=category,
            county_code=county,
            certified=certified,
            gi=gi,
        )
        for i, (product, seller, county, category, unit, qty, certified, gi) in enumerate(CART)
    ]


def campaigns() -> list[Rule]:
    return [
        FixedPrice(
            "c1-fixed",
            1,
            2_990,
            scope=Scope(product_ids=frozenset({1001, 1002, 2003, 3001})),
            funding=Funding.shared(5_000),
            per_buyer_limit=5,
        ),
        PercentOff(
            "c2-dabu-90", 2, 1_000, scope=Scope(county_codes=frozenset({DABU})), funding=Funding.seller()
        ),
        TierOff("c3-seller-mj", 3, ((10_000, 2_000), (20_000, 5_000)), basis=TierBasis.SELLER),
        TierOff(
            "c4-campaign-mj",
            4,
            ((30_000, 3_000), (60_000, 8_000)),
            basis=TierBasis.CAMPAIGN,
            scope=Scope(certified_only=True),
            funding=Funding.shared(7_000),
        ),
        FirstOrderOff("c5-first", 5, 1_500, funding=Funding.platform()),
    ]


BUYER = Buyer(first_order=True, prior_units={("c1-fixed", 1001): 2})


def _rate(work: Callable[[], PricedCart], count: int) -> float:
    """Carts per second of this process's CPU time (see the module docstring)."""
    start = time.process_time()
    for _ in range(count):
        work()
    return count / (time.process_time() - start)


def pricing_figures() -> Iterator[tuple[str, object]]:
    """Carts priced per second with and without the 5 campaigns, interleaved rounds, medians."""
    rounds = int(os.environ.get("BENCH_CAMPAIGN_ROUNDS", "9"))
    round_s = float(os.environ.get("BENCH_CAMPAIGN_ROUND_S", "0.3"))
    lines, rules = cart_lines(), campaigns()

    def plain() -> PricedCart:
        return price_cart(lines, [], BUYER)

    def priced() -> PricedCart:
        return price_cart(lines, rules, BUYER)

    cart = priced()  # what the figures price: shown so a change of the cart shows
    yield "pricing_cart_lines", len(cart.lines)
    yield "pricing_cart_rules_applied", len(cart.applied)
    yield "pricing_cart_list_fen", cart.list_fen
    yield "pricing_cart_paid_fen", cart.paid_fen
    # Calibrate each kind to about round_s per round (after a warm-up).
    counts = {}
    for name, work in (("plain", plain), ("priced", priced)):
        counts[name] = max(10, int(_rate(work, 200) * round_s))
    no_campaign: list[float] = []
    with_campaigns: list[float] = []
    for _ in range(rounds):
        no_campaign.append(_rate(plain, counts["plain"]))
        with_campaigns.append(_rate(priced, counts["priced"]))
    plain_rate, priced_rate = statistics.median(no_campaign), statistics.median(with_campaigns)
    yield "pricing_carts_per_s_no_campaign", round(plain_rate)
    yield "pricing_carts_per_s_campaigns", round(priced_rate)
    ratio = priced_rate / plain_rate
    yield "pricing_campaign_ratio", round(ratio, 3)
    per_round = [w / n for w, n in zip(with_campaigns, no_campaign, strict=True)]
    yield "pricing_campaign_ratio_rounds_min", round(min(per_round), 3)
    yield "pricing_campaign_ratio_rounds_max", round(max(per_round), 3)
    yield "pricing_campaign_ratio_target_met", "yes" if ratio >= RATIO_TARGET else "no"


def main() -> int:
    for key, value in pricing_figures():
        print(f"{key}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
