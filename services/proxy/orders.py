"""Proxy orders (代购): an agent places a villager's cart as an order for pickup at the point, and
follows it ("orders I placed"): the villager's QR payment, cash now, or on the agent's credit.

The order records the villager as buyer of record (`orders.villager_id`) and the agent as placer
(`placed_by_id`); `buyer_id` is the villager's own account when linked, else the agent (so every
buyer rule, pay page call and ledger posting works unchanged). Recipient: the villager's name and
their (family) phone, or the point's mobile, or else the agent's, so SMS reach the point.

Paying, chosen when placing (one idempotency key for the whole step):
- wechat_pay / alipay: the PaymentIntent the buyers' pay page uses (payments.ensure_intent), its
  QR shown on the agent's screen; switch or retry on the same order (payments.switch_method);
- cash: placed and the cash taken at once (services/cash.py take_cash with the same key);
- credit: placed on the agent's credit (services/proxy/credit.py), paid for the sellers at once;
  the villager pays cash at pickup (services/cash.py collect_on_pickup).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    DeliveryMethod,
    Node,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Role,
    User,
    Villager,
    clock,
)
from services import authz, cash
from services.authz import ProxyAction, ProxyStanding
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _
from services.orders import checkout, manage
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput, Placed
from services.orders.lookup import find_by_key, get_order
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import GatewayError, PaymentGateway
from services.validation import PHONE_RE

from . import shopping

log = logging.getLogger(__name__)

# How a villager pays a proxy order, in the order the page offers them.
METHODS = (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY, PaymentMethod.CASH, PaymentMethod.CREDIT)
QR_METHODS = (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)

# The "orders I placed" filter: payment states as the agent thinks of them.
STATUS_FILTERS: dict[str, tuple[PaymentStatus, ...]] = {
    "unpaid": (*payments.OPEN, PaymentStatus.AWAITING_CASH),
    "on_credit": (PaymentStatus.ON_CREDIT,),
    "paid": (PaymentStatus.SUCCEEDED, PaymentStatus.REQUIRES_CAPTURE),
    "closed": (PaymentStatus.CANCELED,),
}


def _method(raw: Any) -> PaymentMethod:
    value = getattr(raw, "value", raw)
    chosen = next((m for m in METHODS if m.value == value), None)
    if chosen is None:
        msg = _("Choose how the villager pays: WeChat Pay, Alipay, cash now or cash on pickup.")
        raise ValidationError(msg, field_errors={"payment_method": [msg]})
    return chosen


def contact_phone(villager: Villager, point: Node, agent: User) -> str:
    """Where the villager's SMS go: their (family) phone, else the point's mobile, else the agent's."""
    for phone in (villager.phone, (point.phone or "").replace(" ", "").replace("-", ""), agent.phone):
        if phone and PHONE_RE.match(phone):
            return phone
    return agent.phone


def place(
    session: Session,
    gateway: PaymentGateway | None,
    actor: User | None,
    villager_id: int,
    payment_method: Any,
    key: Any,
    settings: CheckoutSettings,
    *,
    items: dict[int, int] | None = None,
    return_url: str | None = None,
    now: datetime | None = None,
) -> Placed:
    """Place the villager's proxy cart (or `items`) as an order for pickup at their point, paid
    `payment_method`. The same key again returns the same order (and takes no cash twice); the
    key used for another villager or other items is refused. Another point's villager: 403."""
    villager = shopping.villager_for(session, actor, villager_id)
    assert actor is not None
    method = _method(payment_method)
    key = checkout.check_idempotency_key(key)
    buyer = villager.user if villager.user_id is not None else actor
    wanted = shopping.cart_items(session, actor, villager.id) if items is None else items
    done = find_by_key(session, buyer.id, key)
    if done is not None and items is None:
        # A repeated tap: the first one emptied the cart; it asked for what that order holds.
        wanted = {}
        for sub in done.sub_orders:
            for line in sub.lines:
                wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    data = CheckoutInput(
        items=wanted,
        idempotency_key=key,
        payment_method=method.value,
        delivery=DeliveryMethod.PICKUP.value,
        pickup_node_id=villager.point_id,
        pickup_contact=AddressInput(
            recipient=villager.name, phone=contact_phone(villager, villager.point, actor)
        ),
    )
    placed = checkout.place_order(
        session, buyer, data, settings, placed_by=actor, villager_id=villager.id, now=now
    )
    order = placed.order
    if order.villager_id != villager.id or order.placed_by_id != actor.id:
        raise Conflict(_("This form was already used for another order. Please reload the page."))
    if placed.created:
        shopping.forget(session, actor.id, villager.id, list(wanted))
        session.commit()
    if order.payment_method == PaymentMethod.CASH:
        # The agent holds the villager's cash: paid at once, with the same key (a replay pays nothing).
        cash.take_cash(session, actor, order.number, key, now=now)
    elif order.payment_method in QR_METHODS and gateway is not None:
        try:
            payments.ensure_intent(session, gateway, order, return_url=return_url)
        except (GatewayError, payments.PaymentClosed):
            log.warning("proxy order %s placed, payment not started yet", order.number, exc_info=True)
    session.refresh(order)
    return placed


# --- following: orders I placed ------------------------------------------------------------------


def order_standings(actor: User | None, order: Order) -> set[ProxyStanding]:
    if actor is None or order.villager_id is None:
        return set()
    found: set[ProxyStanding] = set()
    if order.placed_by_id == actor.id:
        found.add(ProxyStanding.PLACER)
    if order.pickup_node_id is not None and order.pickup_node_id in authz.node_ids(actor, Role.AGENT):
        found.add(ProxyStanding.POINT_AGENT)
    return found


def proxy_order(session: Session, actor: User | None, number: str) -> Order:
    """A proxy order, for the agent who placed it (or the point's agent); anyone else: not found."""
    actor = authz.require_user(actor)
    order = get_order(session, str(number)[:24])
    if not authz.may_proxy(ProxyAction.FOLLOW, order_standings(actor, order)):
        raise NotFound(_("Order not found."))
    return order


def placed_orders(
    session: Session,
    actor: User | None,
    *,
    villager_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Order]:
    """The proxy orders the agent placed, newest first; by villager, by payment state."""
    actor = authz.require_user(actor)
    if not authz.node_ids(actor, Role.AGENT):
        raise authz.Forbidden(_("Only village agents can do this."))
    stmt = select(Order).where(Order.placed_by_id == actor.id, Order.villager_id.is_not(None))
    if villager_id is not None:
        stmt = stmt.where(Order.villager_id == villager_id)
    if status:
        wanted = STATUS_FILTERS.get(status)
        if wanted is None:
            msg = _("Choose from the list.")
            raise ValidationError(msg, field_errors={"status": [msg]})
        stmt = stmt.join(Payment, Payment.order_id == Order.id).where(Payment.status.in_(wanted))
    return list(session.scalars(stmt.order_by(Order.id.desc()).limit(max(1, min(limit, 100)))).unique())


def state(order: Order, *, now: datetime | None = None) -> str:
    """Where a proxy order's payment stands, for the agent: awaiting_cash, on_credit, collected
    (paid at pickup), or the pay page's states (paid, wechat, alipay, wallet_retry, expired…)."""
    payment = order.payment
    if payment.status == PaymentStatus.AWAITING_CASH:
        return "awaiting_cash"
    if payment.status == PaymentStatus.ON_CREDIT:
        return "on_credit"
    if payment.method == PaymentMethod.CREDIT and payment.status == PaymentStatus.SUCCEEDED:
        return "collected"
    return payments.pay_state(order, now=now)


@dataclass(frozen=True)
class Followed:
    """A proxy order as its agent follows it: where its payment stands and what to do next."""

    order: Order
    state: str
    qr_text: str | None
    alipay_url: str | None
    choices: list[PaymentMethod]
    may_cancel: bool
    collected_fen: int


def follow(
    session: Session,
    gateway: PaymentGateway | None,
    actor: User | None,
    number: str,
    *,
    return_url: str | None = None,
    now: datetime | None = None,
) -> tuple[Followed, str | None]:
    """The proxy order, its QR asked for again (or the gateway asked whether the villager paid):
    what the agent's screen shows. Returns it and the gateway's trouble, if any, to show."""
    order = proxy_order(session, actor, number)
    payment = order.payment
    error = None
    current = state(order, now=now)
    if (
        gateway is not None
        and payment.method in QR_METHODS
        and current in ("wechat", "alipay", "wallet_retry")
    ):
        try:
            if payment.intent_id is None:
                payments.ensure_intent(session, gateway, order, return_url=return_url)
            else:
                payments.refresh(session, gateway, order)
        except (GatewayError, payments.PaymentClosed) as exc:
            error = str(exc.message)
        session.refresh(order)
    return described(session, actor, order, now=now), error


def described(session: Session, actor: User | None, order: Order, *, now: datetime | None = None) -> Followed:
    current = state(order, now=now)
    payment = order.payment
    return Followed(
        order=order,
        state=current,
        qr_text=payments.wechat_qr_text(payment) if current == "wechat" else None,
        alipay_url=payments.alipay_url(payment) if current == "alipay" else None,
        choices=[m for m in payments.method_choices(order, now=now) if m in QR_METHODS],
        may_cancel=manage.order_actions(session, actor, order, now=now).cancel
        or (
            current == "awaiting_cash"
            and all(s.status == OrderStatus.PENDING_PAYMENT for s in order.sub_orders)
        ),
        collected_fen=cash.credit_collected(session, order) if payment.method == PaymentMethod.CREDIT else 0,
    )


def switch_payment(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    number: str,
    method: Any,
    key: Any,
    *,
    return_url: str | None = None,
    now: datetime | None = None,
) -> Order:
    """The villager's QR failed or they want the other wallet: pay again on the same order
    (payments.switch_method, the buyers' path); the same key again is one attempt."""
    order = proxy_order(session, actor, number)
    chosen = getattr(method, "value", method)
    if chosen not in [m.value for m in QR_METHODS]:
        msg = _("Choose WeChat Pay or Alipay.")
        raise ValidationError(msg, field_errors={"method": [msg]})
    payments.switch_method(
        session,
        gateway,
        order,
        chosen,
        key=checkout.check_idempotency_key(key),
        return_url=return_url,
        now=now,
    )
    session.refresh(order)
    return order


def cancel(
    session: Session, gateway: PaymentGateway, actor: User | None, number: str, *, now: datetime | None = None
) -> Order:
    """Cancel an unpaid proxy order (the villager changed their mind): the stock goes back.
    Cancelling again changes nothing."""
    order = proxy_order(session, actor, number)
    if all(sub.status == OrderStatus.CANCELLED for sub in order.sub_orders):
        return order
    payment = payments._locked_payment(session, order.payment.id)
    if payment.status == PaymentStatus.AWAITING_CASH:
        if any(sub.status != OrderStatus.PENDING_PAYMENT for sub in order.sub_orders):
            raise payments.PaymentClosed()
        payment.status = PaymentStatus.CANCELED
        payments._on_cancelled(session, order, now or clock.now(), note="cancelled by agent", actor=actor)
        session.commit()
        return order
    session.commit()
    return manage.cancel_unpaid(session, gateway, actor, order.number, now=now)
