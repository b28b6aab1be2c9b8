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


@dataclass(frozen=True)
class CheckoutSettings:
    """What a deployment may tune (read from the app config at the edge, see docs/deploy.md)."""

    fee_rules: Mapping[StorageClass, FeeRule] = field(default_factory=lambda: dict(DEFAULT_FEE_RULES))
    # A seller's parcel ships free from this many fen of goods (0: never free).
    free_shipping_from_fen: int = 9900
    commission_bps: int = 500  # 5 % of the goods, kept by the platform
    payment_window: timedelta = timedelta(minutes=30)
    currency: str = "cny"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> CheckoutSettings:
        """From config values: SHIPPING_FEE_RULES (JSON), FREE_SHIPPING_FROM_FEN, ..."""
        rules = dict(DEFAULT_FEE_RULES)
        custom = raw.get("SHIPPING_FEE_RULES")
        if custom:
            data = json.loads(custom) if isinstance(custom, str) else custom
            for name, values in data.items():
                rules[StorageClass(name)] = FeeRule(**values)
        return cls(
            fee_rules=rules,
            free_shipping_from_fen=int(raw.get("FREE_SHIPPING_FROM_FEN", cls.free_shipping_from_fen)),
            commission_bps=int(raw.get("PLATFORM_COMMISSION_BPS", cls.commission_bps)),
            payment_window=timedelta(minutes=int(raw.get("PAYMENT_WINDOW_MINUTES", 30))),
            currency=str(raw.get("PAYMENT_CURRENCY", "cny")),
        )


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    quantity: int
    unit_price_fen: int
    net_weight_g: int
    storage_class: StorageClass

    @property
    def line_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    @property
    def weight_g(self) -> int:
        return self.net_weight_g * self.quantity


@dataclass(frozen=True)
class ParcelPrice:
    items_fen: int
    weight_g: int
    storage_class: StorageClass
    shipping_fen: int
    commission_fen: int

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.shipping_fen


def coldest(classes: Iterable[StorageClass]) -> StorageClass:
    return max(classes, key=COLD_ORDER.__getitem__, default=StorageClass.AMBIENT)


def price_parcel(
    lines: Iterable[PricedLine], delivery: DeliveryMethod, settings: CheckoutSettings
) -> ParcelPrice:
    """One seller's parcel: goods, weight, the storage class it needs, shipping and commission."""
    lines = list(lines)
    items = sum(line.line_fen for line in lines)
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
    )
