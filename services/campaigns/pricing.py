"""The campaigns' rules for the pricing engine (services/orders/promotions.py): which running
campaigns touch a set of products, as engine rules, with what the buyer already holds of each
per-buyer limit and what is left of each flash-sale quota and subsidy budget.

Every price a buyer sees goes through here and the one engine: the shelf (cards, lists, search,
the product page: `shelf_prices`, one unit, no buyer) and the cart, checkout and the API
(`price_lines` from services.orders.cart.quote, with the buyer). A rule is built per approved
sign-up (its fixed price, else the campaign's percentage), plus one 满减 rule and one first-order
rule per campaign; rule ids are "c{campaign}:i{item}", "c{campaign}:tiers", "c{campaign}:first".

Quota and limits. An item's per-buyer limit counts the units the buyer holds or bought at its
price (campaign_holds not released). A flash-sale quota is folded into the same engine limit: the
buyer may have at most (units they hold) + (quota left) at the price, so a quote never promises
units the quota does not have; at checkout the conditional UPDATE of quota_used decides
(services/campaigns/holds.py). An item whose quota is used up is off the shelf price (sold out at
the campaign price: the badge says so) and its product sells at list price.

Budgets. A campaign with a platform share needs budget for its subsidy: once its budget is used
up its subsidised rules give no discount (its seller-funded prices stay), and when the cart's
subsidy from a campaign would exceed what is left of its budget, the cart is priced again without
that campaign's subsidised rules (the most-overdrawn first), so a quote never spends budget that is
not there. The checkout takes the budget with a conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.orm import Session

from domain import (
    Campaign,
    CampaignHold,
    CampaignItem,
    CampaignStatus,
    Order,
    OrderStatus,
    ReservationStatus,
    SignupStatus,
    SubOrder,
    TierBasisKind,
    User,
    clock,
)
from services.orders import promotions as engine


@dataclass(frozen=True, slots=True)
class OfferCampaign:
    """What the pricing reads of a running campaign: a snapshot of its row (not an ORM object,
    so a page of cards or a cart builds none of the ORM's identity and loading machinery)."""

    id: int
    name: str
    platform_bps: int
    price_platform_bps: int
    budget_fen: int
    subsidy_used_fen: int
    percent_off_bps: int | None
    tiers: list[list[int]]
    tier_basis: TierBasisKind
    first_order_off_fen: int | None


@dataclass(frozen=True, slots=True)
class OfferItem:
    """What the pricing, the flash-sale gate and the holds read of an approved sign-up."""

    id: int
    campaign_id: int
    product_id: int
    campaign_price_fen: int | None
    quota: int | None
    quota_used: int
    per_buyer_limit: int | None

    @property
    def sold_out(self) -> bool:
        return self.quota is not None and self.quota_used >= self.quota


@dataclass(frozen=True, slots=True)
class Offer:
    """One approved sign-up in a running campaign."""

    item: OfferItem
    campaign: OfferCampaign


@dataclass
class Offers:
    """The running campaigns touching some products, and their approved sign-ups by product."""

    campaigns: dict[int, OfferCampaign] = field(default_factory=dict)
    by_product: dict[int, list[Offer]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_product)

    def items(self) -> dict[int, OfferItem]:
        return {o.item.id: o.item for offers in self.by_product.values() for o in offers}

    def only(self, product_ids: Iterable[int]) -> Offers:
        """The offers on these products alone (and their campaigns)."""
        wanted = set(product_ids)
        by_product = {pid: offers for pid, offers in self.by_product.items() if pid in wanted}
        ids = {o.campaign.id for offers in by_product.values() for o in offers}
        return Offers({cid: c for cid, c in self.campaigns.items() if cid in ids}, by_product)


_CAMPAIGN_COLUMNS = (
    Campaign.id,
    Campaign.name,
    Campaign.platform_bps,
    Campaign.price_platform_bps,
    Campaign.budget_fen,
    Campaign.subsidy_used_fen,
    Campaign.percent_off_bps,
    Campaign.tiers,
    Campaign.tier_basis,
    Campaign.first_order_off_fen,
)
_ITEM_COLUMNS = (
    CampaignItem.id,
    CampaignItem.campaign_id,
    CampaignItem.product_id,
    CampaignItem.campaign_price_fen,
    CampaignItem.quota,
    CampaignItem.quota_used,
    CampaignItem.per_buyer_limit,
)
_N_CAMPAIGN = len(_CAMPAIGN_COLUMNS)

_RUNNING = (
    CampaignItem.status == SignupStatus.APPROVED,
    Campaign.status == CampaignStatus.PUBLISHED,
    Campaign.starts_at <= bindparam("now"),
    Campaign.ends_at > bindparam("now"),
)
# Built once (a statement's construction costs more than its run here); the ids and the instant are
# bound parameters. Columns, not entities: the rows become the two snapshots above (`offers_of`).
_RUNNING_OFFERS = (
    select(*_CAMPAIGN_COLUMNS, *_ITEM_COLUMNS)
    .join(Campaign, Campaign.id == CampaignItem.campaign_id)
    .where(CampaignItem.product_id.in_(bindparam("product_ids", expanding=True)), *_RUNNING)
    .order_by(Campaign.id, CampaignItem.id)
)
# The same offers as a subquery to outer-join to a query of products on `product_id` (the cart's
# quote reads its products and their offers in one statement: services/orders/cart.py); its
# columns, in the order `offers_of` reads them, are `.c`. Bind `now`. (A product is in one campaign
# at a time, so one row a product; a reader keeps each product once anyway.)
RUNNING_OFFER = (
    select(
        *(c.label(f"campaign_{c.key}") for c in _CAMPAIGN_COLUMNS),
        *(c.label(f"item_{c.key}") for c in _ITEM_COLUMNS),
    )
    .join(Campaign, Campaign.id == CampaignItem.campaign_id)
    .where(*_RUNNING)
    .subquery("running_offer")
)


_RUNNING_IDS = select(Campaign.id).where(
    Campaign.status == CampaignStatus.PUBLISHED,
    Campaign.starts_at <= bindparam("now"),
    Campaign.ends_at > bindparam("now"),
)


def running_campaign_ids(session: Session, now: datetime | None = None) -> frozenset[int]:
    """The campaigns running at `now`. Constant between two of the catalog's freshness keys (a
    campaign's start and end are boundaries, its edits bump the version), so a page may keep it
    per key (marketplace/web/shop/cache.py per_key) and skip the shelf's pricing when it is empty."""
    return frozenset(session.scalars(_RUNNING_IDS, {"now": now or clock.now()}))


def running_offers(session: Session, product_ids: Iterable[int], now: datetime | None = None) -> Offers:
    """The approved sign-ups of these products in campaigns running at `now` (one query)."""
    ids = sorted(set(product_ids))
    if not ids:
        return Offers()
    return offers_of(session.execute(_RUNNING_OFFERS, {"product_ids": ids, "now": now or clock.now()}))


def offers_of(rows: Iterable[Sequence[Any]]) -> Offers:
    """Offers from rows of the running offers' columns (`_RUNNING_OFFERS`, or `RUNNING_OFFER`
    joined to a query of products: rows without an offer, all NULLs, are left out), taken in
    campaign then sign-up order whatever order the rows came in."""
    offers = Offers()
    campaigns = offers.campaigns
    for row in sorted((r for r in rows if r[0] is not None), key=lambda r: (r[0], r[_N_CAMPAIGN])):
        campaign = campaigns.get(row[0])
        if campaign is None:
            campaign = campaigns[row[0]] = OfferCampaign(*row[:_N_CAMPAIGN])
        item = OfferItem(*row[_N_CAMPAIGN:])
        offers.by_product.setdefault(item.product_id, []).append(Offer(item, campaign))
    return offers


def _budget_left(campaign: OfferCampaign) -> int | None:
    """Fen of subsidy left, None when the campaign pays none (seller-funded)."""
    if campaign.platform_bps == 0 and campaign.price_platform_bps == 0:
        return None
    return max(0, campaign.budget_fen - campaign.subsidy_used_fen)


def _unfunded(campaign: OfferCampaign, skip: set[int]) -> bool:
    """The campaign's subsidised rules are off: its budget is used up, or this cart would overdraw it."""
    return campaign.id in skip or _budget_left(campaign) == 0


def unit_rule_id(campaign_id: int, item_id: int) -> str:
    return f"c{campaign_id}:i{item_id}"


def _rules(
    offers: Offers,
    in_cart: Mapping[int, int],
    held: Mapping[int, int],
    skip: set[int],
) -> tuple[list[engine.Rule], dict[tuple[str, int], int]]:
    """Engine rules for the offers on the products `in_cart` ({product_id: seller_id}), leaving
    out the subsidised rules of the campaigns in `skip` (and of those whose budget is used up: a
    seller-funded price stays); with the prior units by (rule id, product) from `held`."""
    rules: list[engine.Rule] = []
    prior: dict[tuple[str, int], int] = {}
    members: dict[int, set[int]] = {}
    for product_id, offers_of in offers.by_product.items():
        if product_id not in in_cart:
            continue
        for offer in offers_of:
            campaign, item = offer.campaign, offer.item
            members.setdefault(campaign.id, set()).add(product_id)
            if campaign.price_platform_bps and _unfunded(campaign, skip):
                continue
            funding = engine.Funding(campaign.price_platform_bps)
            rule_id = unit_rule_id(campaign.id, item.id)
            limit = item.per_buyer_limit
            mine = held.get(item.id, 0)
            if item.quota is not None:
                left = item.quota - item.quota_used
                if left <= 0:
                    continue
                limit = min(limit, mine + left) if limit is not None else mine + left
            if limit is not None:
                prior[(rule_id, product_id)] = mine
            scope = engine.Scope(product_ids=frozenset({product_id}))
            if item.campaign_price_fen is not None:
                rules.append(
                    engine.FixedPrice(rule_id, campaign.id, item.campaign_price_fen, scope, funding, limit)
                )
            elif campaign.percent_off_bps:
                rules.append(
                    engine.PercentOff(rule_id, campaign.id, campaign.percent_off_bps, scope, funding, limit)
                )
    for campaign_id, product_ids in sorted(members.items()):
        campaign = offers.campaigns[campaign_id]
        if campaign.platform_bps and _unfunded(campaign, skip):
            continue
        funding = engine.Funding(campaign.platform_bps)
        scope = engine.Scope(product_ids=frozenset(product_ids))
        if campaign.tiers:
            rules.append(
                engine.TierOff(
                    f"c{campaign_id}:tiers",
                    campaign_id,
                    tuple((int(t), int(o)) for t, o in campaign.tiers),
                    engine.TierBasis(campaign.tier_basis.value),
                    scope,
                    funding,
                )
            )
        if campaign.first_order_off_fen:
            rules.append(
                engine.FirstOrderOff(
                    f"c{campaign_id}:first", campaign_id, campaign.first_order_off_fen, scope, funding
                )
            )
    return rules, prior


_HELD_UNITS = (
    select(CampaignHold.item_id, func.sum(CampaignHold.units))
    .where(
        CampaignHold.item_id.in_(bindparam("item_ids", expanding=True)),
        CampaignHold.buyer_id == bindparam("buyer_id"),
        CampaignHold.status != ReservationStatus.RELEASED,
    )
    .group_by(CampaignHold.item_id)
)


def held_units(session: Session, buyer_id: int, item_ids: Sequence[int]) -> dict[int, int]:
    """Units the buyer holds or bought at each item's price (holds not released)."""
    if not item_ids:
        return {}
    rows = session.execute(_HELD_UNITS, {"item_ids": list(item_ids), "buyer_id": buyer_id})
    return {item_id: int(units or 0) for item_id, units in rows}


_PLACED_BEFORE = select(
    exists().where(
        SubOrder.order_id == Order.id,
        Order.buyer_id == bindparam("buyer_id"),
        SubOrder.status != OrderStatus.CANCELLED,
    )
)


def is_first_order(session: Session, buyer_id: int) -> bool:
    """No order of the buyer's so far that was not cancelled (an expired or cancelled unpaid
    order does not use up the first-order discount)."""
    return not session.scalar(_PLACED_BEFORE, {"buyer_id": buyer_id})


UNIT_KINDS = (engine.DiscountKind.FIXED_PRICE, engine.DiscountKind.PERCENT_OFF)


class Priceable(Protocol):
    """What the engine reads of a product: a Product row, or a list's ProductCard."""

    @property
    def id(self) -> int: ...
    @property
    def seller_id(self) -> int: ...
    @property
    def price_fen(self) -> int: ...
    @property
    def category_id(self) -> int: ...
    @property
    def county_code(self) -> str: ...


@dataclass(frozen=True)
class LineInput:
    key: str
    product: Priceable
    quantity: int


def _cart_line(line: LineInput) -> engine.CartLine:
    product = line.product
    return engine.CartLine(
        key=line.key,
        product_id=product.id,
        seller_id=product.seller_id,
        unit_list_fen=product.price_fen,
        quantity=line.quantity,
        category_id=product.category_id,
        county_code=product.county_code,
    )


@dataclass
class Priced:
    cart: engine.PricedCart
    offers: Offers
    first_order: bool = False

    def item_of(self, line: engine.LineBreakdown) -> OfferItem | None:
        """The sign-up whose unit price the line got, if any."""
        for d in line.discounts:
            if d.kind in UNIT_KINDS:
                item_id = int(d.rule_id.rsplit(":i", 1)[1])
                return self.offers.items().get(item_id)
        return None


def price_lines(
    session: Session,
    lines: Sequence[LineInput],
    buyer: User | None = None,
    now: datetime | None = None,
    *,
    offers: Offers | None = None,
) -> Priced:
    """The lines priced under the campaigns running at `now`, for `buyer` (None: a visitor, with
    no first-order discount and no units held)."""
    if offers is None:
        offers = running_offers(session, (line.product.id for line in lines), now)
    cart_lines = [_cart_line(line) for line in lines]
    if not offers:
        return Priced(engine.price_cart(cart_lines, ()), offers)
    held: dict[int, int] = {}
    first_order = False
    if buyer is not None:
        # What the buyer holds matters to an item with a per-buyer limit or a quota only.
        limited = sorted(i.id for i in offers.items().values() if i.per_buyer_limit or i.quota is not None)
        held = held_units(session, buyer.id, limited)
        first_order = any(c.first_order_off_fen for c in offers.campaigns.values()) and is_first_order(
            session, buyer.id
        )
    in_cart = {line.product.id: line.product.seller_id for line in lines}
    skip: set[int] = set()
    while True:
        rules, prior = _rules(offers, in_cart, held, skip)
        priced = engine.price_cart(cart_lines, rules, engine.Buyer(first_order, prior))
        over = _overdrawn(priced, offers)
        if over is None:
            return Priced(priced, offers, first_order)
        skip.add(over)


def _overdrawn(priced: engine.PricedCart, offers: Offers) -> int | None:
    """The campaign whose subsidy in this cart exceeds its budget left the most, if any."""
    spent: dict[int, int] = {}
    for line in priced.lines:
        for d in line.discounts:
            spent[d.campaign_id] = spent.get(d.campaign_id, 0) + d.platform_fen
    worst: tuple[int, int] | None = None
    for campaign_id, fen in sorted(spent.items()):
        left = _budget_left(offers.campaigns[campaign_id])
        if left is not None and fen > left and (worst is None or fen - left > worst[0]):
            worst = (fen - left, campaign_id)
    return None if worst is None else worst[1]


# --- the shelf: one unit of each product, no buyer --------------------------------------------


@dataclass(frozen=True)
class ShelfPrice:
    """What a card or the product page shows: the price of one unit now, the list price when a
    campaign lowers it, the campaign, its 满减 tiers, and whether its flash-sale quota is gone."""

    list_fen: int
    price_fen: int
    campaign_id: int | None = None
    campaign_name: str = ""
    tiers: tuple[tuple[int, int], ...] = ()
    sold_out: bool = False  # the campaign price's quota is used up

    @property
    def discounted(self) -> bool:
        return self.price_fen < self.list_fen


def shelf_prices(
    session: Session, products: Sequence[Priceable], now: datetime | None = None
) -> dict[int, ShelfPrice]:
    """One unit of each product priced by the engine, as a visitor sees it: its unit price (what
    one unit costs in a cart before 满减 and first-order discounts, which the card shows as
    badges). Products in no running campaign are not in the result."""
    offers = running_offers(session, (p.id for p in products), now)
    if not offers:
        return {}
    out: dict[int, ShelfPrice] = {}
    for product in products:
        offers_of = offers.by_product.get(product.id)
        if not offers_of:
            continue
        single = Offers(offers.campaigns, {product.id: offers_of})
        priced = price_lines(session, [LineInput("p", product, 1)], None, offers=single)
        line = priced.cart.lines[0]
        unit = next((d for d in line.discounts if d.kind in UNIT_KINDS), None)
        campaign = offers.campaigns[unit.campaign_id] if unit else offers_of[0].campaign
        tiers = next((o.campaign.tiers for o in offers_of if o.campaign.tiers), [])
        out[product.id] = ShelfPrice(
            list_fen=product.price_fen,
            price_fen=product.price_fen - (unit.amount_fen if unit else 0),
            campaign_id=campaign.id,
            campaign_name=campaign.name,
            tiers=tuple((int(t), int(o)) for t, o in tiers),
            sold_out=unit is None and any(o.item.sold_out for o in offers_of),
        )
    return out
