"""The cart: a guest's lives in their session (a plain {product_id: quantity} mapping the web
layer keeps), a logged-in buyer's in `cart_items`; the guest's is merged in at login. Quotes
price a cart from the database, never from what a form says."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload

from domain import CartItem, DeliveryMethod, Product, ProductStatus, SellerProfile, User, clock
from services import authz, rows
from services.catalog.sellers import seller_name
from services.errors import NotFound, ValidationError
from services.i18n import _
from services.validation import id_or_none, parse_int

from .pricing import CheckoutSettings, ParcelPrice, PricedLine, price_parcel
from .promotions import DiscountKind, LineBreakdown

if TYPE_CHECKING:  # services.campaigns.pricing builds on this package
    from services.campaigns.pricing import OfferItem, Offers

MAX_LINE_QUANTITY = 999
MAX_CART_LINES = 50


def _quantity_error(message: Any) -> ValidationError:
    return ValidationError(message, field_errors={"quantity": [message]})


def parse_quantity(raw: Any, *, allow_zero: bool = False) -> int:
    """A whole number of units, 1..999 (0 too where it means "remove")."""
    if isinstance(raw, bool):
        raise _quantity_error(_("Enter a whole number."))
    if isinstance(raw, int):
        value = raw
    else:
        try:  # the one rule for typed numbers: "２" is 2, "²" and "①" are no number
            value = parse_int(raw, "quantity", minimum=-(2**63), maximum=2**63 - 1)
        except ValidationError:
            raise _quantity_error(_("Enter a whole number.")) from None
    if value < (0 if allow_zero else 1):
        raise _quantity_error(_("The quantity must be at least 1."))
    if value > MAX_LINE_QUANTITY:
        raise _quantity_error(_("At most %(n)d of one product per order.", n=MAX_LINE_QUANTITY))
    return value


def parse_items(raw: Any) -> dict[int, int]:
    """A cart as {product_id: quantity} from a session or a JSON body; bad entries are refused."""
    if not isinstance(raw, Mapping):
        raise ValidationError(
            _("The cart is not valid."), field_errors={"items": [_("The cart is not valid.")]}
        )
    items: dict[int, int] = {}
    for key, qty in raw.items():
        product_id = id_or_none(key)
        if product_id is None:
            raise ValidationError(
                _("The cart is not valid."), field_errors={"items": [_("The cart is not valid.")]}
            )
        items[product_id] = parse_quantity(qty)
    if len(items) > MAX_CART_LINES:
        raise ValidationError(_("At most %(n)d different products per order.", n=MAX_CART_LINES))
    return items


def buyable_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status not in (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT):
        raise NotFound(_("This product is not on sale."))
    return product


def add_to(items: Mapping[int, int], product_id: int, quantity: int) -> dict[int, int]:
    """The cart with `quantity` more of the product (capped at the per-line maximum)."""
    result = dict(items)
    result[product_id] = min(MAX_LINE_QUANTITY, result.get(product_id, 0) + quantity)
    if len(result) > MAX_CART_LINES:
        raise ValidationError(_("At most %(n)d different products per order.", n=MAX_CART_LINES))
    return result


def set_in(items: Mapping[int, int], product_id: int, quantity: int) -> dict[int, int]:
    result = dict(items)
    if quantity <= 0:
        result.pop(product_id, None)
    else:
        result[product_id] = quantity
    return result


# --- a logged-in buyer's cart -------------------------------------------------------------------


def saved_cart(session: Session, user: User | None) -> dict[int, int]:
    user = authz.require_user(user)
    rows = session.execute(
        select(CartItem.product_id, CartItem.quantity)
        .where(CartItem.user_id == user.id)
        .order_by(CartItem.id)
    )
    return {product_id: qty for product_id, qty in rows}


def save_cart(session: Session, user: User | None, items: Mapping[int, int]) -> dict[int, int]:
    """Make the saved cart exactly `items` (absolute, so a repeated request changes nothing)."""
    user = authz.require_user(user)
    current = {
        ci.product_id: ci for ci in session.scalars(select(CartItem).where(CartItem.user_id == user.id))
    }
    for product_id, item in current.items():
        if product_id not in items:
            session.delete(item)
    for product_id, qty in items.items():
        if product_id in current:
            current[product_id].quantity = qty
        else:
            session.add(CartItem(user_id=user.id, product_id=product_id, quantity=qty))
    session.commit()
    return dict(items)


def merge_guest_cart(session: Session, user: User | None, guest: Mapping[int, int]) -> dict[int, int]:
    """At login: the larger quantity of each product wins, so merging twice changes nothing."""
    saved = saved_cart(session, user)
    merged = dict(saved)
    for product_id, qty in guest.items():
        if session.get(Product, product_id) is None:
            continue
        merged[product_id] = max(qty, saved.get(product_id, 0))
    if merged != saved:
        save_cart(session, user, dict(list(merged.items())[:MAX_CART_LINES]))
    return merged


def forget_statement(user_id: int, product_ids: Iterable[int]) -> rows.Statement:
    """Drop bought products from the saved cart: a statement for rows.run_in_turn (one DELETE a
    product, as its parameters cannot expand), which the checkout sends with its other writes in
    one round trip, in its transaction."""
    return (_FORGET_ONE, [{"forget_user": user_id, "forget_product": pid} for pid in sorted(product_ids)])


_FORGET_ONE = delete(rows.table(CartItem)).where(
    rows.table(CartItem).c.user_id == bindparam("forget_user"),
    rows.table(CartItem).c.product_id == bindparam("forget_product"),
)


# --- quotes ------------------------------------------------------------------------------------


@dataclass
class QuoteLine:
    """A cart line priced now: its list price and, under a running campaign, the engine's
    breakdown (services/campaigns/pricing.py): each discount with who funds it, and the price paid."""

    product: Product
    quantity: int
    problem: Any = None  # why it cannot be bought as asked, in the user's language
    breakdown: LineBreakdown | None = None
    item: OfferItem | None = None  # the sign-up whose campaign price the line got

    @property
    def unit_price_fen(self) -> int:
        """The list price of one unit."""
        return self.product.price_fen

    @property
    def line_fen(self) -> int:
        """At list price (as OrderLine.line_fen)."""
        return self.product.price_fen * self.quantity

    @property
    def discount_fen(self) -> int:
        return self.breakdown.discount_fen if self.breakdown else 0

    @property
    def subsidy_fen(self) -> int:
        return self.breakdown.platform_fen if self.breakdown else 0

    @property
    def paid_fen(self) -> int:
        return self.line_fen - self.discount_fen

    @property
    def discounted_units(self) -> int:
        return self.breakdown.discounted_units if self.breakdown else 0

    @property
    def campaign_unit_fen(self) -> int | None:
        """The campaign's unit price, when the line got one."""
        if not self.breakdown or not self.breakdown.discounted_units:
            return None
        unit = next(d for d in self.breakdown.discounts if d.kind in UNIT_KINDS)
        return self.unit_price_fen - unit.amount_fen // self.breakdown.discounted_units

    @property
    def flash_item_id(self) -> int | None:
        """The flash-sale sign-up (a quota) whose campaign price the line got: the checkout says
        it buys at that price (CheckoutInput.flash_items), to be refused at once when it sold out."""
        if self.item is None or self.item.quota is None or not self.discounted_units:
            return None
        return self.item.id

    @property
    def extra_discounts(self) -> list[Any]:
        """满减 and first-order discounts on the line (shown under it)."""
        if not self.breakdown:
            return []
        return [d for d in self.breakdown.discounts if d.kind not in UNIT_KINDS]


UNIT_KINDS = (DiscountKind.FIXED_PRICE, DiscountKind.PERCENT_OFF)


@dataclass
class SellerGroup:
    seller_id: int
    shop_name: str
    lines: list[QuoteLine]
    price: ParcelPrice


@dataclass
class Quote:
    groups: list[SellerGroup] = field(default_factory=list)
    problems: list[QuoteLine] = field(default_factory=list)
    delivery: DeliveryMethod = DeliveryMethod.HOME

    @property
    def items_fen(self) -> int:
        """What the goods cost the buyer, after campaign discounts."""
        return sum(g.price.items_fen for g in self.groups)

    @property
    def list_fen(self) -> int:
        return sum(line.line_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return sum(g.price.discount_fen for g in self.groups)

    @property
    def subsidy_fen(self) -> int:
        return sum(g.price.subsidy_fen for g in self.groups)

    @property
    def shipping_fen(self) -> int:
        return sum(g.price.shipping_fen for g in self.groups)

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.shipping_fen

    @property
    def lines(self) -> list[QuoteLine]:
        return [line for g in self.groups for line in g.lines]

    @property
    def flash_items(self) -> list[int]:
        return [i for i in (line.flash_item_id for line in self.lines) if i is not None]

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines) + sum(p.quantity for p in self.problems)

    @property
    def presale(self) -> bool:
        return any(line.product.presale for line in self.lines)

    @property
    def ok(self) -> bool:
        return bool(self.groups) and not self.problems


def quote(
    session: Session,
    items: Mapping[int, int],
    settings: CheckoutSettings,
    delivery: DeliveryMethod = DeliveryMethod.HOME,
    *,
    photos: bool = False,
    sellers: bool = False,
    buyer: User | None = None,
    now: datetime | None = None,
) -> Quote:
    """Price a cart as it stands now: one parcel per seller; lines that cannot be bought are
    listed under `problems` with the reason (gone, paused, not enough stock).

    The campaigns running at `now` price the lines through the one engine (services/campaigns/
    pricing.py), for `buyer` (their first-order discount and per-buyer limits; None: a visitor).
    `sellers`: the products' sellers (users) loaded in the same statement (the checkout's answer
    names them); `photos`: their photos."""
    result = Quote(delivery=delivery)
    if not items:
        return result
    from services.campaigns import pricing as campaign_pricing  # it builds on this package

    now = now or clock.now()
    products: dict[int, Product] = {}
    shops: dict[int, str | None] = {}
    offer_rows = []
    for row in session.execute(_products_statement(sellers, photos), {"ids": list(items), "now": now}):
        product = row[0]
        products[product.id] = product
        shops[product.seller_id] = row[1]
        offer_rows.append(row[2:])
    offers = campaign_pricing.offers_of(offer_rows)
    by_seller: dict[int, list[QuoteLine]] = {}
    for product_id, qty in items.items():
        product = products.get(product_id)
        if product is None:
            continue  # deleted: nothing to show
        line = QuoteLine(product=product, quantity=qty)
        if product.status != ProductStatus.ACTIVE or (product.stock == 0 and not product.presale):
            line.problem = (
                _("No longer on sale.") if product.status != ProductStatus.SOLD_OUT else _("Sold out.")
            )
        elif product.stock < qty:
            line.problem = _("Only %(n)d left.", n=product.stock)
        if line.problem is not None:
            result.problems.append(line)
        else:
            by_seller.setdefault(product.seller_id, []).append(line)
    _apply_campaigns(session, [line for lines in by_seller.values() for line in lines], buyer, now, offers)
    for seller_id in sorted(by_seller):
        lines = by_seller[seller_id]
        price = price_parcel(
            (
                PricedLine(
                    product_id=line.product.id,
                    quantity=line.quantity,
                    unit_price_fen=line.product.price_fen,
                    net_weight_g=line.product.net_weight_g,
                    storage_class=line.product.storage_class,
                    discount_fen=line.discount_fen,
                    subsidy_fen=line.subsidy_fen,
                )
                for line in lines
            ),
            delivery,
            settings,
        )
        shop = shops.get(seller_id) or seller_name(lines[0].product.seller, None)
        result.groups.append(SellerGroup(seller_id=seller_id, shop_name=shop, lines=lines, price=price))
    return result


@functools.cache
def _products_statement(sellers: bool, photos: bool) -> Select[Any]:
    """The quote's products with each seller's shop name (the parcel's heading) and each
    product's offer in a campaign running at `now` (its columns after the first two, NULL when
    none: services/campaigns/pricing.py RUNNING_OFFER), in one query; built once per kind
    (building it with its loader options cost more than running it)."""
    from services.campaigns import pricing as campaign_pricing  # it builds on this package

    # Pricing needs the product row only: its usual eager companions (seller, category, origin,
    # certificates) load only if a page touches them, photos only when the page shows them.
    options = [joinedload(Product.seller) if sellers else lazyload(Product.seller)]
    options += [lazyload(Product.category), lazyload(Product.origin)]
    options += [
        lazyload(Product.certifications),
        selectinload(Product.photos) if photos else lazyload(Product.photos),
    ]
    offer = campaign_pricing.RUNNING_OFFER
    return (
        select(Product, SellerProfile.shop_name, *offer.c)
        .outerjoin(SellerProfile, SellerProfile.user_id == Product.seller_id)
        .outerjoin(offer, offer.c.item_product_id == Product.id)
        .where(Product.id.in_(bindparam("ids", expanding=True)))
        .options(*options)
    )


def _apply_campaigns(
    session: Session, lines: list[QuoteLine], buyer: User | None, now: datetime, offers: Offers
) -> None:
    """Each line's breakdown under the running campaigns' `offers` (read with the products;
    nothing when none touches the cart)."""
    from services.campaigns import pricing as campaign_pricing  # it builds on this package

    if not lines:
        return
    priced = campaign_pricing.price_lines(
        session,
        [campaign_pricing.LineInput(str(line.product.id), line.product, line.quantity) for line in lines],
        buyer,
        now,
        offers=offers.only(line.product.id for line in lines),
    )
    if not priced.offers:
        return
    for line in lines:
        breakdown = priced.cart.line(str(line.product.id))
        if breakdown.discounts:
            line.breakdown = breakdown
            line.item = priced.item_of(breakdown)
