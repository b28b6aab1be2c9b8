"""Cash a village agent collected for proxy orders, handed in to the county service center.

An agent declares a remittance (the amount they hand over); county staff of the agent's county
count it and confirm the counted amount. Only the counted amount leaves the agent's cash_held
account (services/cash.py); a shortfall (declared − counted) stays there, still owed by the agent.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import MONEY_TYPE, Base, Money, str_enum


class RemittanceStatus(enum.StrEnum):
    DECLARED = "declared"  # the agent says they handed this much over
    CONFIRMED = "confirmed"  # county staff counted it; the counted amount is in the ledger


class CashRemittance(Base):
    """One hand-over of an agent's collected cash to their county service center."""

    __tablename__ = "cash_remittances"
    __table_args__ = (
        UniqueConstraint("agent_id", "idempotency_key"),
        CheckConstraint("declared_fen > 0", name="declared_positive"),
        CheckConstraint("counted_fen IS NULL OR counted_fen >= 0", name="counted_nonnegative"),
        Index("ix_cash_remittances_county_status", "county_code", "status"),
        Index("ix_cash_remittances_agent_created", "agent_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))  # the agent's point
    county_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"))  # whose staff confirm it
    declared_fen: Mapped[Money]
    counted_fen: Mapped[int | None] = mapped_column(MONEY_TYPE, default=None)
    status: Mapped[RemittanceStatus] = mapped_column(
        str_enum(RemittanceStatus, 16), default=RemittanceStatus.DECLARED
    )
    idempotency_key: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)

    agent = relationship("User", foreign_keys=[agent_id], lazy="joined")
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id], lazy="joined")
    node = relationship("Node", lazy="joined")

    @property
    def discrepancy_fen(self) -> int | None:
        """Declared − counted once counted (> 0: a shortfall the agent still owes); None before."""
        return None if self.counted_fen is None else self.declared_fen - self.counted_fen
