"""Placing an order: the server prices the cart itself, takes the stock, and writes the order,
one sub-order per seller, the reservations and the payment row in one short transaction.

The call to the payment gateway happens after that commit (services.payments), so no stock
row is ever locked while the gateway thinks. Every placement carries the client's
idempotency key: a double tap or a retried request returns the order already placed.

Units taken wait unpaid for the payment window, so one buyer could keep a product sold out for
everyone; the caps on unpaid orders, held units and the placing rate (CheckoutSettings says the
rules) are counted under a lock on the buyer's (and placer's) user row, so two checkouts of one
buyer at once are counted one after the other.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, not_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    DeliveryMethod,
    NotificationEvent,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Product,
    Role,
    StockReservation,
    SubOrder,
    User,
    clock,
)
from services import authz, places, rows
from services.campaigns import gate as campaign_gate
from services.campaigns import holds as campaign_holds
from services.errors import Conflict, RateLimited, ValidationError
from services.i18n import _, yuan_text
from services.validation import check_text, normalize_phone

from . import cart as carts
from .addresses import AddressInput, check_address, own_address
from .lookup import BY_KEY as _BY_KEY
from .lookup import find_by_key
from .pricing import CheckoutSettings
from .reservations import Holds, stock_taken, take_statements, unpaid_holds

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ONLINE_METHODS = (PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)
# Paid through the village agent who places a proxy order: cash now, or on the agent's credit.
THROUGH_AGENT = (PaymentMethod.CASH, PaymentMethod.CREDIT)


class OutOfStock(Conflict):
    code = "out_of_stock"


class HoldLimit(Conflict):
    """Too much is already held unpaid (orders or units): pay or cancel first."""

    code = "unpaid_limit"


class TooManyOrders(RateLimited):
    code = "too_many_orders"


class PriceChanged(Conflict):
    code = "price_changed"


def _field(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


def check_idempotency_key(raw: Any) -> str:
    """The idempotency key a form or client sent, checked; a field error asks for a reload."""
    key = str(raw or "").strip()
    if not KEY_RE.match(key):
        raise _field("idempotency_key", _("This form has expired. Please reload the page and try again."))
    return key


def new_idempotency_key() -> str:
    """A fresh idempotency key for a form that places or refunds something."""
    return secrets.token_urlsafe(18)


# --- placing an order ----------------------------------------------------------------------------


@dataclass
class CheckoutInput:
    items: Mapping[int, int]
    idempotency_key: str
    payment_method: str = PaymentMethod.CARD.value
    delivery: str = DeliveryMethod.HOME.value
    address_id: int | str | None = None
    address: AddressInput | None = None  # a new address typed at checkout
    pickup_node_id: int | str | None = None
    pickup_contact: AddressInput | None = None  # name and phone for the pickup code
    # The total the buyer was shown (the checkout page sends it): when prices moved since (a
    # campaign started or ended, a quota or budget ran out, a per-buyer limit was reached in
    # another checkout), the order is refused with PriceChanged instead of charging another sum.
    expected_total_fen: int | str | None = None
    # The same for the goods alone (the web checkout shows one goods sum for both deliveries).
    expected_items_fen: int | str | None = None
    # The flash-sale sign-ups whose campaign price the buyer was shown (the quote's
    # `flash_items`): once one of them has sold out (the flash-sale gate's counter), the checkout
    # is refused at once with QuotaGone, before its cart is priced (services/campaigns/gate.py).
    flash_items: Sequence[int | str] = ()
    # Units of flash-sale items already let through the gate for this checkout, {item id: units}:
    # the door in front of the API took them (marketplace/flash_door.py). The checkout takes out
    # of this dict the units its order uses (given back by the checkout if it then fails) and
    # asks the gate only for more; the door gives back what is left once the app has answered.
    flash_tickets: dict[int, int] | None = None


@dataclass
class Placed:
    order: Order
    created: bool  # False when the key had already placed it


def _order_number(now: datetime) -> str:
    return f"{clock.local(now):%Y%m%d}{secrets.randbelow(10**10):010d}"


def _same_request(order: Order, items: Mapping[int, int]) -> bool:
    placed: dict[int, int] = {}
    for sub in order.sub_orders:
        for line in sub.lines:
            placed[line.product_id] = placed.get(line.product_id, 0) + line.quantity
    return placed == dict(items)


def _choice(enum_type: Any, raw: Any, field: str, message: Any) -> Any:
    try:
        return enum_type(str(raw or ""))
    except ValueError:
        raise _field(field, message) from None


def place_order(
    session: Session,
    buyer: User | None,
    data: CheckoutInput,
    settings: CheckoutSettings,
    *,
    placed_by: User | None = None,
    villager_id: int | None = None,
    now: datetime | None = None,
) -> Placed:
    """Place the buyer's order for `data.items`; the same idempotency key returns the same order.

    `placed_by`: the village agent placing a proxy order for `buyer` (a villager). The caps on
    unpaid orders and units and the rate limit count per buyer, whoever placed the orders; an
    agent's proxy orders also count against the placer's own larger caps and rate (the rules:
    CheckoutSettings). A replay of a placed order's key returns it before any cap is counted.

    `villager_id`: the villager the proxy order is for (services/proxy, which checked the agent
    may act for them), recorded as the buyer of record; `buyer` is then the villager's own
    account, or the agent when the villager has none. Cash and credit (on the agent's credit,
    paid for the sellers at once: services/proxy/credit.py) are for proxy orders only."""
    buyer = authz.require_user(buyer)
    key = check_idempotency_key(data.idempotency_key)
    items = carts.parse_items(data.items)
    placer = placed_by or buyer
    # The crowd after a flash sale's last unit: told so before anything is priced or written
    # (unless the door let this checkout in: it holds a unit of each item it claims).
    tickets = data.flash_tickets if data.flash_tickets is not None else {}
    flash_items = _flash_items(data.flash_items)
    sold_out = not tickets and campaign_gate.current().sold_out(session, flash_items)
    # Checkouts of one buyer (and of one placer) queue here until this one commits or rolls
    # back, so each counts the caps and its idempotency key after the one before it.
    existing = _lock_and_find(session, buyer.id, placer.id, key)
    if existing is not None:
        if not _same_request(existing, items):
            raise Conflict(_("This checkout was already used for another order. Please reload the page."))
        return Placed(existing, False)
    if not items:
        raise _field("items", _("Your cart is empty."))
    if sold_out:
        raise campaign_holds.quota_gone()

    method = _choice(PaymentMethod, data.payment_method, "payment_method", _("Choose how to pay."))
    delivery = _choice(DeliveryMethod, data.delivery, "delivery", _("Choose home delivery or pickup."))
    proxy = placer.id != buyer.id or villager_id is not None
    if method not in ONLINE_METHODS and not _cash_at_own_point(proxy, placer, delivery, data, method):
        # Cash is for proxy orders a village agent places for pickup at their own point and
        # takes the cash for (services/cash.py take_cash); credit too, on that agent's credit.
        raise _field("payment_method", _("Choose how to pay."))
    ship = _destination(session, buyer, data, delivery)

    now = now or clock.now()
    # With the sellers: the placed order's answer names each sub-order's seller.
    quote = carts.quote(session, items, settings, delivery, sellers=True, buyer=buyer, now=now)
    known = {line.product.id for line in quote.lines} | {line.product.id for line in quote.problems}
    if set(items) - known:
        raise _field("items", _("This product is not on sale."))
    if quote.problems:
        first = quote.problems[0]
        raise OutOfStock(
            _("%(name)s: %(problem)s", name=first.product.name, problem=first.problem),
            field_errors={f"items.{p.product.id}": [p.problem] for p in quote.problems},
        )
    if any(line.product.seller_id == buyer.id for line in quote.lines):
        raise _field("items", _("You cannot buy your own products."))
    presale = quote.presale
    if presale:
        # One authorisation is captured once, at dispatch: a pre-sale is checked out on its own,
        # one seller's pre-sale goods only, and by card (wallets cannot hold an authorisation).
        if len(quote.groups) > 1 or not all(line.product.presale for line in quote.lines):
            raise _field(
                "items", _("Pre-sale items are paid for separately. Please check them out on their own.")
            )
        if method != PaymentMethod.CARD:
            raise _field("payment_method", _("Pre-sale items can only be paid by card."))
    check_total(quote.total_fen, settings)
    _check_expected(data.expected_total_fen, quote.total_fen, "expected_total_fen")
    _check_expected(data.expected_items_fen, quote.items_fen, "expected_items_fen")

    check_limits(session, buyer, placer, quote, settings, now, proxy=proxy)
    if method == PaymentMethod.CREDIT:
        from services.proxy import credit  # it builds on this module's orders

        credit.check_available(session, placer, quote.total_fen)  # the placer's row is locked
    # A flash sale's crowd is let through before the rows only as far as the quota goes
    # (services/campaigns/gate.py); a checkout that does not place gives its units back.
    admitted = _admit(session, quote, tickets)
    placed = False
    try:
        pay_by = now + settings.payment_window_for(sum(items.values()))
        order = Order(
            number=_order_number(now),
            buyer_id=buyer.id,
            placed_by_id=placer.id,
            villager_id=villager_id,
            idempotency_key=key,
            payment_method=method,
            delivery_method=delivery,
            items_fen=quote.items_fen,
            shipping_fen=quote.shipping_fen,
            total_fen=quote.total_fen,
            presale=presale,
            pay_by=pay_by,
            created_at=now,
            **ship,
        )
        for position, group in enumerate(quote.groups, start=1):
            sub = SubOrder(
                number=f"{order.number}-{position}",
                seller_id=group.seller_id,
                seller=group.lines[0].product.seller,
                status=OrderStatus.PENDING_PAYMENT,
                status_changed_at=now,
                items_fen=group.price.items_fen,
                shipping_fen=group.price.shipping_fen,
                total_fen=group.price.total_fen,
                commission_fen=group.price.commission_fen,
                discount_fen=group.price.discount_fen,
                subsidy_fen=group.price.subsidy_fen,
                weight_g=group.price.weight_g,
                storage_class=group.price.storage_class,
            )
            for line in group.lines:
                sub.lines.append(
                    OrderLine(
                        product_id=line.product.id,
                        name=line.product.name,
                        unit=line.product.unit,
                        unit_price_fen=line.product.price_fen,
                        quantity=line.quantity,
                        line_fen=line.line_fen,
                        discount_fen=line.discount_fen,
                        paid_fen=line.paid_fen,
                        subsidy_fen=line.subsidy_fen,
                        discounted_units=line.discounted_units,
                        discounts=campaign_holds.discounts_json(line.breakdown),
                        net_weight_g=line.product.net_weight_g,
                        presale=line.product.presale,
                    )
                )
            order.sub_orders.append(sub)
        order.payment = Payment(
            method=method,
            amount_fen=order.total_fen,
            currency=settings.currency,
            capture_method="manual" if presale else "automatic",
            status=PaymentStatus.AWAITING_CASH if method == PaymentMethod.CASH else PaymentStatus.CREATING,
            idempotency_key=f"pay-{order.number}",
            created_at=now,
        )
        if method not in THROUGH_AGENT:
            # The first try at paying opens with the payment, in this transaction (services/payments
            # records each later try; the first one's keys are the payment's own).
            order.payment.attempts.append(
                PaymentAttempt(
                    number=1, method=method, request_key=order.payment.idempotency_key, created_at=now
                )
            )
        # Written with one INSERT a table and kept in the session as loaded (services/rows.py):
        # the unit of work's bookkeeping cost more than the rest of the checkout's Python.
        try:
            rows.insert_new(session, [order])  # a concurrent request with the same key waits here, then fails
        except IntegrityError:
            session.rollback()
            existing = find_by_key(session, buyer.id, key)
            if existing is None:
                raise
            return Placed(existing, False)
        subs = order.sub_orders
        lines = [line for sub in subs for line in sub.lines]
        rows.insert_new(session, subs)
        rows.insert_new(session, lines)
        rows.insert_new(session, [order.payment])
        rows.insert_new(session, order.payment.attempts)
        rows.attach(session, [order, *subs, *lines, order.payment, *order.payment.attempts])
        held, holds_written = campaign_holds.to_write(order, _holds(quote, order), now)
        actor_id = (placed_by or buyer).id
        # What nobody reads back in this request (the campaign holds, the events, the
        # reservations, the bought products out of the saved cart), then the contended rows
        # last, so their locks are held for as short a time as possible (a flash sale's crowd
        # queues on them): the products' stock, then the campaigns' quotas and budgets
        # (services/campaigns/holds.py), then the commit. All in one round trip on PostgreSQL
        # (rows.run_in_turn): no lock is held while this request waits for its turn.
        written: list[rows.Statement] = [
            *holds_written,
            (
                _INSERT_EVENTS,
                [
                    {
                        "sub_order_id": sub.id,
                        "from_status": None,
                        "to_status": OrderStatus.PENDING_PAYMENT,
                        "actor_id": actor_id,
                        "created_at": now,
                    }
                    for sub in subs
                ],
            ),
            (
                _INSERT_RESERVATIONS,
                [
                    {
                        "order_id": order.id,
                        "line_id": line.id,
                        "product_id": line.product_id,
                        "quantity": line.quantity,
                        "expires_at": pay_by,
                        "created_at": now,
                    }
                    for line in lines
                ],
            ),
        ]
        if villager_id is None:  # a proxy order leaves the buyer's own cart (the agent's) alone
            written.append(carts.forget_statement(buyer.id, items))
        stock = take_statements(items)
        answers = rows.run_in_turn(session, written + stock + campaign_holds.take_statements(held))
        answers = answers[len(written) :]
        short = stock_taken(session, items, answers[: len(stock)])
        if short:
            session.rollback()
            raise _out_of_stock(session, short[0])
        try:
            campaign_holds.taken(session, held, answers[len(stock) :])
        except Conflict:
            session.rollback()
            raise
        if method == PaymentMethod.CREDIT:
            session.flush()
            credit.pay_on_credit(session, order, placer, now=now)
        if villager_id is not None:
            from services import notify  # the villager is told by SMS (not the agent)

            notify.record(session, NotificationEvent.PROXY_PLACED, order, now=now)
        session.commit()
        placed = True
        return Placed(order, True)
    finally:
        if not placed:
            for item_id, units in admitted:
                campaign_gate.current().give_back(item_id, units)


# Built once (every checkout writes both; building a statement costs about as much as running it).
_INSERT_EVENTS = insert(rows.table(OrderEvent))
_INSERT_RESERVATIONS = insert(rows.table(StockReservation))


def _admit(session: Session, quote: carts.Quote, tickets: dict[int, int]) -> list[tuple[int, int]]:
    """Pass the flash-sale gate for each line at a quota'd campaign price; QuotaGone at once
    (nothing written, nothing locked) when the quota has no more units. Units the door already
    let through (`tickets`) are used first and taken out of `tickets`."""
    gate = campaign_gate.current()
    admitted: list[tuple[int, int]] = []
    for line in quote.lines:
        item = line.item
        if item is None or item.quota is None or not line.discounted_units:
            continue
        held = min(tickets.pop(item.id, 0), line.discounted_units)
        if held:
            admitted.append((item.id, held))
        more = line.discounted_units - held
        if more and not gate.admit(session, item.id, more):
            for item_id, units in admitted:
                gate.give_back(item_id, units)
            raise campaign_holds.quota_gone()
        if more:
            admitted.append((item.id, more))
    return admitted


def _flash_items(raw: Sequence[int | str]) -> list[int]:
    """The flash-sale sign-up ids the checkout says it buys at (a field error if not ids)."""
    try:
        ids = [int(str(i)) for i in raw]
    except ValueError:
        raise _field(
            "flash_items", _("This form has expired. Please reload the page and try again.")
        ) from None
    if len(ids) > carts.MAX_CART_LINES or any(i <= 0 for i in ids):
        raise _field("flash_items", _("This form has expired. Please reload the page and try again."))
    return ids


def _check_expected(raw: Any, total_fen: int, field: str) -> None:
    """PriceChanged when the buyer was shown another sum than the one they would pay now."""
    if raw in (None, ""):
        return
    try:
        expected = int(str(raw))
    except ValueError:
        raise _field(field, _("This form has expired. Please reload the page and try again.")) from None
    if expected != total_fen:
        raise PriceChanged(
            _(
                "The price has changed to %(amount)s since you looked. "
                "Please check your order and confirm again.",
                amount=yuan_text(total_fen),
            ),
            field_errors={field: [_("The price has changed.")]},
        )


def _holds(quote: carts.Quote, order: Order) -> list[campaign_holds.HoldInput]:
    """What the order's lines hold of their campaigns (quota units, subsidy)."""
    lines = {(sub.seller_id, line.product_id): line for sub in order.sub_orders for line in sub.lines}
    out: list[campaign_holds.HoldInput] = []
    for group in quote.groups:
        for quoted in group.lines:
            if quoted.breakdown is None:
                continue
            item_ids = {quoted.item.campaign_id: quoted.item.id} if quoted.item is not None else {}
            out += campaign_holds.holds_for_line(lines[(group.seller_id, quoted.product.id)], item_ids)
    return out


def _cash_at_own_point(
    proxy: bool, placer: User, delivery: DeliveryMethod, data: CheckoutInput, method: PaymentMethod
) -> bool:
    """A proxy order (placed for someone else) picked up at a point the placer is agent of;
    on credit, that agent may give credit there (authz.PROXY_ACTIONS)."""
    if not proxy or delivery != DeliveryMethod.PICKUP or method not in THROUGH_AGENT:
        return False
    try:
        node_id = int(str(data.pickup_node_id or ""))
    except ValueError:
        return False
    own = node_id in authz.node_ids(placer, Role.AGENT)
    if method == PaymentMethod.CREDIT:
        return authz.may_proxy(
            authz.ProxyAction.PLACE_ON_CREDIT, {authz.ProxyStanding.POINT_AGENT} if own else set()
        )
    return authz.may_cash(authz.CashAction.TAKE_CASH, {authz.CashStanding.POINT_AGENT} if own else set())


# --- limits: what one buyer may hold unpaid ----------------------------------------------------


def _lock_and_find(session: Session, buyer_id: int, placer_id: int, key: str) -> Order | None:
    """SELECT … FOR UPDATE the buyer's and placer's rows, in id order (no deadlock between two
    placers), then the buyer's order already placed with `key`, if any: both in one round trip
    (rows.run_in_turn), the lookup run once the locks are held. SQLite has no row locks and
    needs none: its transactions take the write lock at BEGIN."""
    first, second = sorted((buyer_id, placer_id))
    _locked, found = rows.run_in_turn(
        session,
        [
            (_LOCK_USERS, {"lock_first": first, "lock_second": second}),
            (_BY_KEY, {"buyer_id": buyer_id, "key": key}),
        ],
    )
    return session.get(Order, found[0][0]) if found else None


_LOCK_USERS = (
    select(User.id)
    .where(User.id.in_([bindparam("lock_first"), bindparam("lock_second")]))
    .order_by(User.id)
    .with_for_update()
)


def check_total(total_fen: int, settings: CheckoutSettings) -> None:
    """A checkout is one payment: never more than the gateway can charge at once."""
    if total_fen > settings.max_checkout_total_fen:
        raise _field(
            "items",
            _(
                "One order can total at most %(amount)s. Please split it into smaller orders.",
                amount=yuan_text(settings.max_checkout_total_fen),
            ),
        )


def check_limits(
    session: Session,
    buyer: User,
    placer: User,
    quote: carts.Quote,
    settings: CheckoutSettings,
    now: datetime,
    *,
    proxy: bool | None = None,
) -> None:
    """The caps and rates of CheckoutSettings for one more order of `quote` (see its docstring
    for the rules). Call with the users' rows locked (_lock_and_find). RateLimited for the rate,
    HoldLimit for the caps; a cap or limit of 0 is off.

    `proxy`: placed for someone else (another buyer, or a villager without an account, whose
    orders have the agent as buyer). Orders an agent placed for such villagers are the agent's
    proxy orders, not their own: they count against the placer's caps only."""
    window_start = now - settings.order_rate_window
    proxy = placer.id != buyer.id if proxy is None else proxy
    own_buying = proxy and placer.id == buyer.id  # a villager without an account: no buyer caps
    if not own_buying and settings.order_rate_limit:  # (its clauses cost more to build than to skip)
        _check_rate(session, settings.order_rate_limit, window_start, *_bought_by(buyer.id))
    if proxy:
        placed_for_others = (
            Order.placed_by_id == placer.id,
            or_(Order.buyer_id != placer.id, Order.villager_id.is_not(None)),
        )
        _check_rate(session, settings.proxy_order_rate_limit, window_start, *placed_for_others)

    wanted: dict[int, int] = {}
    for line in quote.lines:
        wanted[line.product.id] = wanted.get(line.product.id, 0) + line.quantity
    units = sum(wanted.values())
    caps = settings.max_unpaid_orders or settings.max_unpaid_units_per_product or settings.max_unpaid_units
    # The villager's orders are the agent's proxy orders (counted below); no cap: nothing to count.
    held = Holds() if own_buying or not caps else unpaid_holds(session, buyer_id=buyer.id, now=now)
    if settings.max_unpaid_orders and len(held.orders) + 1 > settings.max_unpaid_orders:
        raise HoldLimit(
            _(
                "You already have %(n)d unpaid orders. Pay for or cancel one before placing another.",
                n=len(held.orders),
            )
        )
    cap = settings.max_unpaid_units_per_product
    if cap:
        over = [
            line
            for line in quote.lines
            if held.units_by_product.get(line.product.id, 0) + wanted[line.product.id] > cap
        ]
        if over:
            messages = {
                f"items.{line.product.id}": [
                    _(
                        "%(name)s: unpaid orders can hold at most %(n)d of one product.",
                        name=line.product.name,
                        n=cap,
                    )
                ]
                for line in over
            }
            first = next(iter(messages.values()))[0]
            raise HoldLimit(first, field_errors=messages)
    if settings.max_unpaid_units and held.units + units > settings.max_unpaid_units:
        raise HoldLimit(
            _(
                "Unpaid orders can hold at most %(n)d units in all. Pay for your open orders first, "
                "or buy fewer.",
                n=settings.max_unpaid_units,
            ),
            field_errors={"items": [_("Too many units waiting for payment.")]},
        )
    if proxy:
        theirs = unpaid_holds(session, placed_for_others_by=placer.id, now=now)
        if settings.max_proxy_unpaid_orders and len(theirs.orders) + 1 > settings.max_proxy_unpaid_orders:
            raise HoldLimit(
                _(
                    "The orders you placed for others include %(n)d unpaid ones. Collect payment for "
                    "some of them first.",
                    n=len(theirs.orders),
                )
            )
        if settings.max_proxy_unpaid_units and theirs.units + units > settings.max_proxy_unpaid_units:
            raise HoldLimit(
                _(
                    "Unpaid orders you placed for others can hold at most %(n)d units in all.",
                    n=settings.max_proxy_unpaid_units,
                )
            )


def _bought_by(buyer_id: int) -> tuple[Any, ...]:
    """The orders that are `buyer_id`'s own: not those an agent placed for a villager without an
    account (the agent is their buyer in the table, the villager the buyer of record)."""
    return (
        Order.buyer_id == buyer_id,
        not_(and_(Order.villager_id.is_not(None), Order.placed_by_id == buyer_id)),
    )


def _check_rate(session: Session, limit: int, since: datetime, *where: Any) -> None:
    """At most `limit` orders matching `where` created after `since` (counted in the orders
    table, so every thread and process of every machine sees the same count)."""
    if not limit:
        return
    placed = session.scalar(select(func.count(Order.id)).where(*where, Order.created_at > since))
    if (placed or 0) >= limit:
        raise TooManyOrders(_("You are placing orders too quickly. Please wait a few minutes and try again."))


def _out_of_stock(session: Session, product_id: int) -> OutOfStock:
    product = session.get(Product, product_id)
    name = product.name if product else ""
    left = product.stock if product else 0
    message = (
        _("%(name)s: only %(n)d left.", name=name, n=left) if left else _("%(name)s: sold out.", name=name)
    )
    return OutOfStock(message, field_errors={f"items.{product_id}": [message]})


def _destination(
    session: Session, buyer: User, data: CheckoutInput, delivery: DeliveryMethod
) -> dict[str, Any]:
    if delivery == DeliveryMethod.PICKUP:
        node = places.pickup_point(session, data.pickup_node_id)
        if node is None:
            raise _field("pickup_node_id", _("Choose a pickup point."))
        contact = data.pickup_contact or AddressInput()
        errors: dict[str, list[Any]] = {}
        try:
            recipient = check_text(contact.recipient, "recipient", max_len=40, required=True)
        except ValidationError as exc:
            errors.update(exc.field_errors)
        try:
            phone = normalize_phone(contact.phone)
        except ValidationError as exc:
            errors.update(exc.field_errors)
        if errors:
            raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
        return {
            "pickup_node_id": node.id,
            "pickup_node": node,
            "recipient": recipient,
            "recipient_phone": phone,
            "division_code": node.division_code,
            "address_detail": node.address or node.name,
        }
    if data.address_id not in (None, ""):
        address = own_address(session, buyer, data.address_id)
        clean = {
            "recipient": address.recipient,
            "phone": address.phone,
            "division_code": address.division_code,
            "division": address.division,
            "detail": address.detail,
        }
    elif data.address is not None:
        clean = check_address(session, data.address)
    else:
        raise _field("address_id", _("Choose or enter a delivery address."))
    return {
        "recipient": clean["recipient"],
        "recipient_phone": clean["phone"],
        "division_code": clean["division_code"],
        # The objects already loaded, set on the order: its answer shows their names.
        "division": clean["division"],
        "address_detail": clean["detail"],
        "pickup_node_id": None,
    }
