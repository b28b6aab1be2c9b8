"""Payments of orders through the gateway (PaymentIntents), refunds, and received webhook events."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
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


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(Base):
    """Money given back for one sub-order (all of it or part)."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    amount_fen: Mapped[Money]
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[RefundStatus] = mapped_column(str_enum(RefundStatus, 16), default=RefundStatus.PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)

    payment: Mapped[Payment] = relationship(lazy="joined")
    sub_order = relationship("SubOrder", lazy="joined")


class WebhookEvent(Base):
    """A gateway event we accepted, by the gateway's event id: a replayed delivery is a no-op."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(String(300), default="")


class GatewayCustomer(Base):
    """The gateway's Customer for one of our users: their PaymentIntents are listed under it,
    which is how a PaymentIntent whose create response was lost is found again."""

    __tablename__ = "gateway_customers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
