"""The campaign pricing engine (issue 13, first slice): pure, integer fen, no database, no Flask.

It prices a cart's lines under a set of campaign rules and says, for each line, its list price,
every discount applied with who funds it (platform fen + seller fen), and the price paid; and it
says what a refund of some of a line's units gives back. It is NOT wired in yet: `cart.quote`,
`pricing.price_parcel`, checkout, the order lines and the ledger do not call it (later slices).

Scope of a rule
---------------
A `Scope` lists product ids, seller ids, county codes, category ids and whether only certified
or only geographical-indication (GI) products count. A line is in scope when it matches every
criterion given (within one criterion, any listed value matches); an empty scope is every line.

Stacking rules (applied in this order; the result does not depend on the order of lines or rules)
------------------------------------------------------------------------------------------------
1. Unit-price rules (`PercentOff`, `FixedPrice`): at most ONE per line; they exclude each other.
   Each applicable rule gives a line amount (discounted units at the rule's unit price, units over
   the buyer's limit at the list price); the rule giving the LOWEST line amount wins, ties to the
   smaller `rule_id`. A unit price is never above the list price (a fixed price at or above the
   list price does not apply) and never below 0. Per-buyer limit: at most `per_buyer_limit` units
   of a product at the rule's price per buyer, counting `Buyer.prior_units[(rule_id, product_id)]`;
   the units beyond pay the list price (not the next-best rule). Two lines of one product share
   the limit in line-key order.
2. 满减 tiers (`TierOff`), on what the lines cost after step 1. A tier rule groups its in-scope
   lines per seller (`TierBasis.SELLER`) or all together (`TierBasis.CAMPAIGN`, possibly spanning
   sellers); the highest tier whose threshold the group's subtotal reaches applies, once per group.
   At most ONE tier rule per line: while any (rule, group) of unclaimed lines reaches a tier, the
   one with the largest discount is applied first (ties: smaller rule_id, then smaller seller id)
   and its lines are claimed; a group whose subtotal drops below every tier once lines are claimed
   gets nothing. Lines costing 0 after step 1 take no part.
3. The first-order discount (`FirstOrderOff`), only when `Buyer.first_order`: at most ONE per
   cart (the largest, ties to the smaller rule_id), over what the in-scope lines cost after step 2,
   never more than that.

Rounding (written down, every split exact)
-----------------------------------------
- Percent off rounds PER UNIT to the nearest fen, half a fen down (in the buyer's disfavour):
  off per unit = (list_unit × bps + 4999) // 10000; the line is qty × that unit price, like today's
  `unit price × quantity`.
- A discount's platform share is computed once on its whole amount (a unit-price rule's: the
  line's discount; a tier's or first-order's: the whole discount), rounded down:
  platform = amount × platform_bps // 10000; the seller funds the rest (platform + seller = amount).
- A tier or first-order discount spanning several lines (and sellers' sub-orders) is split over
  them in proportion to what each line costs before it, by largest remainder: each line gets the
  floor of its exact share, the fen left over go one each to the largest fractions, ties to the
  smaller line key. Its platform share is split the same way in proportion to the lines' pieces,
  so each line's platform piece never exceeds its discount piece.

Refunds (`refund_line`)
----------------------
A line's units are refunded in order (unit 0 first), so any run of partial refunds is exact. Each
discount on a line of q units is spread over the units: amount // q on every unit, and the
amount % q spare fen one each on consecutive units, each discount's spare fen starting where the
previous discount's ended (cyclically), so no unit carries more discount than its list price.
Within a discount, the platform's share of the first n units is floor(piece(n) × platform / amount).
Refunding every unit of a line returns exactly its paid amount and exactly each discount's
platform share (the subsidy) and seller share.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.errors import ValidationError
from services.i18n import _

BPS = 10_000


class DiscountKind(enum.StrEnum):
    PERCENT_OFF = "percent_off"
    FIXED_PRICE = "fixed_price"
    TIER = "tier"
    FIRST_ORDER = "first_order"


class TierBasis(enum.StrEnum):
    SELLER = "seller"  # each seller's in-scope lines reach the tiers on their own
    CAMPAIGN = "campaign"  # all in-scope lines together, across sellers


@dataclass(frozen=True)
class Funding:
    """Who pays a discount: the platform's share in basis points, the seller the rest."""

    platform_bps: int = BPS

    def __post_init__(self) -> None:
        if not 0 <= self.platform_bps <= BPS:
            raise ValidationError(_("A platform share must be between 0 and 100 percent."))

    @classmethod
    def platform(cls) -> Funding:
        return cls(BPS)

    @classmethod
    def seller(cls) -> Funding:
        return cls(0)

    @classmethod
    def shared(cls, platform_bps: int) -> Funding:
        return cls(platform_bps)

    def platform_share(self, amount_fen: int) -> int:
        return amount_fen * self.platform_bps // BPS


@dataclass(frozen=True)
class Scope:
    """Which lines a rule applies to (see the module docstring); empty: every line."""

    product_ids: frozenset[int] = frozenset()
    seller_ids: frozenset[int] = frozenset()
    county_codes: frozenset[str] = frozenset()
    category_ids: frozenset[int] = frozenset()
    certified_only: bool = False
    gi_only: bool = False

    def covers(self, line: CartLine) -> bool:
        return (
            (not self.product_ids or line.product_id in self.product_ids)
            and (not self.seller_ids or line.seller_id in self.seller_ids)
            and (not self.county_codes or line.county_code in self.county_codes)
            and (not self.category_ids or line.category_id in self.category_ids)
            and (not self.certified_only or line.certified)
            and (not self.gi_only or line.gi)
        )


EVERYTHING = Scope()


@dataclass(frozen=True)
class CartLine:
    key: str
    product_id: int
    seller_id: int
    unit_list_fen: int
    quantity: int
    category_id: int | None = None
    county_code: str | None = None
    certified: bool = False
    gi: bool = False

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValidationError(_("Quantity must be at least 1."))
        if self.unit_list_fen < 0:
            raise ValidationError(_("A price cannot be below zero."))

    @property
    def list_fen(self) -> int:
        return self.unit_list_fen * self.quantity


@dataclass(frozen=True)
class Buyer:
    """What the engine needs to know of the buyer: whether this is their first order, and how
    many units of a product they already bought at a limited rule's price, by (rule_id, product_id)."""

    first_order: bool = False
    prior_units: Mapping[tuple[str, int], int] = field(default_factory=dict)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValidationError(_("A per-buyer limit must be at least 1."))


@dataclass(frozen=True)
class PercentOff:
    rule_id: str
    campaign_id: int
    off_bps: int
    scope: Scope = EVERYTHING
    funding: Funding = Funding()
    per_buyer_limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.off_bps <= BPS:
            raise ValidationError(_("A percentage off must be more than 0 and at most 100 percent."))
        _check_limit(self.per_buyer_limit)

    def unit_price(self, unit_list_fen: int) -> int:
        return unit_list_fen - (unit_list_fen * self.off_bps + BPS // 2 - 1) // BPS


@dataclass(frozen=True)
class FixedPrice:
    rule_id: str
    campaign_id: int
    unit_price_fen: int
    scope: Scope = EVERYTHING
    funding: Funding = Funding()
    per_buyer_limit: int | None = None

    def __post_init__(self) -> None:
        if self.unit_price_fen < 0:
            raise ValidationError(_("A campaign price cannot be below zero."))
        _check_limit(self.per_buyer_limit)

    def unit_price(self, unit_list_fen: int) -> int:
        return min(self.unit_price_fen, unit_list_fen)


@dataclass(frozen=True)
class TierOff:
    """满减: tiers of (threshold_fen, off_fen), e.g. ((10000, 2000), (20000, 5000))."""

    rule_id: str
    campaign_id: int
    tiers: tuple[tuple[int, int], ...]
    basis: TierBasis = TierBasis.SELLER
    scope: Scope = EVERYTHING
    funding: Funding = Funding()

    def __post_init__(self) -> None:
        ok = bool(self.tiers) and all(0 < off <= threshold for threshold, off in self.tiers)
        ok = ok and all(a[0] < b[0] and a[1] < b[1] for a, b in zip(self.tiers, self.tiers[1:], strict=False))
        if not ok:
            raise ValidationError(
                _("Tiers must rise in threshold and discount, each discount from 1 fen to its threshold.")
            )

    def off_for(self, subtotal_fen: int) -> int:
        """The highest tier reached, 0 below the first threshold."""
        return max((off for threshold, off in self.tiers if subtotal_fen >= threshold), default=0)


@dataclass(frozen=True)
class FirstOrderOff:
    rule_id: str
    campaign_id: int
    off_fen: int
    scope: Scope = EVERYTHING
    funding: Funding = Funding()

    def __post_init__(self) -> None:
        if self.off_fen < 1:
            raise ValidationError(_("A first-order discount must be more than zero."))


Rule = PercentOff | FixedPrice | TierOff | FirstOrderOff


def check_campaign_price(unit_list_fen: int, campaign_fen: int) -> None:
    """A seller signing a product up: the campaign price is 0..list price (refused otherwise)."""
    if campaign_fen < 0:
        raise ValidationError(_("A campaign price cannot be below zero."))
    if campaign_fen > unit_list_fen:
        raise ValidationError(_("A campaign price cannot be above the list price."))


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discount:
    """One discount on one line: amount = platform_fen + seller_fen."""

    rule_id: str
    campaign_id: int
    kind: DiscountKind
    amount_fen: int
    platform_fen: int
    seller_fen: int


@dataclass(frozen=True)
class LineBreakdown:
    key: str
    product_id: int
    seller_id: int
    quantity: int
    unit_list_fen: int
    discounts: tuple[Discount, ...]
    # Units at the unit-price rule's price (the rest at list price); 0 without one.
    discounted_units: int = 0

    @property
    def list_fen(self) -> int:
        return self.unit_list_fen * self.quantity

    @property
    def discount_fen(self) -> int:
        return sum(d.amount_fen for d in self.discounts)

    @property
    def platform_fen(self) -> int:
        return sum(d.platform_fen for d in self.discounts)

    @property
    def seller_fen(self) -> int:
        return sum(d.seller_fen for d in self.discounts)

    @property
    def paid_fen(self) -> int:
        return self.list_fen - self.discount_fen


@dataclass(frozen=True)
class AppliedRule:
    """A discount as a whole and its split over lines (key, amount, platform share)."""

    rule_id: str
    campaign_id: int
    kind: DiscountKind
    amount_fen: int
    platform_fen: int
    basis_fen: int  # what the lines cost before it (a tier's subtotal: ≥ its threshold)
    seller_id: int | None  # a per-seller tier's seller
    split: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class PricedCart:
    lines: tuple[LineBreakdown, ...]  # in line-key order
    applied: tuple[AppliedRule, ...]

    @property
    def list_fen(self) -> int:
        return sum(line.list_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return sum(line.discount_fen for line in self.lines)

    @property
    def paid_fen(self) -> int:
        return sum(line.paid_fen for line in self.lines)

    @property
    def platform_fen(self) -> int:
        """The subsidy this cart spends."""
        return sum(line.platform_fen for line in self.lines)

    @property
    def seller_fen(self) -> int:
        return sum(line.seller_fen for line in self.lines)

    def line(self, key: str) -> LineBreakdown:
        return next(line for line in self.lines if line.key == key)

    def paid_by_seller(self) -> dict[int, int]:
        """What each seller's sub-order's goods cost the buyer."""
        out: dict[int, int] = {}
        for line in self.lines:
            out[line.seller_id] = out.get(line.seller_id, 0) + line.paid_fen
        return out


# -- the engine ----------------------------------------------------------------------------


def split_largest_remainder(amount_fen: int, weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Split `amount_fen` over keys in proportion to their weights, exactly: floors, then one fen
    each to the largest remainders, ties to the smaller key. No key gets above ceil(its share)."""
    total = sum(w for _key, w in weights)
    if amount_fen < 0 or any(w < 0 for _key, w in weights):
        raise ValueError("amounts and weights are not negative")
    if total == 0:
        if amount_fen:
            raise ValueError("nothing to split over")
        return {key: 0 for key, _w in weights}
    shares = {key: amount_fen * w // total for key, w in weights}
    order = sorted(weights, key=lambda kw: (-(amount_fen * kw[1] % total), kw[0]))
    for key, _w in order[: amount_fen - sum(shares.values())]:
        shares[key] += 1
    return shares


@dataclass
class _Work:
    line: CartLine
    discounts: list[Discount] = field(default_factory=list)
    discounted_units: int = 0
    amount: int = -1  # what the line costs after its discounts so far (kept, not summed again)

    def __post_init__(self) -> None:
        self.amount = self.line.list_fen - sum(d.amount_fen for d in self.discounts)

    def add(self, discount: Discount) -> None:
        self.discounts.append(discount)
        self.amount -= discount.amount_fen


def _spread(
    rule: TierOff | FirstOrderOff,
    kind: DiscountKind,
    amount: int,
    works: Sequence[_Work],
    seller_id: int | None,
) -> AppliedRule:
    basis = sum(w.amount for w in works)
    platform = rule.funding.platform_share(amount)
    pieces = split_largest_remainder(amount, [(w.line.key, w.amount) for w in works])
    platform_pieces = split_largest_remainder(platform, list(pieces.items()))
    split = []
    for w in works:
        piece, p = pieces[w.line.key], platform_pieces[w.line.key]
        if piece:
            w.add(Discount(rule.rule_id, rule.campaign_id, kind, piece, p, piece - p))
            split.append((w.line.key, piece, p))
    return AppliedRule(rule.rule_id, rule.campaign_id, kind, amount, platform, basis, seller_id, tuple(split))


def price_cart(lines: Iterable[CartLine], rules: Iterable[Rule], buyer: Buyer = Buyer()) -> PricedCart:
    """Price the lines under the rules (see the module docstring for the order and rounding)."""
    works = [_Work(line) for line in sorted(lines, key=lambda line: line.key)]
    if len({w.line.key for w in works}) != len(works):
        raise ValueError("line keys must be unique")
    ordered = sorted(rules, key=lambda r: r.rule_id)
    if len({r.rule_id for r in ordered}) != len(ordered):
        raise ValueError("rule ids must be unique")
    applied: list[AppliedRule] = []

    # 1. Unit-price rules: at most one per line, the lowest line amount wins.
    unit_rules = [r for r in ordered if isinstance(r, PercentOff | FixedPrice)]
    used: dict[tuple[str, int], int] = dict(buyer.prior_units)
    for w in works:
        best: tuple[int, str, PercentOff | FixedPrice, int, int] | None = None
        for rule in unit_rules:
            if not rule.scope.covers(w.line):
                continue
            unit = rule.unit_price(w.line.unit_list_fen)
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
        platform = rule.funding.platform_share(off)
        w.add(Discount(rule.rule_id, rule.campaign_id, kind, off, platform, off - platform))
        w.discounted_units = units

    # 2. 满减 tiers: one tier rule per line, the largest discount first.
    tier_rules = [r for r in ordered if isinstance(r, TierOff)]
    claimed: set[str] = set()
    while True:
        candidate: tuple[int, str, int, TierOff, list[_Work]] | None = None
        for tier_rule in tier_rules:
            groups: dict[int, list[_Work]] = {}
            for w in works:
                if w.line.key not in claimed and w.amount > 0 and tier_rule.scope.covers(w.line):
                    group = w.line.seller_id if tier_rule.basis == TierBasis.SELLER else -1
                    groups.setdefault(group, []).append(w)
            for group, members in groups.items():
                off = tier_rule.off_for(sum(m.amount for m in members))
                if off and (candidate is None or (-off, tier_rule.rule_id, group) < candidate[:3]):
                    candidate = (-off, tier_rule.rule_id, group, tier_rule, members)
        if candidate is None:
            break
        neg_off, _rid, group, tier_rule, members = candidate
        seller = group if tier_rule.basis == TierBasis.SELLER else None
        applied.append(_spread(tier_rule, DiscountKind.TIER, -neg_off, members, seller))
        claimed.update(m.line.key for m in members)

    # 3. The first-order discount: one per cart, over what is left.
    if buyer.first_order:
        first: tuple[int, str, FirstOrderOff, list[_Work]] | None = None
        for fo_rule in (r for r in ordered if isinstance(r, FirstOrderOff)):
            members = [w for w in works if w.amount > 0 and fo_rule.scope.covers(w.line)]
            off = min(fo_rule.off_fen, sum(m.amount for m in members))
            if off and (first is None or (-off, fo_rule.rule_id) < first[:2]):
                first = (-off, fo_rule.rule_id, fo_rule, members)
        if first is not None:
            neg_off, _rid, fo_rule, members = first
            applied.append(_spread(fo_rule, DiscountKind.FIRST_ORDER, -neg_off, members, None))

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


# -- refunds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscountRefund:
    """What a refund gives back of one discount: the platform's part returns to the campaign's
    subsidy budget, the seller's part to what the seller funded."""

    rule_id: str
    campaign_id: int
    kind: DiscountKind
    amount_fen: int
    platform_fen: int
    seller_fen: int


@dataclass(frozen=True)
class LineRefund:
    key: str
    units: int
    buyer_fen: int  # what the buyer gets back
    discounts: tuple[DiscountRefund, ...]

    @property
    def platform_fen(self) -> int:
        return sum(d.platform_fen for d in self.discounts)

    @property
    def seller_fen(self) -> int:
        return sum(d.seller_fen for d in self.discounts)


def _covered(n: int, start: int, length: int, q: int) -> int:
    """How many of units 0..n-1 lie in the cyclic run of `length` units from `start` (mod q)."""
    end = start + length
    inside = max(0, min(n, end) - start)
    if end > q:
        inside += min(n, end - q)
    return inside


def _discount_through(line: LineBreakdown, n: int) -> list[tuple[int, int]]:
    """Each discount's (amount, platform share) carried by the line's units 0..n-1."""
    q = line.quantity
    out = []
    start = 0
    for d in line.discounts:
        spare = d.amount_fen % q
        piece = n * (d.amount_fen // q) + _covered(n, start, spare, q)
        platform = piece * d.platform_fen // d.amount_fen if d.amount_fen else 0
        out.append((piece, platform))
        start = (start + spare) % q
    return out


def refund_line(line: LineBreakdown, quantity: int, *, already_refunded: int = 0) -> LineRefund:
    """Refund `quantity` units of a line after `already_refunded` units were refunded before."""
    if quantity < 0 or already_refunded < 0 or already_refunded + quantity > line.quantity:
        raise ValidationError(
            _("Only %(n)d of these units can still be refunded.", n=max(0, line.quantity - already_refunded))
        )
    before = _discount_through(line, already_refunded)
    after = _discount_through(line, already_refunded + quantity)
    refunds = tuple(
        DiscountRefund(d.rule_id, d.campaign_id, d.kind, a - b, pa - pb, (a - pa) - (b - pb))
        for d, (b, pb), (a, pa) in zip(line.discounts, before, after, strict=True)
    )
    buyer = quantity * line.unit_list_fen - sum(r.amount_fen for r in refunds)
    return LineRefund(key=line.key, units=quantity, buyer_fen=buyer, discounts=refunds)
