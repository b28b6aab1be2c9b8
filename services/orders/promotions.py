"""The campaign pricing engine (issue 13): pure, integer fen, no database, no Flask.

It prices a cart's lines under a set of campaign rules and says, for each line, its list price,
every discount applied with who funds it (platform fen + seller fen), and the price paid; and it
says what a refund of some of a line's units gives back. It is the one price path: `cart.quote`
prices every cart, list and product page through it (services/campaigns/pricing.py builds the
rules from the running campaigns), checkout stores each line's breakdown, and refunds
(services/payments, services/campaigns/holds.py) give back what `refund_line` says.

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


# How the engine is quick (a 20-line cart under 5 rules; bench/campaigns.py): each rule's scope
# is matched against the lines once (`_in_scope`); a line's state is a few parallel lists indexed
# by its position in key order, the amount after its discounts kept as it goes; the 满减 groups
# are built once and, when a group is applied, only the groups sharing one of its lines are
# summed again (the others' lines and amounts did not change); and the result objects, frozen
# dataclasses, are built by `_discount`, `_breakdown` and `_applied_rule` below, which fill the
# instance's __dict__ at once instead of calling object.__setattr__ field by field: the same
# objects (equal, same hash and repr), in half the time. tests/unit/test_promotions.py compares
# the engine with a straightforward reference implementation on generated carts and rule sets.

_new = object.__new__


def _discount(rule_id: str, campaign_id: int, kind: DiscountKind, amount: int, platform: int) -> Discount:
    d = _new(Discount)
    d.__dict__.update(
        rule_id=rule_id,
        campaign_id=campaign_id,
        kind=kind,
        amount_fen=amount,
        platform_fen=platform,
        seller_fen=amount - platform,
    )
    return d


def _breakdown(line: CartLine, discounts: tuple[Discount, ...], discounted_units: int) -> LineBreakdown:
    b = _new(LineBreakdown)
    b.__dict__.update(
        key=line.key,
        product_id=line.product_id,
        seller_id=line.seller_id,
        quantity=line.quantity,
        unit_list_fen=line.unit_list_fen,
        discounts=discounts,
        discounted_units=discounted_units,
    )
    return b


def _applied_rule(
    rule: TierOff | FirstOrderOff,
    kind: DiscountKind,
    amount: int,
    platform: int,
    basis: int,
    seller_id: int | None,
    split: tuple[tuple[str, int, int], ...],
) -> AppliedRule:
    a = _new(AppliedRule)
    a.__dict__.update(
        rule_id=rule.rule_id,
        campaign_id=rule.campaign_id,
        kind=kind,
        amount_fen=amount,
        platform_fen=platform,
        basis_fen=basis,
        seller_id=seller_id,
        split=split,
    )
    return a


def _in_scope(scope: Scope, lines: Sequence[CartLine]) -> list[int]:
    """The positions of the lines in scope (`Scope.covers`, one criterion at a time)."""
    idx = list(range(len(lines)))
    if scope.product_ids:
        idx = [i for i in idx if lines[i].product_id in scope.product_ids]
    if scope.seller_ids:
        idx = [i for i in idx if lines[i].seller_id in scope.seller_ids]
    if scope.county_codes:
        idx = [i for i in idx if lines[i].county_code in scope.county_codes]
    if scope.category_ids:
        idx = [i for i in idx if lines[i].category_id in scope.category_ids]
    if scope.certified_only:
        idx = [i for i in idx if lines[i].certified]
    if scope.gi_only:
        idx = [i for i in idx if lines[i].gi]
    return idx


def _largest_remainder(amount: int, weights: list[int], total: int) -> list[int]:
    """`split_largest_remainder` over positions (`total` is the weights' sum): ties to the
    earlier position, the lines being in key order, so to the smaller key."""
    if not amount:
        return [0] * len(weights)
    if amount == total:  # every share is its weight exactly (a platform-funded discount's split)
        return list(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    if left:
        remainders = [amount * w % total for w in weights]
        # A stable sort, largest first: equal remainders keep their order (reverse keeps it too).
        for j in sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)[:left]:
            shares[j] += 1
    return shares


class _Cart:
    """The lines being priced, in key order, and what each costs after its discounts so far."""

    __slots__ = ("amounts", "discounts", "keys", "lines")

    def __init__(self, lines: list[CartLine]) -> None:
        self.lines = lines
        self.keys = [line.key for line in lines]
        self.amounts = [line.unit_list_fen * line.quantity for line in lines]
        self.discounts: list[list[Discount]] = [[] for _ in lines]

    def spread(
        self,
        rule: TierOff | FirstOrderOff,
        kind: DiscountKind,
        amount: int,
        members: list[int],
        seller_id: int | None,
    ) -> AppliedRule:
        """A discount over several lines, split in proportion to what they cost before it."""
        amounts, discounts, keys = self.amounts, self.discounts, self.keys
        weights = [amounts[i] for i in members]
        basis = sum(weights)
        platform = rule.funding.platform_share(amount)
        pieces = _largest_remainder(amount, weights, basis)
        platform_pieces = _largest_remainder(platform, pieces, amount)
        rule_id, campaign_id = rule.rule_id, rule.campaign_id
        split = []
        for i, piece, p in zip(members, pieces, platform_pieces, strict=True):
            if piece:
                d = _new(Discount)  # as _discount(), inline: this loop makes most of a cart's discounts
                d.__dict__.update(
                    rule_id=rule_id,
                    campaign_id=campaign_id,
                    kind=kind,
                    amount_fen=piece,
                    platform_fen=p,
                    seller_fen=piece - p,
                )
                discounts[i].append(d)
                amounts[i] -= piece
                split.append((keys[i], piece, p))
        return _applied_rule(rule, kind, amount, platform, basis, seller_id, tuple(split))


def _unit_price_rules(
    cart: _Cart, rules: list[PercentOff | FixedPrice], buyer: Buyer, discounted_units: list[int]
) -> None:
    """Step 1: at most one unit-price rule per line, the lowest line amount wins."""
    lines, amounts, discounts = cart.lines, cart.amounts, cart.discounts
    candidates: list[list[PercentOff | FixedPrice]] = [[] for _ in lines]
    for rule in rules:  # in rule_id order, so each line's candidates are too
        for i in _in_scope(rule.scope, lines):
            candidates[i].append(rule)
    used: dict[tuple[str, int], int] = dict(buyer.prior_units)
    for i, line in enumerate(lines):
        if not candidates[i]:
            continue
        unit_list = line.unit_list_fen
        best: tuple[int, str, PercentOff | FixedPrice, int, int] | None = None
        for rule in candidates[i]:
            unit = rule.unit_price(unit_list)
            if unit >= unit_list:
                continue
            units = line.quantity
            if rule.per_buyer_limit is not None:
                units = min(
                    units, max(0, rule.per_buyer_limit - used.get((rule.rule_id, line.product_id), 0))
                )
                if units == 0:
                    continue
            line_amount = amounts[i] - units * (unit_list - unit)
            if best is None or (line_amount, rule.rule_id) < best[:2]:
                best = (line_amount, rule.rule_id, rule, unit, units)
        if best is None:
            continue
        _amount, _id, rule, unit, units = best
        if rule.per_buyer_limit is not None:
            key = (rule.rule_id, line.product_id)
            used[key] = used.get(key, 0) + units
        off = units * (unit_list - unit)
        kind = DiscountKind.PERCENT_OFF if isinstance(rule, PercentOff) else DiscountKind.FIXED_PRICE
        discounts[i].append(
            _discount(rule.rule_id, rule.campaign_id, kind, off, rule.funding.platform_share(off))
        )
        amounts[i] -= off
        discounted_units[i] = units


def _tiers(cart: _Cart, rules: list[TierOff], applied: list[AppliedRule]) -> None:
    """Step 2: one tier rule per line, the largest discount first.

    Every (rule, group) is built once, of the lines costing more than 0; when one is applied its
    lines are claimed, and only the groups that shared one of them lose those lines and are
    summed again. The others' lines are unclaimed, so their amounts did not move either: their
    discount stands. A group's subtotal only falls, so a group reaching no tier is dropped."""
    lines, amounts = cart.lines, cart.amounts
    live: list[tuple[int, str, int, TierOff, list[int]]] = []  # (-off, rule_id, group, rule, lines)
    for rule in rules:
        groups: dict[int, list[int]] = {}
        per_seller = rule.basis == TierBasis.SELLER
        for i in _in_scope(rule.scope, lines):
            if amounts[i] > 0:
                groups.setdefault(lines[i].seller_id if per_seller else -1, []).append(i)
        for group, members in groups.items():
            off = rule.off_for(sum(amounts[i] for i in members))
            if off:
                live.append((-off, rule.rule_id, group, rule, members))
    while live:
        best = min(live)  # (-off, rule_id, group) is unique: the rule objects are never compared
        neg_off, _rid, group, rule, members = best
        per_seller = rule.basis == TierBasis.SELLER
        applied.append(cart.spread(rule, DiscountKind.TIER, -neg_off, members, group if per_seller else None))
        claimed = set(members)
        still: list[tuple[int, str, int, TierOff, list[int]]] = []
        for entry in live:
            if entry is best:
                continue
            if claimed.isdisjoint(entry[4]):
                still.append(entry)
                continue
            _off, rule_id, group, other, others = entry
            left = [i for i in others if i not in claimed]
            off = other.off_for(sum(amounts[i] for i in left)) if left else 0
            if off:
                still.append((-off, rule_id, group, other, left))
        live = still


def _first_order(cart: _Cart, rules: list[FirstOrderOff], applied: list[AppliedRule]) -> None:
    """Step 3: one first-order discount per cart (the largest), over what is left."""
    amounts = cart.amounts
    first: tuple[int, str, FirstOrderOff, list[int]] | None = None
    for rule in rules:
        members = [i for i in _in_scope(rule.scope, cart.lines) if amounts[i] > 0]
        off = min(rule.off_fen, sum(amounts[i] for i in members))
        if off and (first is None or (-off, rule.rule_id) < first[:2]):
            first = (-off, rule.rule_id, rule, members)
    if first is not None:
        neg_off, _rid, rule, members = first
        applied.append(cart.spread(rule, DiscountKind.FIRST_ORDER, -neg_off, members, None))


def _by_key(line: CartLine) -> str:
    return line.key


def _by_rule_id(rule: Rule) -> str:
    return rule.rule_id


def price_cart(lines: Iterable[CartLine], rules: Iterable[Rule], buyer: Buyer = Buyer()) -> PricedCart:
    """Price the lines under the rules (see the module docstring for the order and rounding)."""
    ordered_lines = sorted(lines, key=_by_key)
    cart = _Cart(ordered_lines)
    if len(set(cart.keys)) != len(ordered_lines):
        raise ValueError("line keys must be unique")
    ordered = sorted(rules, key=_by_rule_id)
    if len({r.rule_id for r in ordered}) != len(ordered):
        raise ValueError("rule ids must be unique")
    discounted_units = [0] * len(ordered_lines)
    applied: list[AppliedRule] = []
    if ordered and ordered_lines:
        unit_rules = [r for r in ordered if isinstance(r, PercentOff | FixedPrice)]
        if unit_rules:
            _unit_price_rules(cart, unit_rules, buyer, discounted_units)
        tier_rules = [r for r in ordered if isinstance(r, TierOff)]
        if tier_rules:
            _tiers(cart, tier_rules, applied)
        if buyer.first_order:
            first_rules = [r for r in ordered if isinstance(r, FirstOrderOff)]
            if first_rules:
                _first_order(cart, first_rules, applied)
    return PricedCart(
        lines=tuple(
            _breakdown(line, tuple(ds), units)
            for line, ds, units in zip(ordered_lines, cart.discounts, discounted_units, strict=True)
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
