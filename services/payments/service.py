"""Paying for orders: PaymentIntents for an order's one payment, the buyer's next step (card
confirmation, a wallet QR code), and every way the result comes back (the return page, a
webhook, the reconciliation job) applied by one function, `apply_intent`, that may run any
number of times in any order and moves money and stock exactly once.

No gateway call ever happens inside a transaction that holds stock or order locks: each use
case commits its own rows first, calls the gateway, then applies the answer in a new, short
transaction. A charge can only happen by confirming the one PaymentIntent recorded for the
order, so a lost response or a retry can create at most an extra, never-confirmed intent.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from domain import (
    GatewayCustomer,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    SubOrder,
    User,
    WebhookEvent,
    clock,
)
from services import ledger
from services.errors import Conflict, NotFound, ServiceError, ValidationError
from services.i18n import _, yuan_text
from services.orders import reservations, states
from services.orders.states import Party

from .gateway import CardDeclined, GatewayError, GatewayUnavailable, Intent, PaymentGateway
from .stripe import intent_from_json, refund_from_json

log = logging.getLogger(__name__)

OPEN = (
    PaymentStatus.CREATING,
    PaymentStatus.REQUIRES_PAYMENT_METHOD,
    PaymentStatus.REQUIRES_CONFIRMATION,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.PROCESSING,
)
# Intent statuses in which no money has moved yet: recorded as they are.
WAITING = ("requires_payment_method", "requires_confirmation", "requires_action")
PAYMENT_KEY = "payment_key"  # the metadata field that finds a PaymentIntent again


class PaymentClosed(Conflict):
    code = "payment_closed"

    @classmethod
    def default_message(cls) -> Any:
        return _("This order can no longer be paid.")


# --- reading -------------------------------------------------------------------------------------


def payment_of(session: Session, order: Order) -> Payment:
    loaded = order.__dict__.get("payment")  # placed in this session: no need to ask again
    if isinstance(loaded, Payment):
        return loaded
    payment = session.scalar(select(Payment).where(Payment.order_id == order.id))
    if payment is None:
        raise NotFound(_("Order not found."))
    return payment


def _locked_payment(session: Session, payment_id: int) -> Payment:
    payment = session.scalar(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update(of=Payment)
        .execution_options(populate_existing=True)
    )
    if payment is None:
        raise NotFound(_("Order not found."))
    return payment


# --- creating and confirming --------------------------------------------------------------------


def gateway_customer(session: Session, gateway: PaymentGateway, user: User) -> str:
    """The buyer's Customer at the gateway, made once (a lost answer makes at most an unused one)."""
    existing = session.get(GatewayCustomer, user.id)
    if existing is not None:
        return existing.customer_id
    customer_id = gateway.create_customer(
        name=user.display_name or f"user-{user.id}",
        phone=user.phone,
        metadata={"user_id": str(user.id)},
        # Our row is the guard against a second customer; the key only covers the client's
        # own retries of this one call (ids restart when a database is rebuilt, keys must not).
        idempotency_key=f"customer-{user.id}-{secrets.token_hex(8)}",
    )
    session.add(GatewayCustomer(user_id=user.id, customer_id=customer_id))
    try:
        session.commit()
    except IntegrityError:  # a concurrent request made one first
        session.rollback()
        return session.get(GatewayCustomer, user.id).customer_id  # type: ignore[union-attr]
    return customer_id


def _intent_params(order: Order, payment: Payment, customer: str, return_url: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": payment.amount_fen,
        "currency": payment.currency,
        "payment_method_types": [payment.method.value],
        "capture_method": payment.capture_method,
        "customer": customer,
        "metadata": {PAYMENT_KEY: payment.idempotency_key, "order": order.number},
        "idempotency_key": payment.idempotency_key,
        "description": f"Order {order.number}",
    }
    if payment.method == PaymentMethod.WECHAT_PAY:
        # Wallets are confirmed at once: the answer carries the QR code the buyer scans.
        params.update(
            confirm=True,
            payment_method_data={"type": "wechat_pay"},
            payment_method_options={"wechat_pay": {"client": "web"}},
        )
    elif payment.method == PaymentMethod.ALIPAY:
        params.update(confirm=True, payment_method_data={"type": "alipay"}, return_url=return_url)
    return params


def ensure_intent(
    session: Session, gateway: PaymentGateway, order: Order, *, return_url: str | None = None
) -> Payment:
    """The order's PaymentIntent, created once. If the create answer is lost, the intent is
    looked up by its metadata before anything is created again."""
    payment = payment_of(session, order)
    if payment.status == PaymentStatus.CANCELED:
        raise PaymentClosed()
    if payment.intent_id is not None or payment.method == PaymentMethod.CASH:
        return payment
    if payment.status not in OPEN or is_expired(order):
        raise PaymentClosed()
    customer = gateway_customer(session, gateway, order.buyer)
    session.commit()  # nothing held while the gateway thinks
    try:
        intent = gateway.create_payment_intent(**_intent_params(order, payment, customer, return_url))
    except GatewayUnavailable:
        # Perhaps it acted and only the answer was lost: look before anyone tries again.
        try:
            found = gateway.find_payment_intent(
                customer=customer, metadata_key=PAYMENT_KEY, metadata_value=payment.idempotency_key
            )
        except GatewayError:
            found = None
        if found is None:
            raise
        intent = found
    return _adopt(session, gateway, payment.id, intent)


def _adopt(session: Session, gateway: PaymentGateway, payment_id: int, intent: Intent) -> Payment:
    """Record `intent` as the payment's, unless another request recorded one first (then the
    newcomer, never confirmed, is cancelled so it cannot be paid later)."""
    # The usual case, a new intent waiting for the buyer, is recorded by this one UPDATE; an
    # intent that already moved money goes through apply_intent below.
    waiting = intent.status in WAITING
    values: dict[str, Any] = {"intent_id": intent.id, "client_secret": intent.client_secret}
    if waiting:
        values.update(
            status=PaymentStatus(intent.status), next_action=intent.next_action, updated_at=clock.now()
        )
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.intent_id.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if claimed and waiting:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        for name, value in values.items():  # what the UPDATE wrote, without reading it back
            set_committed_value(payment, name, value)
        return payment
    if not claimed:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        if payment.intent_id != intent.id:
            try:
                gateway.cancel_payment_intent(intent.id, idempotency_key=f"orphan-{intent.id}")
            except GatewayError:
                log.warning("could not cancel orphan PaymentIntent %s of payment %s", intent.id, payment_id)
            session.refresh(payment)
            return payment
    return apply_intent(session, gateway, intent)


def confirm_with(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    payment_method: str,
    *,
    return_url: str | None = None,
) -> Payment:
    """Confirm the order's card payment with a PaymentMethod the buyer's client tokenised."""
    if (
        not isinstance(payment_method, str)
        # card_…: a tokenised card, which Stripe takes as a payment method too (localstripe's
        # Stripe.js can only tokenise; it has no createPaymentMethod).
        or not payment_method.startswith(("pm_", "card_"))
        or len(payment_method) > 100
    ):
        raise ValidationError(_("Choose a card."), field_errors={"payment_method": [_("Choose a card.")]})
    payment = ensure_intent(session, gateway, order, return_url=return_url)
    if payment.status not in OPEN:
        return payment  # already paid (a repeated tap), or closed
    attempt = payment.updated_at.timestamp() if payment.updated_at else 0
    try:
        intent = gateway.confirm_payment_intent(
            payment.intent_id,  # type: ignore[arg-type]
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=f"{payment.idempotency_key}-confirm-{int(attempt * 1000)}",
        )
    except CardDeclined as exc:
        _note_error(session, payment.id, exc)
        raise
    except GatewayError as exc:
        # The gateway may have charged before its answer was lost (or a retried confirm was
        # refused because the first one went through): ask it before telling the buyer anything.
        try:
            intent = gateway.retrieve_payment_intent(payment.intent_id)  # type: ignore[arg-type]
        except GatewayError:
            raise exc from None
        if intent.status in ("requires_payment_method", "requires_confirmation", "canceled"):
            raise
    return apply_intent(session, gateway, intent)


def _note_error(session: Session, payment_id: int, exc: GatewayError) -> None:
    session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(last_error=str(exc.gateway_code or exc.code)[:300], updated_at=clock.now())
        # Synchronised: the next attempt's confirm key derives from updated_at, and a session
        # that keeps this Payment loaded must not send the declined attempt's key again.
        .execution_options(synchronize_session="evaluate")
    )
    session.commit()


def refresh(session: Session, gateway: PaymentGateway, order: Order) -> Payment:
    """Ask the gateway how the order's payment stands and apply it (the buyer's return page)."""
    payment = payment_of(session, order)
    if payment.intent_id is None:
        return payment
    return apply_intent(session, gateway, gateway.retrieve_payment_intent(payment.intent_id))


def is_expired(order: Order, now: datetime | None = None) -> bool:
    """Whether the time to pay for the order has run out (then its stock goes back)."""
    return (now or clock.now()) >= order.pay_by


# The longest WeChat Pay QR payload we draw: a wallet's payload is a short URL, anything longer
# is not one.
MAX_QR_TEXT = 1000


def wechat_qr_text(payment: Payment) -> str | None:
    """The text of the WeChat Pay QR code the gateway returned, if it has a usable one."""
    action = payment.next_action or {}
    data = (action.get("wechat_pay_display_qr_code") or {}).get("data")
    return data if isinstance(data, str) and 0 < len(data) <= MAX_QR_TEXT else None


def alipay_url(payment: Payment) -> str | None:
    """The Alipay page the gateway sends the buyer to, if it returned one."""
    action = payment.next_action or {}
    url = (action.get("alipay_handle_redirect") or {}).get("url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def pay_state(order: Order, *, now: datetime | None = None) -> str:
    """The buyer's next step with the order's payment: paid, authorised (pre-sale), cancelled,
    expired, processing, card, authenticate (3-D Secure), wechat, alipay or wallet_retry."""
    payment: Payment = order.payment
    if payment.status == PaymentStatus.SUCCEEDED:
        return "paid"
    if payment.status == PaymentStatus.REQUIRES_CAPTURE:
        return "authorised"
    if payment.status not in OPEN:
        return "cancelled"
    if is_expired(order, now):
        return "expired"
    if payment.status == PaymentStatus.PROCESSING:
        return "processing"
    if payment.method == PaymentMethod.CARD:
        if payment.status == PaymentStatus.REQUIRES_ACTION and payment.client_secret:
            return "authenticate"
        return "card"
    if payment.method == PaymentMethod.WECHAT_PAY and wechat_qr_text(payment):
        return "wechat"
    if payment.method == PaymentMethod.ALIPAY and alipay_url(payment):
        return "alipay"
    return "wallet_retry"  # no QR code or redirect yet (the gateway was down), or the wallet failed


# --- applying what the gateway says ----------------------------------------------------------------


@dataclass
class Applied:
    payment: Payment
    refund_sub_orders: list[int]


def _payment_for_intent(session: Session, intent: Intent) -> Payment | None:
    payment = session.scalar(select(Payment).where(Payment.intent_id == intent.id))
    if payment is None:
        key = intent.metadata.get(PAYMENT_KEY)
        if key:
            payment = session.scalar(select(Payment).where(Payment.idempotency_key == key))
    return payment


def apply_intent(
    session: Session, gateway: PaymentGateway, intent: Intent, *, now: datetime | None = None
) -> Payment:
    """Bring our payment, order, stock and ledger in line with the PaymentIntent; idempotent."""
    result = _apply(session, intent, now=now)
    if result is None:
        raise NotFound(_("Order not found."))
    for sub_order_id in result.refund_sub_orders:
        # Paid after its hold had expired and the goods went to someone else: give it back.
        try:
            refund_sub_order(session, gateway, None, sub_order_id, None, reason="stock gone before payment")
        except GatewayError:
            log.exception(
                "automatic refund of sub-order %s failed; the reconciliation job retries", sub_order_id
            )
    return result.payment


def _apply(session: Session, intent: Intent, *, now: datetime | None = None) -> Applied | None:
    now = now or clock.now()
    found = _payment_for_intent(session, intent)
    if found is None:
        return None
    payment = _locked_payment(session, found.id)
    if payment.intent_id is None:
        payment.intent_id = intent.id
    elif payment.intent_id != intent.id:
        return Applied(payment, [])  # an orphan intent's news: not this payment's
    order = session.get(Order, payment.order_id)
    assert order is not None
    to_refund: list[int] = []
    before = payment.status
    payment.client_secret = intent.client_secret or payment.client_secret
    payment.next_action = intent.next_action
    if intent.last_error:
        payment.last_error = intent.last_error[:300]
    status = intent.status
    if before == PaymentStatus.SUCCEEDED or (before == PaymentStatus.CANCELED and status != "succeeded"):
        pass  # final: later or repeated news changes nothing
    elif status == "succeeded":
        if before != PaymentStatus.REQUIRES_CAPTURE:
            to_refund = _on_authorised(session, order, now)
        payment.status = PaymentStatus.SUCCEEDED
        payment.amount_received_fen = intent.amount_received
        payment.succeeded_at = now
        payment.next_action = None
        if before == PaymentStatus.REQUIRES_CAPTURE:
            _match_capture(order, payment.amount_fen, intent.amount_received)
        # The money is in: every sub-order's share goes to its seller, the platform and
        # logistics (a sub-order refunded below for lack of stock is taken out by its refund).
        for sub in order.sub_orders:
            ledger.post_sub_order_paid(session, sub)
    elif status == "requires_capture":
        if before != PaymentStatus.REQUIRES_CAPTURE:
            to_refund = _on_authorised(session, order, now)
        payment.status = PaymentStatus.REQUIRES_CAPTURE
    elif status == "canceled":
        payment.status = PaymentStatus.CANCELED
        _on_cancelled(session, order, now, note="payment cancelled")
    else:
        payment.status = PaymentStatus(status) if status in PaymentStatus._value2member_map_ else before
    payment.updated_at = now
    session.commit()
    return Applied(payment, to_refund)


def _match_capture(order: Order, authorised_fen: int, received_fen: int) -> None:
    """Make the sub-orders' released parts add up to what the gateway did not take. They do when
    `capture` recorded its plan; if another capture won (a lost answer, a second caller), the
    shortfall is spread over the sub-orders in proportion to their totals."""
    subs = [sub for sub in order.sub_orders if sub.status != OrderStatus.CANCELLED]
    shortfall = authorised_fen - received_fen
    if sum(sub.released_fen or 0 for sub in subs) == shortfall or not subs:
        return
    total = sum(sub.total_fen for sub in subs)
    shares = [shortfall * sub.total_fen // total for sub in subs]
    rest = sorted(range(len(subs)), key=lambda i: -(shortfall * subs[i].total_fen % total))
    for i in rest[: shortfall - sum(shares)]:
        shares[i] += 1
    for sub, share in zip(subs, shares, strict=True):
        sub.released_fen = share


def _on_authorised(session: Session, order: Order, now: datetime) -> list[int]:
    """Money is in (or authorised): stock becomes sold, sub-orders become paid. Returns the
    sub-orders whose goods were no longer there (their hold had expired): they get refunded."""
    reservations.commit_order_stock(session, order, now)
    took = reservations.retake_order_stock(session, order, now)
    gone: list[int] = []
    for sub in order.sub_orders:
        if sub.status == OrderStatus.CANCELLED:
            # Cancelled by the expiry job, yet the gateway took the money (it was paid in the
            # moment between our last look and the cancel). The one move out of cancelled: the
            # money is real, so the order is paid, and refunded below if its goods are gone.
            sub.status = OrderStatus.PENDING_PAYMENT
            states.apply(
                session, sub, OrderStatus.PAID, party=Party.SYSTEM, note="paid after expiry", now=now
            )
            if not took:
                states.apply(
                    session, sub, OrderStatus.REFUND_REQUESTED, party=Party.SYSTEM, note="sold out", now=now
                )
                gone.append(sub.id)
        elif sub.status == OrderStatus.PENDING_PAYMENT:
            states.apply(session, sub, OrderStatus.PAID, party=Party.SYSTEM, now=now)
    return gone


def _on_cancelled(
    session: Session, order: Order, now: datetime, *, note: str, actor: User | None = None
) -> None:
    reservations.release_order_stock(session, order, now)
    for sub in order.sub_orders:
        if states.can_move(sub.status, OrderStatus.CANCELLED, {Party.SYSTEM}):
            states.apply(
                session, sub, OrderStatus.CANCELLED, party=Party.SYSTEM, actor=actor, note=note, now=now
            )


# --- cancelling, capturing, refunding -----------------------------------------------------------------


def cancel_order(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    *,
    actor: User | None,
    note: str = "",
    now: datetime | None = None,
) -> Order:
    """Cancel an unpaid order (the buyer, staff, or the expiry job): the intent is cancelled at
    the gateway first, so it can never be paid afterwards; then the stock goes back."""
    now = now or clock.now()
    payment = payment_of(session, order)
    if payment.status not in OPEN:
        raise PaymentClosed(_("This order is already paid or closed."))
    if payment.intent_id is not None:
        try:
            intent = gateway.cancel_payment_intent(
                payment.intent_id, idempotency_key=f"{payment.idempotency_key}-cancel"
            )
        except GatewayError:
            intent = gateway.retrieve_payment_intent(payment.intent_id)
        if intent.status != "canceled":
            apply_intent(session, gateway, intent, now=now)
            raise PaymentClosed(_("This order is already paid or closed."))
        apply_intent(session, gateway, intent, now=now)
        return order
    payment = _locked_payment(session, payment.id)
    if payment.status in OPEN:
        payment.status = PaymentStatus.CANCELED
        _on_cancelled(session, order, now, note=note or "cancelled", actor=actor)
    session.commit()
    return order


def void_authorisation(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    *,
    actor: User | None,
    note: str,
    now: datetime | None = None,
) -> Order:
    """A pre-sale whose harvest failed (or was declined): release the card authorisation."""
    payment = payment_of(session, order)
    if payment.status != PaymentStatus.REQUIRES_CAPTURE or payment.intent_id is None:
        raise PaymentClosed()
    intent = gateway.cancel_payment_intent(
        payment.intent_id, idempotency_key=f"{payment.idempotency_key}-void"
    )
    apply_intent(session, gateway, intent, now=now)
    return order


def capture(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    *,
    amount_fen: Any = None,
    amounts: Mapping[int, Any] | None = None,
    now: datetime | None = None,
) -> Payment:
    """Take the authorised pre-sale money (at dispatch): all of it, or less.

    `amounts` ({sub_order_id: fen}) says how much of each sub-order is taken (weighed produce
    charged for its weighed weight; sub-orders not named are taken in full); `amount_fen` is the
    total to take, which may be less than the authorisation only when `amounts` says where the
    shortfall falls or the order has one sub-order. The rest of the hold is released by the
    gateway; each sub-order's `released_fen` records its part of it, and the ledger posts
    exactly what was taken. Idempotent: asked again for the same amount, nothing more happens;
    once taken, a different amount is refused."""
    payment = payment_of(session, order)
    if payment.status not in (PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.SUCCEEDED) or (
        payment.intent_id is None
    ):
        raise PaymentClosed(_("There is no authorised payment to take."))
    if payment.status == PaymentStatus.SUCCEEDED and payment.capture_method != "manual":
        if amount_fen is None and amounts is None:
            return payment
        raise PaymentClosed(_("There is no authorised payment to take."))
    released = _capture_plan(order, payment, amount_fen, amounts)
    amount = payment.amount_fen - sum(released.values())
    if payment.status == PaymentStatus.SUCCEEDED:
        if amount_fen is None and amounts is None:
            return payment
        if payment.amount_received_fen == amount and all(
            sub.released_fen == released.get(sub.id, 0) for sub in order.sub_orders
        ):
            return payment  # the same capture asked again
        raise PaymentClosed(_("There is no authorised payment to take."))
    # Each sub-order's share of what is released is recorded before the gateway takes the money,
    # so the answer, however it comes back (this call, a webhook, reconciliation), posts it.
    payment = _locked_payment(session, payment.id)
    if payment.status != PaymentStatus.REQUIRES_CAPTURE:
        session.commit()
        return capture(session, gateway, order, amount_fen=amount_fen, amounts=amounts, now=now)
    for sub in order.sub_orders:
        sub.released_fen = released.get(sub.id, 0)
    session.commit()
    key = f"{payment.idempotency_key}-capture" + ("" if amount == payment.amount_fen else f"-{amount}")
    try:
        intent = gateway.capture_payment_intent(
            payment.intent_id,  # type: ignore[arg-type]
            idempotency_key=key,
            amount_to_capture=None if amount == payment.amount_fen else amount,
        )
    except GatewayError:
        intent = gateway.retrieve_payment_intent(payment.intent_id)  # type: ignore[arg-type]
        if intent.status != "succeeded":
            raise
    return apply_intent(session, gateway, intent, now=now)


def _whole_fen(value: Any, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
        msg = _("Enter an amount from ¥0.01 to %(amount)s.", amount=yuan_text(most))
        raise ValidationError(msg, field_errors={"amount": [msg]})
    return value


def _capture_plan(
    order: Order, payment: Payment, amount_fen: Any, amounts: Mapping[int, Any] | None
) -> dict[int, int]:
    """What is released of each sub-order ({sub_order_id: fen}, only those taken for less)."""
    subs = {sub.id: sub for sub in order.sub_orders if sub.status != OrderStatus.CANCELLED}
    released: dict[int, int] = {}
    if amounts is not None:
        if not isinstance(amounts, Mapping) or not amounts:
            raise ValidationError(_("Say how much is taken for each part of this order."))
        for sub_id, fen in amounts.items():
            sub = subs.get(sub_id) if isinstance(sub_id, int) else None
            if sub is None:
                raise ValidationError(_("Say how much is taken for each part of this order."))
            released[sub.id] = sub.total_fen - _whole_fen(fen, sub.total_fen)
    total = payment.amount_fen - sum(released.values())
    if amount_fen is not None:
        amount = _whole_fen(amount_fen, payment.amount_fen)
        if amounts is None and amount < payment.amount_fen:
            if len(subs) != 1:
                raise ValidationError(_("Say how much is taken for each part of this order."))
            (sub,) = subs.values()
            if payment.amount_fen - amount > sub.total_fen - 1:
                raise ValidationError(_("Say how much is taken for each part of this order."))
            released[sub.id] = payment.amount_fen - amount
        elif amount != total:
            raise ValidationError(_("Say how much is taken for each part of this order."))
    return {k: v for k, v in released.items() if v}


def refundable_fen(session: Session, sub_order: SubOrder) -> int:
    pending = session.scalars(
        select(Refund.amount_fen).where(
            Refund.sub_order_id == sub_order.id, Refund.status == RefundStatus.PENDING
        )
    ).all()
    return charged_fen(sub_order) - sub_order.refunded_fen - sum(pending)


def charged_fen(sub_order: SubOrder) -> int:
    """What the buyer was charged for the sub-order: its total, less what a capture for less
    released."""
    return sub_order.total_fen - (sub_order.released_fen or 0)


def refund_sub_order(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    sub_order_id: int,
    amount_fen: int | None,
    *,
    reason: str = "",
    idempotency_key: str | None = None,
    party: Party = Party.SYSTEM,
    now: datetime | None = None,
) -> Refund:
    """Give back `amount_fen` (all that is left when None) of a paid sub-order."""
    now = now or clock.now()
    if idempotency_key:
        existing = session.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
        if existing is not None:
            if existing.sub_order_id != sub_order_id:
                # A client's key reused for another sub-order must not pass for its refund.
                raise Conflict(_("This refund key was already used for another order."))
            if existing.status == RefundStatus.PENDING and existing.gateway_refund_id is None:
                return _send_refund(session, gateway, existing, now=now)  # the last try failed
            return existing
    sub = session.scalar(
        select(SubOrder)
        .where(SubOrder.id == sub_order_id)
        .with_for_update(of=SubOrder)
        .execution_options(populate_existing=True)
    )
    if sub is None:
        raise NotFound(_("Order not found."))
    payment = payment_of(session, sub.order)
    if payment.status != PaymentStatus.SUCCEEDED or payment.intent_id is None:
        raise PaymentClosed(_("Nothing has been paid for this order yet."))
    left = refundable_fen(session, sub)
    amount = left if amount_fen is None else amount_fen
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(_("Enter an amount."), field_errors={"amount": [_("Enter an amount.")]})
    if amount > left:
        msg = _("At most %(amount)s can be refunded.", amount=yuan_text(left))
        raise ValidationError(msg, field_errors={"amount": [msg]})
    if sub.status != OrderStatus.REFUND_REQUESTED:
        if not states.can_move(sub.status, OrderStatus.REFUND_REQUESTED, {party}):
            raise states.IllegalTransition()
        if amount == left:
            # All that is left goes back: the sub-order stops here. A part is money, not a
            # state: the sub-order keeps moving and the refund is noted when it settles.
            states.apply(
                session, sub, OrderStatus.REFUND_REQUESTED, party=party, actor=actor, note=reason, now=now
            )
    count = session.scalar(
        select(Refund.id).where(Refund.sub_order_id == sub.id).order_by(Refund.id.desc()).limit(1)
    )
    refund = Refund(
        payment_id=payment.id,
        sub_order_id=sub.id,
        amount_fen=amount,
        reason=reason[:200],
        idempotency_key=idempotency_key or f"refund-{sub.number}-{(count or 0) + 1}-{int(now.timestamp())}",
        requested_by_id=actor.id if actor else None,
        created_at=now,
    )
    session.add(refund)
    session.commit()
    return _send_refund(session, gateway, refund, now=now)


def _send_refund(session: Session, gateway: PaymentGateway, refund: Refund, *, now: datetime) -> Refund:
    """Ask the gateway for a recorded refund. If the call fails the refund stays pending and is
    sent again with the same Idempotency-Key (a repeated request, the reconciliation job)."""
    intent_id = refund.payment.intent_id
    assert intent_id is not None
    result = gateway.create_refund(
        payment_intent=intent_id,
        amount=refund.amount_fen,
        idempotency_key=refund.idempotency_key,
        metadata={"refund_key": refund.idempotency_key, "sub_order": refund.sub_order.number},
    )
    return settle_refund(session, refund.id, result.id, result.status, now=now)


def settle_refund(
    session: Session, refund_id: int, gateway_refund_id: str, status: str, *, now: datetime | None = None
) -> Refund:
    """Apply the gateway's word on a refund (from the call or a webhook); idempotent."""
    now = now or clock.now()
    refund = session.scalar(
        select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update(of=Refund)
        .execution_options(populate_existing=True)
    )
    assert refund is not None
    refund.gateway_refund_id = refund.gateway_refund_id or gateway_refund_id
    if refund.status != RefundStatus.PENDING:
        session.commit()
        return refund
    if status == "succeeded":
        sub = session.scalar(
            select(SubOrder)
            .where(SubOrder.id == refund.sub_order_id)
            .with_for_update(of=SubOrder)
            .execution_options(populate_existing=True)
        )
        payment = _locked_payment(session, refund.payment_id)
        assert sub is not None
        ledger.post_refund(session, refund)
        refund.status = RefundStatus.SUCCEEDED
        refund.settled_at = now
        sub.refunded_fen += refund.amount_fen
        payment.amount_refunded_fen += refund.amount_fen
        _after_refund(session, sub, refund, now)
    elif status in ("failed", "canceled"):
        refund.status = RefundStatus.FAILED
        refund.settled_at = now
    session.commit()
    return refund


def _after_refund(session: Session, sub: SubOrder, refund: Refund, now: datetime) -> None:
    """Where a settled refund leaves the sub-order. All of the money back: REFUNDED. Part of it:
    the sub-order stays in (or, from a refund request with no other refund pending, returns to)
    its fulfilment state, and the refund is in its history with the amount."""
    details = {"refund_fen": refund.amount_fen, "refunded_fen": sub.refunded_fen}
    system = {Party.SYSTEM}
    if sub.refunded_fen >= charged_fen(sub):
        if sub.status != OrderStatus.REFUND_REQUESTED and states.can_move(
            sub.status, OrderStatus.REFUND_REQUESTED, {Party.SYSTEM, Party.ADMIN}
        ):
            states.apply(
                session, sub, OrderStatus.REFUND_REQUESTED, party={Party.SYSTEM, Party.ADMIN}, now=now
            )
        if states.can_move(sub.status, OrderStatus.REFUNDED, system):
            states.apply(session, sub, OrderStatus.REFUNDED, party=system, details=details, now=now)
            return
    elif sub.status == OrderStatus.REFUND_REQUESTED:
        others = session.scalar(
            select(Refund.id).where(
                Refund.sub_order_id == sub.id, Refund.status == RefundStatus.PENDING, Refund.id != refund.id
            )
        )
        back = states.state_before_refund(session, sub)
        # Back to completed is an admin's decision (only admins refund after delivery).
        deciders = {Party.SYSTEM, Party.ADMIN}
        if others is None and states.can_move(sub.status, back, deciders):
            states.apply(session, sub, back, party=deciders, details=details, now=now)
            return
    states.note(session, sub, details=details, now=now)


# --- webhooks and reconciliation -------------------------------------------------------------------


def record_event(session: Session, event: Mapping[str, Any]) -> str | None:
    """Keep a verified event once, by its id. Returns the id to process, or None when the
    event was already processed (a replay or a duplicate delivery)."""
    event_id = event.get("id")
    event_type = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, Mapping):
        raise ServiceError(_("Not a payment event."))
    if len(event_id) > 64:
        raise ServiceError(_("Not a payment event."))
    existing = session.get(WebhookEvent, event_id)
    if existing is not None:
        return None if existing.processed_at is not None else event_id
    session.add(WebhookEvent(id=event_id, type=event_type[:64], payload=dict(event)))
    try:
        session.commit()
    except IntegrityError:  # the same event delivered twice at once
        session.rollback()
        return None
    return event_id


def process_event(session: Session, gateway: PaymentGateway, event_id: str) -> None:
    """Apply one received event (the task queue runs this). Safe to run again."""
    event = session.get(WebhookEvent, event_id)
    if event is None or event.processed_at is not None:
        return
    obj = event.payload["data"]["object"]
    try:
        if event.type.startswith("payment_intent."):
            intent = intent_from_json(obj)
            if _payment_for_intent(session, intent) is not None:
                apply_intent(session, gateway, intent)
        elif event.type.startswith("charge.refund") or event.type.startswith("refund."):
            for raw in _refunds_in(event.type, obj):
                result = refund_from_json(raw)
                refund = session.scalar(select(Refund).where(Refund.gateway_refund_id == result.id))
                if refund is None and result.metadata.get("refund_key"):
                    refund = session.scalar(
                        select(Refund).where(Refund.idempotency_key == result.metadata["refund_key"])
                    )
                if refund is not None:
                    settle_refund(session, refund.id, result.id, result.status)
    except Exception as exc:
        session.rollback()
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        event.error = f"{type(exc).__name__}: {exc}"[:300]
        session.commit()
        raise
    event = session.get(WebhookEvent, event_id)
    assert event is not None
    event.processed_at = clock.now()
    event.error = ""
    session.commit()


def _refunds_in(event_type: str, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if event_type.startswith("refund."):
        return [obj]
    refunds = obj.get("refunds")
    if isinstance(refunds, Mapping):
        return [r for r in refunds.get("data") or [] if isinstance(r, Mapping)]
    return []


@dataclass
class Reconciled:
    synced: int = 0
    adopted: int = 0
    expired: int = 0
    refunds_sent: int = 0
    failed: int = 0


def reconcile(
    session: Session,
    gateway: PaymentGateway,
    *,
    now: datetime | None = None,
    stale_after: timedelta = timedelta(minutes=5),
) -> Reconciled:
    """The safety net under webhooks: ask the gateway about payments still open after
    `stale_after`; adopt intents whose create answer was lost; expire unpaid orders past their
    pay-by time (cancelling the intent first, so a late payment cannot land); send again the
    refunds the gateway never confirmed receiving."""
    now = now or clock.now()
    report = Reconciled()
    rows = session.execute(
        select(Payment.id, Payment.order_id)
        .where(Payment.status.in_(OPEN), Payment.created_at <= now - stale_after)
        .order_by(Payment.id)
    ).all()
    for payment_id, order_id in rows:
        order = session.get(Order, order_id)
        payment = session.get(Payment, payment_id)
        assert order is not None and payment is not None
        try:
            if payment.intent_id is None:
                customer = session.get(GatewayCustomer, order.buyer_id)
                found = (
                    gateway.find_payment_intent(
                        customer=customer.customer_id,
                        metadata_key=PAYMENT_KEY,
                        metadata_value=payment.idempotency_key,
                    )
                    if customer is not None
                    else None
                )
                if found is not None:
                    _adopt(session, gateway, payment.id, found)
                    report.adopted += 1
            else:
                apply_intent(session, gateway, gateway.retrieve_payment_intent(payment.intent_id), now=now)
                report.synced += 1
            session.refresh(payment)
            if payment.status in OPEN and is_expired(order, now):
                cancel_order(session, gateway, order, actor=None, note="not paid in time", now=now)
                report.expired += 1
        except GatewayError:
            session.rollback()
            log.warning("reconciliation of payment %s failed; next run retries", payment_id, exc_info=True)
            report.failed += 1
        except PaymentClosed:
            session.rollback()  # it was paid at the last moment: applied above
    stuck = session.scalars(
        select(Refund)
        .where(
            Refund.status == RefundStatus.PENDING,
            Refund.gateway_refund_id.is_(None),
            Refund.created_at <= now - stale_after,
        )
        .order_by(Refund.id)
    ).all()
    for refund in stuck:
        try:
            _send_refund(session, gateway, refund, now=now)
            report.refunds_sent += 1
        except GatewayError:
            session.rollback()
            log.warning("refund %s still not accepted by the gateway; next run retries", refund.id)
            report.failed += 1
    return report
