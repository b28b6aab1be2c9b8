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

The same through the product's price path (`quote_figures`), on PostgreSQL: the cart page, the
checkout and the API price a cart with `services.orders.cart.quote` (the products read, the running
campaigns' rules built, the buyer's held units and first order looked up, the engine, the parcels'
shipping). bench/checkout.py's database (`gdm_bench_quote`, dropped afterwards) and five campaigns
made through services.campaigns.manage over a 20-line cart of 4 products from each of 5 sellers
(`_quote_world` says which); a product is in one campaign at a time, so each line is under one
campaign's rules. The same cart, the same rows, quoted at the instant before the campaigns start
and a minute after, 60 quotes a kind in interleaved rounds, this process's CPU time, medians:
`quote_carts_per_s_no_campaign`, `quote_carts_per_s_campaigns`, `quote_campaign_ratio`.

The flash sale (`flash_figures`), on PostgreSQL under gunicorn with the Redis gate: issue 13's
"500 concurrent buyers, 100 units: flash_sale_oversold 0, flash_sale_p99_ms <= 1000, and the same
crowd on a product without a campaign in the same run". bench/checkout.py's machinery is reused
(imported, not copied): its database (build_database, into `gdm_bench_campaigns`, dropped
afterwards; 16 products, 501 buyers with API tokens), its latency-only fake payment gateway at 0 ms,
its server (start_server: 2 gevent workers of up to 1,000 connections, docs/deploy.md's shape;
the pool per worker, the per-buyer caps off), its wrk runner and CPU accounting, and
bench/checkout.lua. Added onto that database: a product of 10,000 units (59.90) signed up in a
running campaign (created by an admin through services.campaigns.manage, starts a minute before
the real now and ends an hour after, in
China's time, published, the sign-up at 9.90 with quota 100 and a per-buyer limit of 1, approved),
and a product of 100 units (59.90) in no campaign. REDIS_URL (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/0) is put in the environment start_server passes on, so the app installs
the gate (marketplace/gateways.py); the gate's counter for the item is deleted first (its key is
named after the database URL, which every run reuses).

The crowd: 500 wrk threads, one connection and one buyer each (500 distinct users), each POSTs
/api/v1/orders once (checkout.lua's "once" mode): 1 unit, a unique idempotency key, and the
`expected_total_fen` the cart showed (PUT /api/v1/cart by another buyer: 25.90 at the campaign
price, 75.90 at list price, shipping included). Every thread's first request waits for one moment
on CLOCK_MONOTONIC 8 s ahead (wrk's delay(); wrk creates its threads one by one, 2-8 s for 500 on
the loaded machine), so the crowd asks at once. wrk is stopped when every buyer has had an answer.
First a 4-second warm-up with 64 clients on the unlimited products, then the flash-sale crowd,
then (the server idle again) the same 500 buyers on the plain product. Figures for both, prefixed
`flash_sale_` and `plain_crowd_`:

- `_buyers`, `_units` (the quota, the plain stock), `_answers` (must be 500);
- `_orders` (201s), `_sold_out_409` (409s) and `_409_codes` (per error code: the flash sale's
  `campaign_quota_gone` from the gate or the quota's conditional UPDATE, `price_changed` when the
  quote already priced the product at list price after the quota was used up, the plain product's
  `out_of_stock`);
- `_p50_ms`, `_p99_ms`, `_max_ms` over ALL answers (the crowd's experience), and `_orders_p99_ms`,
  `_409_p50_ms`, `_409_p99_ms` over the 201s and the 409s; times measured by the script from each
  request sent to its answer;
- `_arrival_spread_ms`: first request sent to last sent (a few ms: the crowd asked at once);
- `_errors`: answers neither 2xx nor 409, socket errors (timeouts included) and buyers without an
  answer: must be 0 or the figures are void; `_without_client_secret`: 201s without a payment;
- `_app_cpu_ms_per_answer`, `_postgres_cpu_ms_per_answer`; the CPU shares of the machine of wrk,
  the app, PostgreSQL and the gateway, and the foreign share (other people's work on the shared
  machine) as bench/checkout.py counts them; `_cpu_floor_ms`: the run's app + PostgreSQL CPU over
  the cores, the last answer's latency if the run had every core to itself with nothing waiting;
  `_worker_cpu_split`: each gunicorn worker's share of the app's CPU during the crowd, in percent
  (the floor assumes an even split; the busier worker answers its last buyer later), and
  `_connections_per_worker`: the buyers' connections each worker held (in the same order);
- `_db_connections_busy_max`, `_db_longest_transaction_ms` (bench/checkout.py's sampler), and
  `_db_busy_connections_waiting_on`: pg_stat_activity every 20 ms, of the app's connections in a
  transaction or running, the shares waiting for a row lock (`lock`), waiting for the app's next
  statement (`app`: idle in transaction, the app thread not running) and running (`running`);
- from the database: `flash_sale_units_at_campaign_price` (order lines' discounted_units),
  `_units_at_list_price`, `_quota_used`, `flash_sale_oversold` (units at the campaign price beyond
  the quota, plus quota_used beyond it: must be 0), `_stock_left` and `_stock_balanced` (stock >= 0,
  stock + reserved + sold = the initial stock, units ordered = reserved + sold), and
  `plain_crowd_oversold` (units ordered beyond 100, plus stock below 0);
- `flash_sale_gate_counter_seen`: the gate's Redis counter as sampled during the run (e.g.
  "100..0"; "never" means the gate was off and the figures are not the gate's);
- `flash_sale_vs_plain_p99_ratio` and `flash_sale_p99_target_met` (p99 <= 1000 ms);
- `_refused_alone_ms` and `_refused_alone_app_cpu_ms`: 20 refused checkouts one after the other on
  the idle server afterwards (median latency, the app's CPU per request), `_refused_alone_answers`
  their status and code: what one refusal costs with nobody else asking.

BENCH_FLASH_PROFILE=1 also runs 20 refused flash-sale checkouts in this process (Flask's test
client) under cProfile and prints the top of the profile to stderr.

The server setup is bench/checkout.py's, unchanged: the shape docs/deploy.md gives PostgreSQL
deployments (gevent workers). Until the fifth session of issue 13 it was 2 gthread workers x 64
threads; docs/benchmarks.md has the runs of both. The crowd's p99 stays near its CPU floor
(`_cpu_floor_ms`): the CPU of 500 answers, not the server's threads or pool, sets it.

Parts: `python bench/campaigns.py [pricing] [quote] [flash]` (all without arguments), or
BENCH_CAMPAIGNS=flash for `make bench B=campaigns`.

Each group of figures is a function yielding (name, value) pairs; main() prints them all.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from domain import clock  # noqa: E402
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


# --- the same through the product's price path: cart.quote on PostgreSQL --------------------------

QUOTE_DATABASE = "gdm_bench_quote"


def _quote_world(url: str) -> dict[str, Any]:
    """bench/checkout.py's database (its sellers, buyers and products: 16 sellers, citrus), and
    five campaigns as admins run them (services/campaigns/manage.py), all in one window, over a
    20-line cart of 4 products from each of 5 sellers: a fixed price (80 %) with a per-buyer limit
    of 5; 9折; 满100减20/满200减50 per seller; 满300减30/满600减80 across the campaign; a 15.00
    first-order discount (the last three on sign-up prices of 95 %: a sign-up names a price unless
    its campaign takes a percentage off). A product is in one campaign at a time (the product's rule), so each
    line is under one campaign's rules: the campaigns overlap in time and in the cart."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from domain import Product, Role, User
    from marketplace.db import make_engine
    from services import accounts
    from services.campaigns import manage

    base = _base()
    built = base.build_database(url, products=64, buyers=4)
    engine = make_engine(url)
    start = clock.now() + timedelta(hours=1)
    with Session(engine, expire_on_commit=False) as session:
        admin = accounts.create_user(
            session, phone="13600000002", password="bench-" + secrets.token_hex(8), roles=(Role.ADMIN,)
        )
        products = session.scalars(select(Product).where(Product.id.in_(built["product_ids"]))).all()
        by_seller: dict[int, list[Product]] = {}
        for product in products:
            by_seller.setdefault(product.seller_id, []).append(product)
        sellers = sorted(by_seller)[:5]
        kinds = [
            {"name": "限时特价", "price": True},
            {"name": "大埔九折", "percent_off": "10"},
            {"name": "店铺满减", "tiers": "满100减20, 满200减50"},
            {"name": "跨店满减", "tiers": "满300减30, 满600减80", "tier_basis": "campaign"},
            {"name": "新客立减", "first_order_off_yuan": "15"},
        ]
        cart: dict[int, int] = {}
        for n, (seller_id, kind) in enumerate(zip(sellers, kinds, strict=True)):
            made = manage.create_campaign(
                session,
                admin,
                manage.CampaignInput(
                    name=f"广货网上行·{kind['name']}",
                    starts_at=_china(start),
                    ends_at=_china(start + timedelta(hours=2)),
                    percent_off=kind.get("percent_off", ""),
                    tiers=kind.get("tiers", ""),
                    tier_basis=kind.get("tier_basis", "seller"),
                    first_order_off_yuan=kind.get("first_order_off_yuan", ""),
                ),
            )
            manage.publish(session, admin, made.id)
            seller = session.get(User, seller_id)
            for i, product in enumerate(by_seller[seller_id][:4]):
                # A sign-up names its price unless the campaign takes a percentage off.
                fixed = bool(kind.get("price"))
                share = 80 if fixed else 95
                price = "" if kind.get("percent_off") else f"{product.price_fen * share // 100 / 100:.2f}"
                signup = manage.SignupInput(campaign_price_yuan=price, per_buyer_limit="5" if fixed else "")
                item = manage.sign_up(session, seller, made.id, product.id, signup)
                manage.decide(session, admin, item.id, True)
                cart[product.id] = 1 + (n + i) % 4
    engine.dispose()
    return {"cart": cart, "start": start}


def quote_figures() -> Iterator[tuple[str, object]]:
    """cart.quote of the 20-line cart, as the cart page, the checkout and the API price it, with
    the five campaigns running and at the instant before they start (the same rows), in
    interleaved rounds of this process's CPU time, medians."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from domain import User
    from marketplace.db import make_engine
    from services.orders import cart as carts
    from services.orders.pricing import CheckoutSettings

    base = _base()
    url = base.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + QUOTE_DATABASE
    base._admin(f'DROP DATABASE IF EXISTS "{QUOTE_DATABASE}" WITH (FORCE)')
    base._admin(f'CREATE DATABASE "{QUOTE_DATABASE}"')
    engine = None
    try:
        world = _quote_world(url)
        engine = make_engine(url)
        rounds = int(os.environ.get("BENCH_CAMPAIGN_ROUNDS", "9"))
        settings = CheckoutSettings()
        during, before = world["start"] + timedelta(minutes=1), world["start"] - timedelta(seconds=1)
        with Session(engine) as session:
            buyer = session.scalars(select(User).where(User.phone.like("139%")).limit(1)).first()
            # A request's buyer was just loaded by its authentication: not expired with the rest.
            session.expunge(buyer)

            def quote(now: datetime) -> Any:
                session.expire_all()  # each quote reads its rows afresh, as a request does
                return carts.quote(session, world["cart"], settings, buyer=buyer, now=now)

            shown = quote(during)
            yield "quote_cart_lines", len(shown.lines)
            yield "quote_cart_discounted_lines", sum(1 for line in shown.lines if line.discount_fen)
            yield "quote_cart_list_fen", shown.list_fen
            yield "quote_cart_paid_fen", shown.items_fen
            count = 60
            plain, priced = [], []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(count):
                    quote(before)
                plain.append(count / (time.process_time() - started))
                started = time.process_time()
                for _ in range(count):
                    quote(during)
                priced.append(count / (time.process_time() - started))
                session.commit()
        plain_rate, priced_rate = statistics.median(plain), statistics.median(priced)
        yield "quote_carts_per_s_no_campaign", round(plain_rate)
        yield "quote_carts_per_s_campaigns", round(priced_rate)
        yield "quote_campaign_ratio", round(priced_rate / plain_rate, 3)
    finally:
        if engine is not None:
            engine.dispose()
        base._admin(f'DROP DATABASE IF EXISTS "{QUOTE_DATABASE}" WITH (FORCE)')


# --- the flash sale on PostgreSQL (issue 13): 500 buyers, 100 units ------------------------------

FLASH_DATABASE = "gdm_bench_campaigns"
CROWD = 500  # buyers, each asking once
FLASH_QUOTA = 100  # units at the campaign price
FLASH_STOCK = 10_000  # the flash-sale product's stock: the quota, not the stock, runs out
PLAIN_STOCK = 100  # the product without a campaign: the stock runs out
LIST_FEN, FLASH_PRICE_YUAN = 5_990, "9.90"
CROWD_LEAD_S = 8  # the crowd's first requests wait until wrk has created its threads
CROWD_MAX_S = 60  # wrk's duration and timeout: the run ends when every buyer has had an answer
P99_TARGET_MS = 1000
ALONE = 20  # rejected checkouts one after the other on the idle server (what one costs)


def _base() -> Any:
    """bench/checkout.py: its database, processes, wrk runner and CPU accounting are reused."""
    from bench import checkout

    return checkout


def _china(moment: datetime) -> str:
    return moment.astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _flash_world(url: str, built: dict[str, Any]) -> dict[str, Any]:
    """Onto the built checkout database: the flash-sale product in a running campaign (fixed
    price, quota 100, one per buyer, approved) and the plain product of 100 units; the window is
    the real clock's (a minute ago to an hour on), as the server sees it."""
    from sqlalchemy.orm import Session

    from domain import Product, Role, User
    from marketplace.db import make_engine
    from services import accounts
    from services.campaigns import manage

    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        template = session.get(Product, built["product_ids"][0])
        assert template is not None
        seller = session.get(User, template.seller_id)
        fields = {
            name: getattr(template, name)
            for name in (
                "seller_id", "listed_by_id", "category_id", "description", "origin_code",
                "county_code", "unit", "net_weight_g", "storage_class", "status", "published_at",
                "created_at", "updated_at",
            )
        }  # fmt: skip
        flash = Product(name="高州妃子笑荔枝 秒杀 5斤装", price_fen=LIST_FEN, stock=FLASH_STOCK, **fields)
        plain = Product(name="高州桂味荔枝 限量100箱", price_fen=LIST_FEN, stock=PLAIN_STOCK, **fields)
        session.add_all([flash, plain])
        session.commit()
        admin = accounts.create_user(
            session, phone="13600000001", password="bench-" + secrets.token_hex(8), roles=(Role.ADMIN,)
        )
        now = clock.now()
        campaign = manage.create_campaign(
            session,
            admin,
            manage.CampaignInput(
                name="荔枝节秒杀",
                starts_at=_china(now - timedelta(minutes=1)),
                ends_at=_china(now + timedelta(hours=1)),
            ),
        )
        manage.publish(session, admin, campaign.id)
        item = manage.sign_up(
            session,
            seller,
            campaign.id,
            flash.id,
            manage.SignupInput(
                campaign_price_yuan=FLASH_PRICE_YUAN, quota=str(FLASH_QUOTA), per_buyer_limit="1"
            ),
        )
        manage.decide(session, admin, item.id, True)
        out = {"flash_id": flash.id, "plain_id": plain.id, "item_id": item.id, "campaign_id": campaign.id}
    engine.dispose()
    return out


Quoted = tuple[int, list[int]]  # (expected_total_fen, flash_items) as the cart showed them


def _quoted(base_url: str, token: str, product_id: int) -> Quoted:
    """What the cart shows for one unit (PUT /api/v1/cart): the buyers' expected_total_fen, and
    the flash sales whose price its lines got (their flash_item_id), which the buyers' orders
    name in flash_items as a client does."""
    resp = requests.put(
        base_url + "/api/v1/cart",
        json={"items": [{"product_id": product_id, "quantity": 1}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    resp.raise_for_status()
    cart = resp.json()
    lines = [line for group in cart["groups"] for line in group["lines"]]
    flash = [line["flash_item_id"] for line in lines if line.get("flash_item_id")]
    return int(cart["total_fen"]), flash


class _Waits:
    """What the app's PostgreSQL connections are doing while a crowd runs, every 20 ms: in a
    transaction waiting for a row lock (`lock`), in a transaction waiting for the app to send its
    next statement (`app`: idle in transaction, the app's thread not getting to run), executing
    (`running`), or idle in the pool (`idle`); counted in connection-samples."""

    def __init__(self, url: str, probe: Callable[[], int | None] | None = None) -> None:
        from marketplace.db import make_engine

        self.engine = make_engine(url)
        self.probe = probe  # read each time too (the gate's counter): the values seen
        self.seen: list[int] = []
        self.counts: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Waits:
        self.counts = {"lock": 0, "app": 0, "running": 0, "idle": 0}
        self.seen = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.stop.clear()

    def _run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT state, wait_event_type FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not self.stop.wait(0.02):
                for state, wait in conn.execute(query).all():
                    if wait == "Lock":
                        kind = "lock"
                    elif state == "idle in transaction":
                        kind = "app"
                    elif state == "active":
                        kind = "running"
                    else:
                        kind = "idle"
                    self.counts[kind] += 1
                if self.probe is not None:
                    value = self.probe()
                    if value is not None and (not self.seen or self.seen[-1] != value):
                        self.seen.append(value)

    def shares(self) -> str:
        busy = sum(n for k, n in self.counts.items() if k != "idle") or 1
        return ",".join(f"{k}={self.counts[k] / busy:.2f}" for k in ("lock", "app", "running"))

    def close(self) -> None:
        self.engine.dispose()


def _crowd(
    base: Any,
    base_url: str,
    tokens_file: Path,
    product_id: int,
    tag: str,
    division: str,
    expected: Quoted,
    others: dict[str, Callable[[], int]],
    sampler: Any,
    waits: _Waits,
    connections: Callable[[], str],
) -> dict[str, Any]:
    """CROWD wrk threads, one connection and one buyer each, one checkout each ("once"); wrk is
    stopped when every thread has had its answer. Every answer's status, code, arrival and latency,
    and how the buyers' connections were split between the workers (`connections()`, looked at
    once every thread has started)."""
    most = [0]
    split: list[str] = []

    def all_answered(wrk_pid: int) -> bool:
        # A thread ends after its answer; once the threads have started and only wrk's main
        # thread is left, every buyer has been answered (bench/checkout.py's contended run).
        try:
            tasks = len(os.listdir(f"/proc/{wrk_pid}/task"))
        except OSError:
            return False
        most[0] = max(most[0], tasks)
        if most[0] > CROWD and not split:
            split.append(connections())
        return most[0] > CROWD and tasks <= 1

    # Every thread's first request waits for this moment: wrk creates its 500 threads one after
    # the other (seconds on a loaded machine), and the crowd must ask at once.
    start_us = int((time.monotonic() + CROWD_LEAD_S) * 1e6)
    with sampler, waits:
        r = base.wrk(
            base_url + base.ORDERS_PATH,
            threads=CROWD,
            connections=CROWD,
            duration=CROWD_MAX_S,
            script_args=[
                str(tokens_file),
                str(product_id),
                tag,
                "once",
                division,
                str(CROWD),
                str(expected[0]),
                str(start_us),
                f'"flash_items":[{",".join(map(str, expected[1]))}]',
            ],
            watch=all_answered,
            others=others,
            timeout_s=CROWD_MAX_S,
        )
    r["answers"] = [
        (int(status), code, int(at) / 1e6, int(lat) / 1e6)
        for line in re.findall(r"bench_answers_\d+: ([^\n]*)", r["out"])
        for status, code, at, lat in (entry.split(":") for entry in line.split())
    ]
    r["db_busy"], r["db_open"], r["db_tx_age_ms"] = sampler.busy, sampler.open, sampler.tx_age_ms
    r["db_waits"] = waits.shares()
    r["probed"] = list(waits.seen)
    r["connections"] = split[0] if split else "n/a"
    return r


def _crowd_figures(prefix: str, base: Any, r: dict[str, Any], units: int) -> Iterator[tuple[str, object]]:
    answers = r["answers"]
    latencies = [lat for _s, _c, _a, lat in answers]
    placed = [lat for s, _c, _a, lat in answers if 200 <= s < 300]
    refused = [lat for s, _c, _a, lat in answers if s == 409]
    codes: dict[str, int] = {}
    for status, code, _a, _l in answers:
        if status == 409:
            codes[code] = codes.get(code, 0) + 1
    sent = [at - lat for _s, _c, at, lat in answers]
    errors = sum(1 for s, *_ in answers if not (200 <= s < 300 or s == 409))
    errors += r["socket_errors"] + (CROWD - len(answers))
    pct = base._percentile
    yield f"{prefix}_buyers", CROWD
    yield f"{prefix}_units", units
    yield f"{prefix}_answers", len(answers)
    yield f"{prefix}_orders", len(placed)
    yield f"{prefix}_sold_out_409", len(refused)
    yield f"{prefix}_409_codes", ",".join(f"{c}={n}" for c, n in sorted(codes.items())) or "none"
    yield f"{prefix}_p50_ms", round(pct(latencies, 50) * 1000, 1)
    yield f"{prefix}_p99_ms", round(pct(latencies, 99) * 1000, 1)
    yield f"{prefix}_max_ms", round(max(latencies, default=float("nan")) * 1000, 1)
    yield f"{prefix}_orders_p99_ms", round(pct(placed, 99) * 1000, 1)
    yield f"{prefix}_409_p50_ms", round(pct(refused, 50) * 1000, 1)
    yield f"{prefix}_409_p99_ms", round(pct(refused, 99) * 1000, 1)
    yield f"{prefix}_arrival_spread_ms", round((max(sent) - min(sent)) * 1000, 1) if sent else "n/a"
    yield f"{prefix}_errors", errors
    yield f"{prefix}_without_client_secret", r["missing_secret"]
    n = max(1, len(answers))
    yield f"{prefix}_app_cpu_ms_per_answer", round(r["app_cpu_s"] / n * 1000, 1)
    yield f"{prefix}_postgres_cpu_ms_per_answer", round(r["postgres_cpu_s"] / n * 1000, 1)
    ours = ("wrk", "app", "postgres", "gateway")
    for part in ours:
        yield f"{prefix}_{part}_cpu_share", round(base._share(r, part), 3)
    foreign = r["machine_busy"] - sum(base._share(r, part) for part in ours)
    yield f"{prefix}_foreign_cpu_share", round(max(0.0, foreign), 3)
    # The crowd's CPU (app and PostgreSQL) over the machine's cores: how long its work takes
    # with every core its own and nothing waiting, the floor of the last answer's latency.
    yield f"{prefix}_cpu_floor_ms", round((r["app_cpu_s"] + r["postgres_cpu_s"]) / base.CORES * 1000)
    yield f"{prefix}_connections_per_worker", r["connections"]
    workers = [r[name] for name in sorted(r) if re.fullmatch(r"worker\d+_cpu_s", name)]
    if sum(workers):
        yield f"{prefix}_worker_cpu_split", "/".join(str(round(100 * w / sum(workers))) for w in workers)
    yield f"{prefix}_db_connections_busy_max", r["db_busy"]
    yield f"{prefix}_db_longest_transaction_ms", round(r["db_tx_age_ms"], 1)
    yield f"{prefix}_db_busy_connections_waiting_on", r["db_waits"]


def _order_body(product_id: int, key: str, expected: Quoted, division: str) -> dict[str, Any]:
    """POST /api/v1/orders for one unit delivered home, at the total the buyer was shown."""
    return {
        "items": [{"product_id": product_id, "quantity": 1}],
        "idempotency_key": key,
        "expected_total_fen": expected[0],
        "flash_items": expected[1],
        "payment_method": "card",
        "delivery": "home",
        "address": {
            "recipient": "陈小姐",
            "phone": "13912345678",
            "division_code": division,
            "detail": "幸福路8号",
        },
    }


def _alone(
    base: Any, base_url: str, token: str, product_id: int, expected: Quoted, division: str, server_pid: int
) -> tuple[float, float, str]:
    """ALONE checkouts of the sold-out product one after another on the idle server: the median
    latency and the app's CPU per request of a refused checkout, and the answers' codes."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    latencies, codes = [], set()
    base._drain(server_pid)
    ticks = base._ticks(server_pid, children=True)
    for i in range(ALONE):
        body = _order_body(product_id, f"alone-{product_id}-{i}-{secrets.token_hex(3)}", expected, division)
        started = time.perf_counter()
        resp = session.post(base_url + base.ORDERS_PATH, json=body, timeout=30)
        latencies.append(time.perf_counter() - started)
        codes.add(f"{resp.status_code} {resp.json().get('code', '')}".strip())
    cpu = (base._ticks(server_pid, children=True) - ticks) / base.TICKS
    return statistics.median(latencies) * 1000, cpu / ALONE * 1000, ",".join(sorted(codes))


def _profile_refused(
    env: dict[str, str], token: str, product_id: int, expected: Quoted, division: str
) -> None:
    """BENCH_FLASH_PROFILE=1: ALONE refused checkouts of `product_id` through the app in this
    process (Flask's test client, the server's settings) under cProfile; the top of the profile
    goes to stderr. Not a figure: where a refused checkout's time goes."""
    import cProfile
    import pstats

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from marketplace import create_app

        client = create_app().test_client()
        profile = cProfile.Profile()
        for i in range(ALONE + 1):
            body = _order_body(product_id, f"profile-{i}-{secrets.token_hex(3)}", expected, division)
            if i:  # the first one warms up (imports, connections)
                profile.enable()
            client.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
            profile.disable()
        stats = pstats.Stats(profile, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(45)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def flash_figures() -> Iterator[tuple[str, object]]:
    """Issue 13's flash sale under gunicorn on PostgreSQL with the Redis gate: 500 buyers at once
    on 100 units at the campaign price, then the same crowd on 100 units of a product without a
    campaign, in one server (see the module docstring)."""
    import redis
    from sqlalchemy import text

    from marketplace.db import make_engine
    from marketplace.gateways import build_flash_gate

    base = _base()
    if not Path(base.WRK).exists():
        raise SystemExit("wrk is missing: run `make bench-deps` (Debian's wrk package)")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(redis_url).ping()  # no Redis, no gate: stop here rather than measure without
    url = base.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + FLASH_DATABASE
    base._admin(f'DROP DATABASE IF EXISTS "{FLASH_DATABASE}" WITH (FORCE)')
    base._admin(f'CREATE DATABASE "{FLASH_DATABASE}"')
    instance = Path(tempfile.mkdtemp(prefix="gdm-bench-campaigns-"))
    procs: list[Any] = []
    sampler = None
    try:
        started = time.perf_counter()
        built = base.build_database(url, products=16, buyers=CROWD + 1)
        world = _flash_world(url, built)
        yield "flash_build_s", round(time.perf_counter() - started, 1)
        scout, crowd = built["tokens"][0], built["tokens"][1 : CROWD + 1]
        crowd_file = instance / "crowd.txt"
        crowd_file.write_text("\n".join(crowd) + "\n")
        all_file = instance / "tokens.txt"
        all_file.write_text("\n".join(built["tokens"]) + "\n")
        # A counter left in Redis by an earlier run on a database of the same name would be read
        # as this quota's: dropped (the keys are named after the database URL, as the app names them).
        gate = build_flash_gate({"REDIS_URL": redis_url, "DATABASE_URL": url})
        assert gate is not None
        gate.forget(world["item_id"])  # type: ignore[attr-defined]

        gateway_proc, gateway = base.start_gateway(instance)
        procs.append(gateway_proc)
        # The server's environment is this process's plus bench/checkout.py's settings: REDIS_URL
        # turns the gate on (marketplace/gateways.py); rate limits stay in memory as there.
        saved = os.environ.get("REDIS_URL")
        os.environ["REDIS_URL"] = redis_url
        try:
            server, base_url = base.start_server(url, gateway, instance)
        finally:
            if saved is None:
                os.environ.pop("REDIS_URL", None)
            else:
                os.environ["REDIS_URL"] = saved
        procs.append(server)
        base._preflight(base_url, built)
        expected_flash = _quoted(base_url, scout, world["flash_id"])
        expected_plain = _quoted(base_url, scout, world["plain_id"])
        yield "flash_sale_expected_total_fen", expected_flash[0]
        yield "flash_sale_flash_items", ",".join(map(str, expected_flash[1])) or "none"
        yield "plain_crowd_expected_total_fen", expected_plain[0]

        sampler = base.Sampler(url)
        others: dict[str, Callable[[], int]] = {
            "gateway": lambda: base._ticks(gateway_proc.pid),
            "app": lambda: base._ticks(server.pid, children=True),
            "postgres": sampler.cpu_ticks,
        }
        # Each worker's own CPU: how evenly the crowd's work was shared (*_worker_cpu_split, beside
        # *_connections_per_worker); the busier worker's share sets the last answer's latency.
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        others.update({f"worker{i}": (lambda w=int(w): base._ticks(w)) for i, w in enumerate(workers)})
        tag = "flash" + secrets.token_hex(3)
        # Warm-up on the unlimited products: both workers import, connect and fill their pools.
        products = ",".join(str(p) for p in built["product_ids"])
        base.wrk(
            base_url + base.ORDERS_PATH,
            threads=64,
            connections=64,
            duration=4,
            script_args=[str(all_file), products, f"{tag}w", "go", built["division"], "64"],
            others=others,
        )

        def gate_counter() -> int | None:
            value = gate.client.get(gate._key(world["item_id"]))  # type: ignore[attr-defined]
            return int(value) if value is not None else None

        waits = _Waits(url)
        runs = {}
        for prefix, pid, expected in (
            ("flash_sale", world["flash_id"], expected_flash),
            ("plain_crowd", world["plain_id"], expected_plain),
        ):
            base._drain(server.pid)
            waits.probe = gate_counter if prefix == "flash_sale" else None
            runs[prefix] = _crowd(
                base,
                base_url,
                crowd_file,
                pid,
                f"{tag}{prefix[0]}",
                built["division"],
                expected,
                others,
                sampler,
                waits,
                lambda: base._connections_per_worker(int(base_url.rsplit(":", 1)[1]), server),
            )
        waits.close()

        engine = make_engine(url)
        with engine.connect() as conn:

            def product_row(pid: int) -> tuple[int, int, int, int, int]:
                stock, reserved, sold = conn.execute(
                    text("SELECT stock, reserved, sales_count FROM products WHERE id = :id"), {"id": pid}
                ).one()
                units, at_price = conn.execute(
                    text(
                        "SELECT coalesce(sum(quantity), 0), coalesce(sum(discounted_units), 0)"
                        " FROM order_lines WHERE product_id = :id"
                    ),
                    {"id": pid},
                ).one()
                return stock, reserved, sold, units, at_price

            flash_row = product_row(world["flash_id"])
            plain_row = product_row(world["plain_id"])
            quota_used = conn.execute(
                text("SELECT quota_used FROM campaign_items WHERE id = :id"), {"id": world["item_id"]}
            ).scalar_one()
        engine.dispose()

        yield from _crowd_figures("flash_sale", base, runs["flash_sale"], FLASH_QUOTA)
        stock, reserved, sold, units, at_price = flash_row
        yield "flash_sale_units_at_campaign_price", at_price
        yield "flash_sale_units_at_list_price", units - at_price
        yield "flash_sale_quota_used", quota_used
        yield "flash_sale_oversold", max(0, at_price - FLASH_QUOTA) + max(0, quota_used - FLASH_QUOTA)
        yield "flash_sale_stock_left", stock
        yield (
            "flash_sale_stock_balanced",
            "yes"
            if stock >= 0 and stock + reserved + sold == FLASH_STOCK and units == reserved + sold
            else "NO",
        )
        seen = runs["flash_sale"]["probed"]
        # The gate's counter in Redis as it went during the run (the app sets it from the
        # database at the first checkout, down to 0; it expires 30 s after it was set)
        yield "flash_sale_gate_counter_seen", f"{max(seen)}..{min(seen)}" if seen else "never (gate off?)"

        yield from _crowd_figures("plain_crowd", base, runs["plain_crowd"], PLAIN_STOCK)
        stock, reserved, sold, units, _at = plain_row
        yield "plain_crowd_oversold", max(0, units - PLAIN_STOCK) + max(0, -stock)
        yield "plain_crowd_stock_left", stock
        yield (
            "plain_crowd_stock_balanced",
            "yes"
            if stock >= 0 and stock + reserved + sold == PLAIN_STOCK and units == reserved + sold
            else "NO",
        )
        flash_p99 = base._percentile([a[3] for a in runs["flash_sale"]["answers"]], 99)
        plain_p99 = base._percentile([a[3] for a in runs["plain_crowd"]["answers"]], 99)
        yield "flash_sale_vs_plain_p99_ratio", round(flash_p99 / plain_p99, 2) if plain_p99 else "n/a"
        yield "flash_sale_p99_target_met", "yes" if flash_p99 * 1000 <= P99_TARGET_MS else "no"

        # What one refused checkout costs the app when nobody else is asking.
        for prefix, pid, expected in (
            ("flash_sale", world["flash_id"], expected_flash),
            ("plain_crowd", world["plain_id"], expected_plain),
        ):
            ms, cpu_ms, codes = _alone(base, base_url, scout, pid, expected, built["division"], server.pid)
            yield f"{prefix}_refused_alone_ms", round(ms, 1)
            yield f"{prefix}_refused_alone_app_cpu_ms", round(cpu_ms, 1)
            yield f"{prefix}_refused_alone_answers", codes
        if os.environ.get("BENCH_FLASH_PROFILE"):
            env = {
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "INSTANCE_PATH": str(instance),
                "SECRET_KEY": "bench-only-" + secrets.token_hex(16),
                "STRIPE_API_BASE": gateway,
                "STRIPE_SECRET_KEY": "sk_test_bench",
                "RATELIMIT_STORAGE_URI": "memory://",
                "MAX_UNPAID_ORDERS": "0",
                "MAX_UNPAID_UNITS": "0",
                "MAX_UNPAID_UNITS_PER_PRODUCT": "0",
                "ORDER_RATE_LIMIT": "0",
            }
            _profile_refused(env, scout, world["flash_id"], expected_flash, built["division"])
        logged = (instance / "gunicorn.log").read_text(errors="replace")
        yield "flash_app_tracebacks_logged", logged.count("Traceback")
    finally:
        if sampler is not None:
            sampler.close()
        for proc in reversed(procs):
            base._stop(proc)
        base._admin(f'DROP DATABASE IF EXISTS "{FLASH_DATABASE}" WITH (FORCE)')
        shutil.rmtree(instance, ignore_errors=True)


PARTS: dict[str, Callable[[], Iterator[tuple[str, object]]]] = {
    "pricing": pricing_figures,
    "quote": quote_figures,
    "flash": flash_figures,
}


def main(argv: list[str] | None = None) -> int:
    """Every part, or those named as arguments or in BENCH_CAMPAIGNS (comma-separated):
    `python bench/campaigns.py flash`, `BENCH_CAMPAIGNS=flash make bench B=campaigns`."""
    args = sys.argv[1:] if argv is None else argv
    wanted = args or [p for p in os.environ.get("BENCH_CAMPAIGNS", "").split(",") if p] or list(PARTS)
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        print(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    for part in wanted:
        for key, value in PARTS[part]():
            print(f"{key}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
