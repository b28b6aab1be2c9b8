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

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from domain import (
    AttemptStatus,
    GatewayCustomer,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    SubOrder,
    User,
    clock,
)
from services import ledger, rows
from services.campaigns import holds as campaign_holds
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _, yuan_text
from services.orders import reservations, states
from services.orders.promotions import refund_line
from services.orders.states import Party
from services.validation import id_or_none

from .gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    Intent,
    InvalidPaymentRequest,
    PaymentGateway,
)

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


class PaymentProcessing(Conflict):
    """A payment is on its way (the gateway is processing it): another one must not start, or
    the buyer could pay twice. It ends by itself, paid or failed."""

    code = "payment_processing"

    @classmethod
    def default_message(cls) -> Any:
        return _(
            "A payment for this order is being processed. "
            "Please wait for its result before paying another way."
        )


# The ways a buyer pays online, in the order the pay page offers them.
ONLINE = (PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)
WALLETS = (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)
# Paid through a village agent, never at the gateway: cash now, or on the agent's credit with
# the cash taken at pickup (services/cash.py). Refunds of these go back through the agent.
THROUGH_AGENT = (PaymentMethod.CASH, PaymentMethod.CREDIT)
ENDED = (AttemptStatus.FAILED, AttemptStatus.SUPERSEDED, AttemptStatus.SUCCEEDED, AttemptStatus.CANCELED)


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
    # Loaded with the user (an API token's read joins it): a recorded Customer never changes.
    loaded = user.__dict__.get("gateway_customer")
    if loaded is not None:
        return loaded.customer_id
    existing = session.scalar(_CUSTOMER_ID, {"user_id": user.id})
    if existing is not None:
        return existing
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


_CUSTOMER_ID = select(GatewayCustomer.customer_id).where(GatewayCustomer.user_id == bindparam("user_id"))


def _method_options(method: PaymentMethod) -> dict[str, Any] | None:
    # WeChat Pay shows its QR code on a web page (Stripe asks which client pays).
    return {"wechat_pay": {"client": "web"}} if method == PaymentMethod.WECHAT_PAY else None


def _intent_params(
    order: Order, payment: Payment, customer: str, return_url: str | None, *, idempotency_key: str
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": payment.amount_fen,
        "currency": payment.currency,
        "payment_method_types": [payment.method.value],
        "capture_method": payment.capture_method,
        "customer": customer,
        # The payment's own key, whichever attempt creates the intent: how a lost one is found.
        "metadata": {PAYMENT_KEY: payment.idempotency_key, "order": order.number},
        "idempotency_key": idempotency_key,
        "description": f"Order {order.number}",
    }
    if payment.method == PaymentMethod.WECHAT_PAY:
        # Wallets are confirmed at once: the answer carries the QR code the buyer scans.
        params.update(
            confirm=True,
            payment_method_data={"type": "wechat_pay"},
            payment_method_options=_method_options(payment.method),
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
    if payment.intent_id is not None or payment.method in THROUGH_AGENT:
        return payment
    if payment.status not in OPEN or is_expired(order):
        raise PaymentClosed()
    attempt = _current_attempt(session, payment)
    return _create_intent(session, gateway, order, payment, attempt, return_url)[0]


def _create_intent(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    payment: Payment,
    attempt: PaymentAttempt,
    return_url: str | None,
) -> tuple[Payment, Intent]:
    """Create the order's one PaymentIntent for `attempt` (its method is the payment's), or adopt
    the one an earlier call made. Returns the payment and the intent it now has."""
    customer = gateway_customer(session, gateway, order.buyer)
    if session.in_transaction():  # (after a checkout's commit there is none to end)
        session.commit()  # nothing held while the gateway thinks
    found: Intent | None = None
    key = _attempt_key(payment, attempt)
    if key != payment.idempotency_key:
        # An earlier attempt may have created it, its answer lost: never make a second one.
        found = gateway.find_payment_intent(
            customer=customer, metadata_key=PAYMENT_KEY, metadata_value=payment.idempotency_key
        )
    if found is None:
        params = _intent_params(order, payment, customer, return_url, idempotency_key=key)
        try:
            found = gateway.create_payment_intent(**params)
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
    return _adopt(session, gateway, payment.id, found, attempt=attempt), found


def _adopt(
    session: Session,
    gateway: PaymentGateway,
    payment_id: int,
    intent: Intent,
    *,
    attempt: PaymentAttempt | None = None,
) -> Payment:
    """Record `intent` as the payment's, unless another request recorded one first (then the
    newcomer, never confirmed, is cancelled so it cannot be paid later). `attempt`: the attempt
    the intent was created for, if the caller knows it (else the latest is read)."""
    # The usual case, a new intent waiting for the buyer, is recorded by this one UPDATE; an
    # intent that already moved money goes through apply_intent below.
    waiting = intent.status in WAITING
    values: dict[str, Any] = {"intent_id": intent.id, "client_secret": intent.client_secret}
    if waiting:
        values.update(
            status=PaymentStatus(intent.status), next_action=intent.next_action, updated_at=clock.now()
        )
    claimed = session.execute(_CLAIM, {"claim_id": payment_id, **values}).rowcount  # type: ignore[attr-defined]
    if claimed and waiting:
        _track_attempt(session, payment_id, intent, clock.now(), attempt=attempt)
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
    return apply_intent(session, gateway, intent, fresh=True)


# Built once, on the table (the SET clause is the parameters' column names): every checkout
# records its new intent with it.
_PAYMENTS = rows.table(Payment)
_CLAIM = update(_PAYMENTS).where(_PAYMENTS.c.id == bindparam("claim_id"), _PAYMENTS.c.intent_id.is_(None))


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
    if payment.method != PaymentMethod.CARD:
        raise Conflict(_("This order is set to be paid another way. Choose bank card first."))
    attempt = _card_attempt(session, payment)
    # One key per attempt and card: a double tap is one charge; another card after a decline
    # (a new attempt) or in the same attempt (another card) is a new request.
    card = hashlib.sha256(payment_method.encode()).hexdigest()[:16]
    try:
        intent = gateway.confirm_payment_intent(
            payment.intent_id,  # type: ignore[arg-type]
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=f"{_attempt_key(payment, attempt)}-card-{card}",
        )
    except CardDeclined as exc:
        _note_error(session, payment.id, exc, attempt.id)
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
    return apply_intent(session, gateway, intent, fresh=True)


def _note_error(session: Session, payment_id: int, exc: GatewayError, attempt_id: int | None = None) -> None:
    code = str(exc.gateway_code or exc.code)[:300]
    now = clock.now()
    session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(last_error=code, updated_at=now)
        .execution_options(synchronize_session="evaluate")
    )
    if attempt_id is not None:
        # The declined attempt is over: the next card starts a new one (new idempotency keys).
        session.execute(
            update(PaymentAttempt)
            .where(PaymentAttempt.id == attempt_id, PaymentAttempt.status.not_in(ENDED))
            .values(status=AttemptStatus.FAILED, error=code, ended_at=now)
            .execution_options(synchronize_session="evaluate")
        )
    session.commit()


def refresh(session: Session, gateway: PaymentGateway, order: Order) -> Payment:
    """Ask the gateway how the order's payment stands and apply it (the buyer's return page)."""
    payment = payment_of(session, order)
    if payment.intent_id is None:
        return payment
    return apply_intent(session, gateway, gateway.retrieve_payment_intent(payment.intent_id), fresh=True)


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


# --- attempts: paying again, another way --------------------------------------------------------
#
# An order has one PaymentIntent for life, as Stripe recommends ("one PaymentIntent for each
# order"; a declined or abandoned attempt returns it to requires_payment_method, to be confirmed
# again). Paying another way changes the intent's payment_method_types (Update a PaymentIntent),
# which detaches the previous method: a WeChat code or Alipay page shown before can no longer be
# paid. Whatever an intent collects is this order's payment, applied once by apply_intent, so a
# late success of an earlier attempt is never lost and never counted twice, and the amount is
# the intent's, never changed. Each attempt is a PaymentAttempt row (the history, and the stem
# of its gateway idempotency keys).


def latest_attempt(session: Session, payment_id: int) -> PaymentAttempt | None:
    return session.scalar(
        select(PaymentAttempt)
        .where(PaymentAttempt.payment_id == payment_id)
        .order_by(PaymentAttempt.number.desc())
        .limit(1)
    )


def _attempt_key(payment: Payment, attempt: PaymentAttempt) -> str:
    """The stem of every gateway idempotency key of one attempt. The attempt opened with the
    payment itself uses the payment's own key (the create key of intents made before attempts
    were recorded); any other, `<payment key>-a<number>`."""
    if attempt.request_key == payment.idempotency_key:
        return payment.idempotency_key
    return f"{payment.idempotency_key}-a{attempt.number}"


def _open_attempt(
    session: Session,
    payment_id: int,
    method: PaymentMethod,
    request_key: str | None,
    *,
    now: datetime | None = None,
) -> PaymentAttempt | None:
    """Record a new attempt after the last one (which, if still open, is superseded); commits.
    None when a concurrent request recorded the same attempt first."""
    now = now or clock.now()
    payment = _locked_payment(session, payment_id)
    last = latest_attempt(session, payment_id)
    if last is not None and last.status not in ENDED:
        last.status = AttemptStatus.SUPERSEDED
        last.ended_at = now
    number = (last.number if last is not None else 0) + 1
    attempt = PaymentAttempt(
        payment_id=payment_id,
        number=number,
        method=method,
        request_key=request_key or f"{payment.idempotency_key}-a{number}",
        created_at=now,
    )
    session.add(attempt)
    if "attempts" in payment.__dict__:  # loaded in this session: kept in step (_current_attempt)
        payment.attempts.append(attempt)
    if payment.intent_id is None and payment.method != method:
        # No intent yet, so nothing at the gateway to change: the next one is made for this method.
        payment.method = method
        payment.order.payment_method = method
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return attempt


def _current_attempt(session: Session, payment: Payment) -> PaymentAttempt:
    """The payment's latest attempt; the first one is recorded when there is none."""
    placed = payment.__dict__.get("attempts")
    if placed:  # the order was placed in this session, with its first attempt: no need to ask
        return max(placed, key=lambda a: a.number)
    for _try in range(3):
        attempt = latest_attempt(session, payment.id)
        if attempt is None:
            attempt = _open_attempt(session, payment.id, payment.method, payment.idempotency_key)
        if attempt is not None:
            return attempt
    raise Conflict(_("Please try again."))


def _card_attempt(session: Session, payment: Payment) -> PaymentAttempt:
    """The card attempt a card confirmation belongs to: the open one, or a new one after a
    decline or a failed bank check."""
    for _try in range(3):
        attempt = _current_attempt(session, payment)
        if attempt.method == PaymentMethod.CARD and attempt.status not in ENDED:
            return attempt
        attempt = _open_attempt(session, payment.id, PaymentMethod.CARD, None)  # type: ignore[assignment]
        if attempt is not None:
            return attempt
    raise Conflict(_("Please try again."))


def _online_method(method: Any) -> PaymentMethod:
    value = getattr(method, "value", method)
    chosen = next((m for m in ONLINE if m.value == value), None)
    if chosen is None:
        msg = _("Choose bank card, WeChat Pay or Alipay.")
        raise ValidationError(msg, field_errors={"method": [msg]})
    return chosen


def _check_switchable(order: Order, payment: Payment, method: PaymentMethod, now: datetime | None) -> None:
    """Refuse (4xx, nothing written) paying again when the order cannot be paid that way now."""
    if payment.method == PaymentMethod.CASH or payment.status == PaymentStatus.AWAITING_CASH:
        raise PaymentClosed(_("This order is paid in cash at pickup."))
    if payment.method == PaymentMethod.CREDIT or payment.status == PaymentStatus.ON_CREDIT:
        raise PaymentClosed(_("This order is on the village agent's credit: it is paid in cash at pickup."))
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REQUIRES_CAPTURE):
        raise PaymentClosed(_("This order is already paid."))
    if payment.status not in OPEN:
        raise PaymentClosed(_("This order is cancelled. Nothing was charged."))
    if is_expired(order, now):
        raise PaymentClosed(_("The time to pay for this order has run out. The goods are back on sale."))
    if payment.status == PaymentStatus.PROCESSING:
        raise PaymentProcessing()
    if payment.capture_method == "manual" and method != PaymentMethod.CARD:
        msg = _("Pre-sale items can only be paid by card.")
        raise ValidationError(msg, field_errors={"method": [msg]})


def method_choices(order: Order, *, now: datetime | None = None) -> list[PaymentMethod]:
    """The ways the buyer may start paying the order again now (the pay page's buttons): none
    once it is paid, closed, expired or processing, nor for a pre-sale (by card, on its form);
    the way in use only after it failed (a new QR code or Alipay page)."""
    state = pay_state(order, now=now)
    if state not in ("card", "authenticate", "wechat", "alipay", "wallet_retry"):
        return []
    if order.payment.capture_method == "manual":
        return []
    current = order.payment.method
    return [m for m in ONLINE if m != current or state == "wallet_retry"]


def switch_method(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    method: Any,
    *,
    key: str,
    return_url: str | None = None,
    now: datetime | None = None,
) -> Payment:
    """Pay the order (again) with `method`: card, wechat_pay or alipay, on its one PaymentIntent.
    A wallet is confirmed at once (the answer holds the new QR code or redirect); a card waits
    for the card form (confirm_with). `key` is the client's idempotency key: the same request
    again is one attempt and the same gateway calls. Paid, cancelled or expired orders: 409 and
    nothing written; a payment processing at the gateway: 409 (PaymentProcessing)."""
    chosen = _online_method(method)
    payment = payment_of(session, order)
    for _try in range(3):
        attempt = session.scalar(
            select(PaymentAttempt).where(
                PaymentAttempt.payment_id == payment.id, PaymentAttempt.request_key == key
            )
        )
        if attempt is not None:
            if attempt.method != chosen:
                raise Conflict(_("This form was already used to pay another way. Please reload the page."))
            if attempt.status != AttemptStatus.STARTED:
                return payment  # the same request again: it was done
            # The gateway has not answered this attempt (yet): ask again, with the same keys.
            _check_switchable(order, payment, chosen, now)
            return _start_attempt(session, gateway, order, payment, attempt, return_url, now)
        _check_switchable(order, payment, chosen, now)
        if payment.intent_id is not None and payment.status == PaymentStatus.REQUIRES_ACTION:
            # A QR code, an Alipay page or the bank's check is out: the buyer may have just paid.
            current = gateway.retrieve_payment_intent(payment.intent_id)
            apply_intent(session, gateway, current, now=now, fresh=True)
            _check_switchable(order, payment, chosen, now)
        attempt = _open_attempt(session, payment.id, chosen, key, now=now)
        if attempt is not None:
            return _start_attempt(session, gateway, order, payment, attempt, return_url, now)
        session.refresh(payment)  # another request recorded an attempt at the same moment
    raise Conflict(_("Please try again."))


def _start_attempt(
    session: Session,
    gateway: PaymentGateway,
    order: Order,
    payment: Payment,
    attempt: PaymentAttempt,
    return_url: str | None,
    now: datetime | None,
) -> Payment:
    method = attempt.method
    stem = _attempt_key(payment, attempt)
    if payment.intent_id is None:
        payment, intent = _create_intent(session, gateway, order, payment, attempt, return_url)
        if intent.id != payment.intent_id or payment.status not in OPEN:
            return payment
    else:
        intent = gateway.retrieve_payment_intent(payment.intent_id)
    if intent.status not in WAITING:  # paid, processing or cancelled a moment ago
        payment = apply_intent(session, gateway, intent, now=now, fresh=True)
        _check_switchable(order, payment, method, now)
        return payment
    try:
        if list(intent.payment_method_types) != [method.value]:
            intent = gateway.update_payment_intent(
                intent.id,
                payment_method_types=[method.value],
                payment_method_options=_method_options(method),
                idempotency_key=f"{stem}-update",
            )
        if method in WALLETS and not (intent.status == "requires_action" and intent.next_action):
            intent = gateway.confirm_payment_intent(
                intent.id,
                payment_method_data={"type": method.value},
                return_url=return_url if method == PaymentMethod.ALIPAY else None,
                idempotency_key=f"{stem}-confirm",
            )
    except InvalidPaymentRequest:
        # Refused: most likely paid (or cancelled) a moment ago. Apply what it is, and say so.
        current = gateway.retrieve_payment_intent(intent.id)
        payment = apply_intent(session, gateway, current, now=now, fresh=True)
        if current.status in WAITING:
            raise
        _check_switchable(order, payment, method, now)
        return payment
    return apply_intent(session, gateway, intent, now=now, fresh=True)


def _method_of(intent: Intent) -> PaymentMethod | None:
    """The one online method an intent may be paid with, if it has exactly one."""
    if len(intent.payment_method_types) != 1:
        return None
    return next((m for m in ONLINE if m.value == intent.payment_method_types[0]), None)


def _track_attempt(
    session: Session,
    payment_id: int,
    intent: Intent,
    now: datetime,
    *,
    attempt: PaymentAttempt | None = None,
) -> None:
    """Bring the payment's latest attempt (or `attempt`, the one the intent was just created
    for) in line with the intent (its history)."""
    attempt = attempt or latest_attempt(session, payment_id)
    if attempt is None or attempt.status in ENDED:
        return
    status = intent.status
    if status == "canceled":
        new = AttemptStatus.CANCELED
    elif attempt.method.value not in intent.payment_method_types:
        return  # news from before this attempt changed the intent's method
    elif status in ("succeeded", "requires_capture"):
        new = AttemptStatus.SUCCEEDED
    elif status == "requires_action":
        new = AttemptStatus.REQUIRES_ACTION
    elif status == "processing":
        new = AttemptStatus.PROCESSING
    elif (
        status == "requires_payment_method"
        and intent.last_error
        and attempt.status in (AttemptStatus.REQUIRES_ACTION, AttemptStatus.PROCESSING)
    ):
        new = AttemptStatus.FAILED
        attempt.error = intent.last_error[:300]
    else:
        return
    attempt.status = new
    if new in ENDED:
        attempt.ended_at = now


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
    session: Session,
    gateway: PaymentGateway,
    intent: Intent,
    *,
    now: datetime | None = None,
    fresh: bool = False,
) -> Payment:
    """Bring our payment, order, stock and ledger in line with the PaymentIntent; idempotent.
    `fresh`: the intent is the gateway's answer just now (not a webhook's earlier picture), so
    it also says which way the buyer pays now."""
    result = _apply(session, intent, now=now, fresh=fresh)
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


def _apply(
    session: Session, intent: Intent, *, now: datetime | None = None, fresh: bool = False
) -> Applied | None:
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
    status = intent.status
    final = before == PaymentStatus.SUCCEEDED or (before == PaymentStatus.CANCELED and status != "succeeded")
    stale = status in WAITING and not fresh and payment.method.value not in intent.payment_method_types
    if stale and not final:
        # A webhook's picture of the intent from before the buyer switched to another way: what
        # it waited for is over. (Money moved is never stale news: it is applied below.)
        session.commit()
        return Applied(payment, [])
    if not final:
        method = _method_of(intent)
        if method is not None and method != payment.method and (fresh or status not in WAITING):
            # The intent as it is now says which way the order is paid (the buyer switched).
            payment.method = method
            order.payment_method = method
        _track_attempt(session, payment.id, intent, now)
    payment.client_secret = intent.client_secret or payment.client_secret
    payment.next_action = intent.next_action
    if intent.last_error:
        payment.last_error = intent.last_error[:300]
    if final:
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


@dataclass(frozen=True)
class LineRefundable:
    """One order line as a refund of units sees it: what the buyer paid for it, the units given
    back or on their way back (succeeded and pending refunds), what those units were paid, and the
    units that may still be refunded."""

    line: OrderLine
    paid_fen: int
    units_refunded: int
    refunded_fen: int
    units_left: int


def refundable_lines(session: Session, sub_order: SubOrder) -> list[LineRefundable]:
    """The sub-order's lines with their refunded and refundable units, in line order."""
    out = []
    for line in sorted(sub_order.lines, key=lambda line: line.id):
        done = campaign_holds.units_refunded(session, line, pending=True)
        breakdown = campaign_holds.breakdown_of(line)
        out.append(
            LineRefundable(
                line=line,
                paid_fen=line.paid_fen,
                units_refunded=done,
                # Cumulative: what units 1..done were paid, whichever refunds gave them back.
                refunded_fen=refund_line(breakdown, done).buyer_fen,
                units_left=line.quantity - done,
            )
        )
    return out


def _units_amount(session: Session, sub: SubOrder, units: Mapping[Any, Any]) -> tuple[int, dict[str, int]]:
    """What a refund of `units` ({order line id: units}) of the sub-order gives back: the sum of
    what those units were paid (promotions.refund_line, after the units refunded or pending
    before), and the units as Refund.units stores them. Shipping is not part of it. Every
    line must be the sub-order's, every count a positive whole number no larger than what is
    left of its line; else a ValidationError on `units`, nothing written."""

    def bad(msg: str) -> ValidationError:
        return ValidationError(msg, field_errors={"units": [msg]})

    lines = {line.id: line for line in sub.lines}
    counts: dict[int, int] = {}
    for key, n in units.items():
        line_id = id_or_none(key)
        if line_id is None or line_id not in lines:
            raise bad(_("These units are not of this order."))
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad(_("Enter a whole number of units."))
        if n:
            counts[line_id] = counts.get(line_id, 0) + n
    if not counts:
        raise bad(_("Enter the units to refund."))
    amount = 0
    for line_id in sorted(counts):
        line = lines[line_id]
        done = campaign_holds.units_refunded(session, line, pending=True)
        if counts[line_id] > line.quantity - done:
            raise bad(
                _(
                    "Only %(n)d of %(name)s can still be refunded.",
                    n=line.quantity - done,
                    name=line.name,
                )
            )
        amount += refund_line(
            campaign_holds.breakdown_of(line), counts[line_id], already_refunded=done
        ).buyer_fen
    return amount, {str(line_id): n for line_id, n in sorted(counts.items())}


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
    units: Mapping[int, int] | None = None,
) -> Refund:
    """Give back `amount_fen` (all that is left when None) of a paid sub-order.

    With `units` ({order line id: units}) the refund is of those units and its amount is what they
    were paid (`_units_amount`; an `amount_fen` beside them must be that amount): their campaign
    subsidy goes back to the budgets when it settles (services/campaigns/holds.py)."""
    now = now or clock.now()
    if idempotency_key:
        existing = session.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
        if existing is not None:
            if existing.sub_order_id != sub_order_id:
                # A client's key reused for another sub-order must not pass for its refund.
                raise Conflict(_("This refund key was already used for another order."))
            if existing.status == RefundStatus.PENDING and existing.gateway_refund_id is None:
                # The last try failed, or its answer was lost: look before sending again.
                return _resend_refund(session, gateway, existing, now=now)[0]
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
    through_agent = payment.method in THROUGH_AGENT and payment.intent_id is None
    paid = (PaymentStatus.SUCCEEDED, PaymentStatus.ON_CREDIT) if through_agent else (PaymentStatus.SUCCEEDED,)
    if payment.status not in paid or (payment.intent_id is None and not through_agent):
        raise PaymentClosed(_("Nothing has been paid for this order yet."))
    left = refundable_fen(session, sub)
    units_json: dict[str, int] = {}
    if units is not None:
        amount, units_json = _units_amount(session, sub, units)
        if amount_fen is not None and amount_fen != amount:
            msg = _("The units to refund come to %(amount)s.", amount=yuan_text(amount))
            raise ValidationError(msg, field_errors={"amount": [msg]})
        if amount > left:
            # Money refunded before (compensation, a shortfall) left less than these units cost.
            msg = _("At most %(amount)s can be refunded.", amount=yuan_text(left))
            raise ValidationError(msg, field_errors={"units": [msg]})
    else:
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
        units=units_json,
        reason=reason[:200],
        idempotency_key=idempotency_key or f"refund-{sub.number}-{(count or 0) + 1}-{int(now.timestamp())}",
        requested_by_id=actor.id if actor else None,
        created_at=now,
    )
    session.add(refund)
    if through_agent:
        # No gateway: the agent hands the cash back (out of cash_held), or, not collected yet,
        # the agent's credit is released (out of agent_credit). Settled in this transaction.
        session.flush()
        return settle_refund(session, refund.id, None, "succeeded", now=now)
    session.commit()
    return _send_refund(session, gateway, refund, now=now)


def new_refund(
    session: Session,
    sub_order: SubOrder,
    amount_fen: int,
    *,
    reason: str,
    idempotency_key: str,
    actor: User | None = None,
    now: datetime | None = None,
) -> Refund:
    """Record a refund of part or all of a paid sub-order in the caller's transaction, for a use
    case that writes it with rows of its own at once (the produce intake: services/intake.py).
    The caller holds the sub-order's lock and makes any move itself; after its commit it sends
    the refund with `send_refund`. Checked as `refund_sub_order` checks: paid, at most what is
    left."""
    payment = payment_of(session, sub_order.order)
    through_agent = payment.method in THROUGH_AGENT and payment.intent_id is None
    paid = (PaymentStatus.SUCCEEDED, PaymentStatus.ON_CREDIT) if through_agent else (PaymentStatus.SUCCEEDED,)
    if payment.status not in paid or (payment.intent_id is None and not through_agent):
        raise PaymentClosed(_("Nothing has been paid for this order yet."))
    left = refundable_fen(session, sub_order)
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not 0 < amount_fen <= left:
        msg = _("At most %(amount)s can be refunded.", amount=yuan_text(left))
        raise ValidationError(msg, field_errors={"amount": [msg]})
    refund = Refund(
        payment_id=payment.id,
        sub_order_id=sub_order.id,
        amount_fen=amount_fen,
        reason=reason[:200],
        idempotency_key=idempotency_key,
        requested_by_id=actor.id if actor else None,
        created_at=now or clock.now(),
    )
    session.add(refund)
    session.flush()
    return refund


def send_refund(
    session: Session, gateway: PaymentGateway, refund: Refund, *, first: bool, now: datetime | None = None
) -> Refund:
    """Send a refund `new_refund` recorded, once its transaction is committed: `first` time as
    it is, later (a repeated request after a failed send or a lost answer) looked up at the
    gateway first and never sent twice (`_resend_refund`). A refund of an order paid through a
    village agent has no gateway: it is settled at once. A settled refund is left as it is."""
    now = now or clock.now()
    if refund.status != RefundStatus.PENDING or refund.gateway_refund_id is not None:
        return refund
    payment = refund.payment
    if payment.intent_id is None and payment.method in THROUGH_AGENT:
        return settle_refund(session, refund.id, None, "succeeded", now=now)
    if first:
        return _send_refund(session, gateway, refund, now=now)
    return _resend_refund(session, gateway, refund, now=now)[0]


def _send_refund(
    session: Session, gateway: PaymentGateway, refund: Refund, *, now: datetime, idempotency_key: str = ""
) -> Refund:
    """Ask the gateway for a recorded refund. If the call fails the refund stays pending; a
    repeated request or the reconciliation job sends it again through `_resend_refund`. The
    refund's own key goes in the metadata (REFUND_KEY), whichever Idempotency-Key is used."""
    intent_id = refund.payment.intent_id
    assert intent_id is not None
    result = gateway.create_refund(
        payment_intent=intent_id,
        amount=refund.amount_fen,
        idempotency_key=idempotency_key or refund.idempotency_key,
        metadata={REFUND_KEY: refund.idempotency_key, "sub_order": refund.sub_order.number},
    )
    return settle_refund(session, refund.id, result.id, result.status, now=now)


# The metadata field that finds a refund again at the gateway (our Refund.idempotency_key).
REFUND_KEY = "refund_key"
# Stripe keeps an Idempotency-Key at least 24 hours and may prune it after; a key is trusted to
# be remembered for a little less.
KEY_TRUSTED_FOR = timedelta(hours=23)


class RefundMismatch(GatewayError):
    """The gateway holds a refund under our key for another amount: an admin must look."""


def _resend_refund(
    session: Session, gateway: PaymentGateway, refund: Refund, *, now: datetime
) -> tuple[Refund, bool]:
    """Send again a refund whose earlier try failed or whose answer was lost, never twice.

    First look it up at the gateway by its metadata (REFUND_KEY) among the PaymentIntent's
    refunds: if it is there it is adopted (its id recorded, settled by its status) and nothing
    is sent. The lookup is authoritative, so after a negative one sending is safe; it goes with
    the refund's current Idempotency-Key while the gateway still remembers it (a send in flight
    elsewhere is then one refund with this one), else with the next key of the same name
    (`_send_key`). Returns the refund and whether it was adopted."""
    intent_id = refund.payment.intent_id
    assert intent_id is not None
    found = gateway.find_refund(
        payment_intent=intent_id, metadata_key=REFUND_KEY, metadata_value=refund.idempotency_key
    )
    if found is not None:
        if found.amount != refund.amount_fen:
            mismatch = f"refund {refund.id}: {found.id} is for {found.amount}, not {refund.amount_fen}"
            raise RefundMismatch(gateway_message=mismatch)
        log.info("refund %s found at the gateway as %s: adopted, not sent again", refund.id, found.id)
        return settle_refund(session, refund.id, found.id, found.status, now=now), True
    key = _send_key(session, refund, now)
    return _send_refund(session, gateway, refund, now=now, idempotency_key=key), False


def _send_key(session: Session, refund: Refund, now: datetime) -> str:
    """The Idempotency-Key to send the refund with now: the current one while the gateway
    remembers it, else the next of its generation, deterministic (`<key>.<generation>`) and
    taken by a compare-and-set so that two senders agree on it."""
    used = refund.key_used_at or refund.created_at
    if now - used >= KEY_TRUSTED_FOR:
        generation = refund.key_generation
        session.execute(
            update(Refund)
            .where(Refund.id == refund.id, Refund.key_generation == generation)
            .values(key_generation=generation + 1, key_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        session.refresh(refund)  # ours, or the generation another sender took first
    if refund.key_generation == 0:
        return refund.idempotency_key
    return f"{refund.idempotency_key}.{refund.key_generation}"


def settle_refund(
    session: Session,
    refund_id: int,
    gateway_refund_id: str | None,
    status: str,
    *,
    now: datetime | None = None,
) -> Refund:
    """Apply the gateway's word on a refund (from the call or a webhook); idempotent. A refund of
    an order paid through a village agent has no gateway refund (None): it is settled at once."""
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


# Received webhook events (kept once, processed with retries): services/payments/events.py.


@dataclass
class Reconciled:
    synced: int = 0
    adopted: int = 0
    expired: int = 0
    refunds_sent: int = 0
    refunds_adopted: int = 0  # found at the gateway by their metadata, not sent again
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
    refunds the gateway never confirmed receiving, or adopt those it made (`_resend_refund`)."""
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
                # The gateway's answer now (not a webhook's old picture): it also says how the buyer pays.
                apply_intent(
                    session, gateway, gateway.retrieve_payment_intent(payment.intent_id), now=now, fresh=True
                )
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
            _refund, adopted = _resend_refund(session, gateway, refund, now=now)
            if adopted:
                report.refunds_adopted += 1
            else:
                report.refunds_sent += 1
        except GatewayError as exc:
            session.rollback()
            log.warning(
                "refund %s not settled (%s); next run retries", refund.id, exc.gateway_message or exc.code
            )
            report.failed += 1
    return report
