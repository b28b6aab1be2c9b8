"""What buyers are told about their orders, what they chose not to be told, and the pickup codes
that hand a parcel over at a village point.

A `Notification` is written in the same transaction as the state move it announces (an outbox):
a move rolled back leaves no notification, and one committed is sent afterwards by the
send-notifications job (services/notify.py), which retries a failed send. Its `dedupe_key` is
unique, so an event repeated (a webhook delivered twice, a move replayed) is told once.

A `PickupCode` keeps no code: the code is derived from the server's secret and the row's salt
(services/orders/pickup.py), and only a keyed hash of it is stored to check the code typed at
hand-over, with the wrong tries counted.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from . import clock
from .base import Base, str_enum


class NotificationEvent(enum.StrEnum):
    PAID = "paid"  # the order's money is in (or authorised, for a pre-sale): once per order
    ACCEPTED = "accepted"  # the seller accepted their part
    HANDED_IN = "handed_in"  # handed in at the village point: on its way
    READY_FOR_PICKUP = "ready_for_pickup"  # waiting at the pickup point (with the pickup code)
    OUT_FOR_DELIVERY = "out_for_delivery"  # on its way to the door
    REFUNDED = "refunded"  # money went back (each refund, in part or in full)
    PICKUP_CODE = "pickup_code"  # a new pickup code was issued (the old one no longer works)
    PARCEL_COLLECTED = "parcel_collected"  # the parcel was collected at the point (services/parcels.py)
    PARCEL_REMINDER = "parcel_reminder"  # still waiting at the point: collect it before it goes back
    PROXY_PLACED = "proxy_placed"  # an agent placed a proxy order for the villager (代购)
    COLD_EXCURSION = "cold_excursion"  # to staff: a logger found an excursion (no order)
    LOGGER_SILENT = "logger_silent"  # to staff: a logger sent nothing for hours (no order)
    PARCEL_STUCK = "parcel_stuck"  # to staff: a parcel waits at their node too long (no order)
    LEG_LATE = "leg_late"  # to staff: a parcel on its way to their node is late (no order)


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"  # to be sent (again, after `next_attempt_at`)
    SENT = "sent"
    FAILED = "failed"  # gave up after the last try
    SKIPPED = "skipped"  # the buyer turned this kind off: recorded, never sent


class Notification(Base):
    """One message to a buyer about one event of one order or sub-order (the outbox)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # event:order:sub-order:sequence (a refund's sequence is the amount refunded so far; a new
    # pickup code's is its issue number): one row, so one message, per event.
    dedupe_key: Mapped[str] = mapped_column(String(96), unique=True)
    event: Mapped[NotificationEvent] = mapped_column(str_enum(NotificationEvent, 24))
    # None: a message to staff about no order (a cold-chain excursion: params say what).
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True, default=None
    )
    sub_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("sub_orders.id", ondelete="CASCADE"), index=True, default=None
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(11))
    # What the text needs beyond the order (an amount in fen); never a pickup code.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, 16), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationOptOut(Base):
    """A kind of optional message a user chose not to receive."""

    __tablename__ = "notification_opt_outs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[NotificationEvent] = mapped_column(str_enum(NotificationEvent, 24), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class PickupCode(Base):
    """The pickup code of one pickup order: its salt and a keyed hash, never the code itself."""

    __tablename__ = "pickup_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    # Wrong codes typed since the code was issued or last typed right; at the limit it is locked
    # until the buyer has a new one issued (`issue` counts them).
    attempts: Mapped[int] = mapped_column(default=0)
    issue: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_failed_at: Mapped[datetime | None] = mapped_column(default=None)
