"""Standing orders (定期代购): a villager's regular need (fertilizer each month, rice each week)
that the agent set up with them, and its cycles.

A standing order is never an order by itself: each due date gets a cycle, prepared ahead of
its cut-off by the prepare-standing-orders job; the real order exists only once the agent
confirms the cycle (services/standing.py), placed as a proxy order with the standing order's
items and payment method."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum
from .orders import PaymentMethod


class StandingStatus(enum.StrEnum):
    ACTIVE = "active"  # cycles are prepared
    PAUSED = "paused"  # no new cycles until resumed
    CANCELLED = "cancelled"  # for good


class Cadence(enum.StrEnum):
    WEEKLY = "weekly"  # on a weekday (0 Monday … 6 Sunday), every N weeks
    MONTHLY = "monthly"  # on a day of the month (1-28), every N months


class CycleStatus(enum.StrEnum):
    PREPARED = "prepared"  # waiting for the agent to confirm or skip it before the cut-off
    CONFIRMED = "confirmed"  # the agent confirmed it: its order is placed
    SKIPPED = "skipped"  # the agent skipped it (or paused / cancelled the standing order)
    EXPIRED = "expired"  # nobody confirmed it before the cut-off: no order


class StandingOrder(Base):
    __tablename__ = "standing_orders"
    __table_args__ = (
        UniqueConstraint("created_by_id", "idempotency_key"),
        CheckConstraint("repeat_every BETWEEN 1 AND 12", name="repeat_every_range"),
        CheckConstraint(
            "(cadence = 'weekly' AND weekday BETWEEN 0 AND 6 AND day_of_month IS NULL)"
            " OR (cadence = 'monthly' AND day_of_month BETWEEN 1 AND 28 AND weekday IS NULL)",
            name="cadence_day",
        ),
        Index("ix_standing_orders_point_status", "point_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    villager_id: Mapped[int] = mapped_column(ForeignKey("villagers.id"), index=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))  # the villager's point
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, 16))
    cadence: Mapped[Cadence] = mapped_column(str_enum(Cadence, 16))
    repeat_every: Mapped[int] = mapped_column(default=1)  # every N weeks or months
    weekday: Mapped[int | None] = mapped_column(default=None)  # weekly: 0 Monday … 6 Sunday
    day_of_month: Mapped[int | None] = mapped_column(default=None)  # monthly: 1-28
    start_date: Mapped[date] = mapped_column(Date)  # the first due date is on or after it
    status: Mapped[StandingStatus] = mapped_column(
        str_enum(StandingStatus, 16), default=StandingStatus.ACTIVE
    )
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    villager = relationship("Villager", lazy="joined")
    created_by = relationship("User", lazy="select")
    lines: Mapped[list[StandingOrderLine]] = relationship(
        back_populates="standing_order",
        cascade="all, delete-orphan",
        order_by="StandingOrderLine.id",
        lazy="selectin",
    )

    def __repr__(self) -> str:
        return f"<StandingOrder {self.id}>"


class StandingOrderLine(Base):
    """One product of a standing order and how many each time."""

    __tablename__ = "standing_order_lines"
    __table_args__ = (
        UniqueConstraint("standing_order_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    standing_order_id: Mapped[int] = mapped_column(ForeignKey("standing_orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]

    standing_order: Mapped[StandingOrder] = relationship(back_populates="lines")
    product = relationship("Product", lazy="joined")


class StandingCycle(Base):
    """One due date of a standing order: prepared by the job, confirmed (an order), skipped or
    expired. One per standing order and due date, so a rerun of the job prepares nothing twice."""

    __tablename__ = "standing_order_cycles"
    __table_args__ = (
        UniqueConstraint("standing_order_id", "due_date"),
        UniqueConstraint("order_key"),
        Index("ix_standing_order_cycles_status_cutoff", "status", "cutoff_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    standing_order_id: Mapped[int] = mapped_column(ForeignKey("standing_orders.id", ondelete="CASCADE"))
    due_date: Mapped[date] = mapped_column(Date)
    cutoff_at: Mapped[datetime]  # confirm or skip before this instant (UTC)
    status: Mapped[CycleStatus] = mapped_column(str_enum(CycleStatus, 16), default=CycleStatus.PREPARED)
    # The idempotency key the cycle's order is placed with: a double tap or a replay places one.
    order_key: Mapped[str] = mapped_column(String(64))
    # The agent placing its order (claimed before placing, so two agents never place two).
    placed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    confirm_key: Mapped[str | None] = mapped_column(String(64), default=None)
    skip_reason: Mapped[str] = mapped_column(String(16), default="")  # agent, paused, cancelled
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    standing_order: Mapped[StandingOrder] = relationship(lazy="joined")
    order = relationship("Order", lazy="select")

    def __repr__(self) -> str:
        return f"<StandingCycle {self.standing_order_id} {self.due_date}>"
