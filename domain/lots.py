"""Produce handed in at a village point (the first kilometer): the intake the receiving agent
records (weighed, graded, photographed, line by line), and the lots (批次) the accepted goods
become, each with an unguessable trace code.

An `Intake` is the one hand-in of one sub-order: who received it where, when, under which
idempotency key, and what the buyer is charged for the goods after weighing. Each of its
`IntakeLine`s is one order line as received: weighed weight, grade, accepted quantity, photo,
and what that line costs the buyer now. Every accepted line (a grade other than 不合格 and a
quantity above zero) becomes one `Lot`: the unit the logistics legs move and trace. A lot knows
its origin node (the point or center that received it), its sub-order and line, the product and
the seller. `IntakePhoto` is a photo the receiving agent took (services.media processing), kept
apart from listing photos.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum


class Grade(enum.StrEnum):
    """The grade the receiving agent gives a line of produce; REJECTED (不合格) is not accepted."""

    FIRST = "first"  # 一级
    SECOND = "second"  # 二级
    THIRD = "third"  # 三级
    REJECTED = "rejected"  # 不合格: the line is refused and refunded


class IntakePhoto(Base):
    """A photo taken at the intake, stored re-encoded in phone sizes under `key` (services.media).
    Only its uploader may attach it to an intake line."""

    __tablename__ = "intake_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Intake(Base):
    """The hand-in of one sub-order at a point, recorded once (one per sub-order)."""

    __tablename__ = "intakes"
    __table_args__ = (
        UniqueConstraint("received_by_id", "idempotency_key"),
        CheckConstraint("goods_fen >= 0", name="goods_nonnegative"),
        CheckConstraint("difference_fen >= 0", name="difference_nonnegative"),
        Index("ix_intakes_node_received", "node_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"), unique=True)
    # Where it was received: the seller's home point, or the county center.
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    received_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    # The goods as received, priced (by weighed weight for produce sold by weight).
    goods_fen: Mapped[Money]
    # What the buyer does not pay after all (ordered goods − goods_fen, or everything when nothing
    # was accepted): released from a pre-sale authorisation or refunded.
    difference_fen: Mapped[Money]
    # How the difference went back: "capture" (a pre-sale captured for less), "void" (a pre-sale
    # authorisation released whole), "refund", or "none".
    settlement: Mapped[str] = mapped_column(String(16), default="none")
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), default=None)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)

    sub_order = relationship("SubOrder", lazy="joined")
    node = relationship("Node", lazy="joined")
    received_by = relationship("User", lazy="joined")
    refund = relationship("Refund", lazy="joined")
    lines: Mapped[list[IntakeLine]] = relationship(
        back_populates="intake", lazy="selectin", order_by="IntakeLine.id", cascade="all, delete-orphan"
    )
    lots: Mapped[list[Lot]] = relationship(
        back_populates="intake", lazy="selectin", order_by="Lot.id", cascade="all, delete-orphan"
    )

    @property
    def accepted_any(self) -> bool:
        return bool(self.lots)


class IntakeLine(Base):
    """One order line as received."""

    __tablename__ = "intake_lines"
    __table_args__ = (
        CheckConstraint("weighed_g >= 0", name="weighed_nonnegative"),
        CheckConstraint("accepted_quantity >= 0", name="accepted_nonnegative"),
        CheckConstraint("charged_fen >= 0", name="charged_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intakes.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), unique=True)
    weighed_g: Mapped[int]
    grade: Mapped[Grade] = mapped_column(str_enum(Grade, 16))
    accepted_quantity: Mapped[int]
    by_weight: Mapped[bool] = mapped_column(default=False)
    # What this line costs the buyer now (≤ the ordered line_fen).
    charged_fen: Mapped[Money]
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("intake_photos.id"), default=None)

    intake: Mapped[Intake] = relationship(back_populates="lines")
    order_line = relationship("OrderLine", lazy="joined")
    photo = relationship("IntakePhoto", lazy="joined")


class Lot(Base):
    """A lot (批次): the goods of one accepted line, traced by `code` from the point onwards."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("weight_g > 0", name="weight_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_lots_node_received", "node_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 16 characters of base32 from 80 random bits: unguessable, read out or typed if need be.
    code: Mapped[str] = mapped_column(String(24), unique=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intakes.id", ondelete="CASCADE"), index=True)
    intake_line_id: Mapped[int] = mapped_column(ForeignKey("intake_lines.id"), unique=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The origin node: where the lot came into the network.
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    weight_g: Mapped[int]
    grade: Mapped[Grade] = mapped_column(str_enum(Grade, 16))
    quantity: Mapped[int]
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("intake_photos.id"), default=None)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The newest hash of the lot's event chain (LotEvent), kept apart from the events: a chain cut
    # short or rewritten from some event on no longer ends here (services/logistics/trace.py).
    chain_head: Mapped[str | None] = mapped_column(String(64), default=None)

    intake: Mapped[Intake] = relationship(back_populates="lots")
    intake_line = relationship("IntakeLine", lazy="joined")
    sub_order = relationship("SubOrder", lazy="joined")
    product = relationship("Product", lazy="joined")
    node = relationship("Node", lazy="joined")
    photo = relationship("IntakePhoto", lazy="joined")


class LotEvent(Base):
    """One event of a lot's SM3 hash chain (services/logistics/chain.py): what happened (received,
    departed, arrived, delivered, exception, a temperature excursion), as the canonical JSON that
    was hashed, with the hash of the event before it and its own. Rows are only ever added."""

    __tablename__ = "lot_events"
    __table_args__ = (UniqueConstraint("lot_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    seq: Mapped[int]  # 1, 2, … in the chain's order
    kind: Mapped[str] = mapped_column(String(16))
    # The scan the event was made from, to check the event still says what the scan says.
    scan_id: Mapped[int | None] = mapped_column(
        ForeignKey("scans.id", ondelete="SET NULL"), index=True, default=None
    )
    happened_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)  # the event's canonical JSON (UTF-8 text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded
