"""Parcels at the village point: who collected a parcel waiting for pickup, when and how.

One `ParcelHandover` per sub-order that left the point: collected with the pickup code, or (the
code lost) handed over after the agent confirmed who collects it, with the recorded reason; or
returned by the flag-uncollected-parcels job when nobody collected it in time (its money went
back). The sub-order's move to COMPLETED (or its refund) happens in the same transaction, so a
handover row exists exactly when the parcel left the point (services/parcels.py).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum


class HandoverMethod(enum.StrEnum):
    CODE = "code"  # the collector gave the order's pickup code
    REASON = "reason"  # the code lost: the agent confirmed who collects it, for a recorded reason
    RETURNED = "returned"  # not collected in time: returned, its money given back (the job)


class IdentityReason(enum.StrEnum):
    """Why the agent handed a parcel over without the code."""

    ID_CARD = "id_card"  # the agent saw the recipient's ID card
    KNOWN_VILLAGER = "known_villager"  # the agent knows the villager in person
    FAMILY_MEMBER = "family_member"  # a family member the agent knows collects it


class ParcelHandover(Base):
    """How one parcel (sub-order) waiting at a point left it: collected, or returned."""

    __tablename__ = "parcel_handovers"
    __table_args__ = (Index("ix_parcel_handovers_point_created", "point_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"), unique=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    # The agent who handed it over; None when the job returned it.
    handed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    method: Mapped[HandoverMethod] = mapped_column(str_enum(HandoverMethod, 16))
    reason: Mapped[IdentityReason | None] = mapped_column(str_enum(IdentityReason, 24), default=None)
    reason_text: Mapped[str] = mapped_column(String(200), default="")
    # The name of the person who took the parcel, as the agent wrote it (the recipient's, by default).
    collected_by: Mapped[str] = mapped_column(String(40), default="")
    # Cash taken at the counter for an order placed on the agent's credit (0 otherwise).
    cash_collected_fen: Mapped[Money] = mapped_column(default=0)
    # The request's key (a returned parcel's: "return-<sub-order number>"): applied once.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    sub_order = relationship("SubOrder", lazy="joined")
    handed_by = relationship("User", lazy="joined")
