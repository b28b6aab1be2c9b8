"""Payments of orders through the gateway (PaymentIntents), refunds, and received webhook events."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum
from .orders import PaymentMethod


class PaymentStatus(enum.StrEnum):
    # Our row exists, the gateway call has not answered yet (or its answer was lost).
    CREATING = "creating"
    # The PaymentIntent's own statuses, as Stripe names them.
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"  # authorised (pre-sale), captured at dispatch
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    # Cash on pickup: nothing at the gateway; the agent records the cash (proxy orders).
    AWAITING_CASH = "awaiting_cash"
    # On the placing agent's credit: paid for the seller at once, the villager pays at pickup
    # (services/cash.py collect_on_pickup makes it succeeded).
    ON_CREDIT = "on_credit"


class Payment(Base):
    """The one payment of an order. `idempotency_key` is sent to the gateway on every retry and
    stored in the PaymentIntent's metadata, so a lost response can be found again, not repeated."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint(
            "amount_refunded_fen >= 0 AND amount_refunded_fen <= amount_received_fen",
            name="refunds_within_received",
        ),
        Index("ix_payments_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, 16))
    amount_fen: Mapped[Money]
    currency: Mapped[str] = mapped_column(String(3), default="cny")
    capture_method: Mapped[str] = mapped_column(String(16), default="automatic")
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus, 32), default=PaymentStatus.CREATING)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    intent_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    client_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    # What the buyer must do next (a wallet QR code, a 3-D Secure page), as the gateway said it.
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    amount_received_fen: Mapped[Money] = mapped_column(default=0)
    amount_refunded_fen: Mapped[Money] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)

    order = relationship("Order", back_populates="payment")
    # Every try to pay, oldest first (a retry or a switch of method on the same PaymentIntent).
    attempts: Mapped[list[PaymentAttempt]] = relationship(
        back_populates="payment", order_by="PaymentAttempt.number", lazy="select"
    )


class AttemptStatus(enum.StrEnum):
    STARTED = "started"  # recorded; the gateway has not been asked yet, or has not answered
    REQUIRES_ACTION = "requires_action"  # a QR code, a redirect or the bank's check is shown
    PROCESSING = "processing"
    FAILED = "failed"  # declined, or the wallet refused or was abandoned
    SUPERSEDED = "superseded"  # the buyer tried again (another method or the same) before it ended
    SUCCEEDED = "succeeded"  # paid (or, for a pre-sale, authorised)
    CANCELED = "canceled"  # the payment was cancelled (the order cancelled or expired)


class PaymentAttempt(Base):
    """One try to pay an order: the method chosen and how it ended. All of an order's attempts
    act on its one PaymentIntent; each carries its own idempotency keys to the gateway
    (`<payment key>-a<number>-…`), and `request_key` is the key the buyer's client sent, so a
    double-submitted switch is one attempt. A history for admins and the buyer."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("payment_id", "number"),
        UniqueConstraint("payment_id", "request_key"),
        CheckConstraint("number > 0", name="number_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, 16))
    request_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[AttemptStatus] = mapped_column(str_enum(AttemptStatus, 16), default=AttemptStatus.STARTED)
    error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    payment: Mapped[Payment] = relationship(back_populates="attempts")


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(Base):
    """Money given back for one sub-order (all of it or part).

    `idempotency_key` names the refund for good: it is sent in the gateway refund's metadata
    (refund_key), which is how a refund whose answer was lost is found again. It is also the
    first Idempotency-Key; the gateway forgets keys after about a day, so a refund sent again
    later, once a lookup found nothing, goes with the next key of the same name
    (`key_generation`, first used at `key_used_at`)."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    amount_fen: Mapped[Money]
    # Campaign subsidy the seller gives back with this refund (returned units: their subsidy goes
    # back to the campaign's budget); 0 for a refund of money only (services/campaigns/money.py).
    subsidy_fen: Mapped[Money] = mapped_column(default=0, server_default="0")
    # Units returned, by order line id ({"12": 2}), when the refund is of units (refund_sub_order's units).
    units: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[RefundStatus] = mapped_column(str_enum(RefundStatus, 16), default=RefundStatus.PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    key_generation: Mapped[int] = mapped_column(default=0)
    key_used_at: Mapped[datetime | None] = mapped_column(default=None)  # None: created_at
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)

    payment: Mapped[Payment] = relationship(lazy="joined")
    sub_order = relationship("SubOrder", lazy="joined")


class WebhookEvent(Base):
    """A gateway event we accepted, by the gateway's event id: a replayed delivery is a no-op.

    Processed once (`processed_at`). Until then it is due at `next_attempt_at` (set when it is
    received, in case the queue loses it, and after each failure by the backoff); the runner
    processing it holds it until `locked_until`. After the last attempt it is given up
    (`gave_up_at`) and waits for an admin's "process again" (services/payments/events.py)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_next_attempt_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")  # the last attempt's; "" once processed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    gave_up_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    locked_by: Mapped[str] = mapped_column(String(64), default="")

    @property
    def state(self) -> str:
        """processed, given_up, retrying (failed; tried again at next_attempt_at) or new."""
        if self.processed_at is not None:
            return "processed"
        if self.gave_up_at is not None:
            return "given_up"
        return "retrying" if self.attempts else "new"


class GatewayCustomer(Base):
    """The gateway's Customer for one of our users: their PaymentIntents are listed under it,
    which is how a PaymentIntent whose create response was lost is found again."""

    __tablename__ = "gateway_customers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
