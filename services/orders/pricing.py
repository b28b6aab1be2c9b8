"""Pricing of a cart, pure: line totals, one shipping fee per seller by weight and storage class,
and the platform's commission. The server always recomputes these; what a form says is ignored."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from domain import DeliveryMethod, StorageClass

# Colder goods need the colder (dearer) chain; a parcel travels in the coldest its lines need.
COLD_ORDER = {StorageClass.AMBIENT: 0, StorageClass.CHILLED: 1, StorageClass.FROZEN: 2}


@dataclass(frozen=True)
class FeeRule:
    """Fee for one parcel of one storage class: `base_fen` covers the first `first_g` grams,
    then `per_kg_fen` for each started kilogram; picking up at a point costs `pickup_base_fen`."""

    base_fen: int
    per_kg_fen: int
    first_g: int = 1000
    pickup_base_fen: int | None = None

    def fee(self, weight_g: int, delivery: DeliveryMethod) -> int:
        base = self.base_fen
        if delivery == DeliveryMethod.PICKUP and self.pickup_base_fen is not None:
            base = self.pickup_base_fen
        extra_g = max(0, weight_g - self.first_g)
        started_kg = -(-extra_g // 1000)
        return base + started_kg * self.per_kg_fen


DEFAULT_FEE_RULES: Mapping[StorageClass, FeeRule] = {
    StorageClass.AMBIENT: FeeRule(base_fen=800, per_kg_fen=200, pickup_base_fen=300),
    StorageClass.CHILLED: FeeRule(base_fen=1500, per_kg_fen=400, pickup_base_fen=800),
    StorageClass.FROZEN: FeeRule(base_fen=2000, per_kg_fen=500, pickup_base_fen=1200),
}


# The most one payment may be at the gateway, in the currency's minor unit (fen): Stripe's API
# says of PaymentIntent.amount "The amount value supports up to eight digits (e.g., a value of
# 99999999 for a USD charge of $999,999.99)", and lists the limits per currency at
# https://stripe.com/docs/currencies#minimum-and-maximum-charge-amounts. ¥999,999.99 for CNY.
STRIPE_MAX_AMOUNT = 99_999_999


@dataclass(frozen=True)
class CheckoutSettings:
    """What a deployment may tune (read from the app config at the edge, see docs/deploy.md).

    Holds on stock (issue 9): units leave the shelf when an order is placed and come back only
    when it is paid for, cancelled or its payment window ends, so unpaid orders are capped.
    A cap or limit of 0 is off. The rules (services.orders.checkout.place_order applies them):

    - the buyer's own: at most `max_unpaid_orders` open unpaid orders, holding at most
      `max_unpaid_units` units in all and `max_unpaid_units_per_product` of any one product;
      at most `order_rate_limit` orders placed in `order_rate_window`. Every order of the
      buyer counts, whoever placed it: a villager's orders placed by an agent are the
      villager's.
    - a placer's (a village agent placing proxy orders for villagers): the orders they placed for
      someone else count against their own, larger caps, `max_proxy_unpaid_orders`,
      `max_proxy_unpaid_units` and `proxy_order_rate_limit` (same window), never against a
      buyer's: an agent serving a village is not capped as one buyer. What the agent buys for
      themselves is under the buyer's caps.
    - an order holding more than `large_order_units` units gets `large_order_payment_window`
      (when shorter than `payment_window`) to be paid in.
    - a checkout totals at most `max_checkout_total_fen` (the gateway's maximum charge).
    """

    fee_rules: Mapping[StorageClass, FeeRule] = field(default_factory=lambda: dict(DEFAULT_FEE_RULES))
    # A seller's parcel ships free from this many fen of goods (0: never free).
    free_shipping_from_fen: int = 9900
    commission_bps: int = 500  # 5 % of the goods, kept by the platform
    payment_window: timedelta = timedelta(minutes=30)
    currency: str = "cny"
    max_checkout_total_fen: int = STRIPE_MAX_AMOUNT
    max_unpaid_orders: int = 3
    max_unpaid_units: int = 50
    max_unpaid_units_per_product: int = 30
    order_rate_limit: int = 10
    order_rate_window: timedelta = timedelta(minutes=10)
    large_order_units: int = 20
    large_order_payment_window: timedelta = timedelta(minutes=10)
    max_proxy_unpaid_orders: int = 30
    max_proxy_unpaid_units: int = 500
    proxy_order_rate_limit: int = 60

    def payment_window_for(self, units: int) -> timedelta:
        """How long an order holding `units` units waits for its payment."""
        if self.large_order_units and units > self.large_order_units:
            return min(self.payment_window, self.large_order_payment_window)
        return self.payment_window

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> CheckoutSettings:
        """From config values: SHIPPING_FEE_RULES (JSON), FREE_SHIPPING_FROM_FEN, ..."""
        rules = dict(DEFAULT_FEE_RULES)
        custom = raw.get("SHIPPING_FEE_RULES")
        if custom:
            data = json.loads(custom) if isinstance(custom, str) else custom
            for name, values in data.items():
                rules[StorageClass(name)] = FeeRule(**values)

        def number(key: str, default: int) -> int:
            value = int(raw.get(key, default))
            if value < 0:
                raise ValueError(f"{key} must be 0 or more, not {value}")
            return value

        def minutes(key: str, default: timedelta) -> timedelta:
            return timedelta(minutes=number(key, int(default.total_seconds() // 60)))

        total_cap = number("MAX_CHECKOUT_TOTAL_FEN", cls.max_checkout_total_fen)
        if not 0 < total_cap <= STRIPE_MAX_AMOUNT:
            raise ValueError(f"MAX_CHECKOUT_TOTAL_FEN must be 1..{STRIPE_MAX_AMOUNT}, not {total_cap}")
        return cls(
            fee_rules=rules,
            free_shipping_from_fen=int(raw.get("FREE_SHIPPING_FROM_FEN", cls.free_shipping_from_fen)),
            commission_bps=int(raw.get("PLATFORM_COMMISSION_BPS", cls.commission_bps)),
            payment_window=timedelta(minutes=int(raw.get("PAYMENT_WINDOW_MINUTES", 30))),
            currency=str(raw.get("PAYMENT_CURRENCY", "cny")),
            max_checkout_total_fen=total_cap,
            max_unpaid_orders=number("MAX_UNPAID_ORDERS", cls.max_unpaid_orders),
            max_unpaid_units=number("MAX_UNPAID_UNITS", cls.max_unpaid_units),
            max_unpaid_units_per_product=number(
                "MAX_UNPAID_UNITS_PER_PRODUCT", cls.max_unpaid_units_per_product
            ),
            order_rate_limit=number("ORDER_RATE_LIMIT", cls.order_rate_limit),
            order_rate_window=minutes("ORDER_RATE_WINDOW_MINUTES", cls.order_rate_window),
            large_order_units=number("LARGE_ORDER_UNITS", cls.large_order_units),
            large_order_payment_window=minutes(
                "LARGE_ORDER_PAYMENT_WINDOW_MINUTES", cls.large_order_payment_window
            ),
            max_proxy_unpaid_orders=number("MAX_PROXY_UNPAID_ORDERS", cls.max_proxy_unpaid_orders),
            max_proxy_unpaid_units=number("MAX_PROXY_UNPAID_UNITS", cls.max_proxy_unpaid_units),
            proxy_order_rate_limit=number("PROXY_ORDER_RATE_LIMIT", cls.proxy_order_rate_limit),
        )


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    quantity: int
    unit_price_fen: int
    net_weight_g: int
    storage_class: StorageClass
    discount_fen: int = 0  # campaign discounts (services/campaigns/pricing.py)
    subsidy_fen: int = 0  # the platform's share of them

    @property
    def line_fen(self) -> int:
        """At list price."""
        return self.unit_price_fen * self.quantity

    @property
    def paid_fen(self) -> int:
        return self.line_fen - self.discount_fen

    @property
    def weight_g(self) -> int:
        return self.net_weight_g * self.quantity


@dataclass(frozen=True)
class ParcelPrice:
    items_fen: int  # what the buyer pays for the goods, after campaign discounts
    weight_g: int
    storage_class: StorageClass
    shipping_fen: int
    commission_fen: int
    discount_fen: int = 0
    subsidy_fen: int = 0  # the platform pays the seller this on top of items_fen

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.shipping_fen


def coldest(classes: Iterable[StorageClass]) -> StorageClass:
    return max(classes, key=COLD_ORDER.__getitem__, default=StorageClass.AMBIENT)


def price_parcel(
    lines: Iterable[PricedLine], delivery: DeliveryMethod, settings: CheckoutSettings
) -> ParcelPrice:
    """One seller's parcel: goods, weight, the storage class it needs, shipping and commission.

    Campaign discounts are already on the lines. Free shipping is reached on what the buyer pays
    for the goods (after discounts), and the commission is charged on that too: the platform takes
    no commission on the subsidy it pays the seller itself."""
    lines = list(lines)
    items = sum(line.paid_fen for line in lines)
    weight = sum(line.weight_g for line in lines)
    storage = coldest(line.storage_class for line in lines)
    if settings.free_shipping_from_fen and items >= settings.free_shipping_from_fen:
        shipping = 0
    else:
        shipping = settings.fee_rules[storage].fee(weight, delivery)
    commission = items * settings.commission_bps // 10_000
    return ParcelPrice(
        items_fen=items,
        weight_g=weight,
        storage_class=storage,
        shipping_fen=shipping,
        commission_fen=commission,
        discount_fen=sum(line.discount_fen for line in lines),
        subsidy_fen=sum(line.subsidy_fen for line in lines),
    )
