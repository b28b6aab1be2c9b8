"""Village agents' commissions: rates the county service center sets per category, what each
agent earned per sub-order, and the agents' lines in a payout batch.

An agent earns on a proxy order placed for a villager at their point and on produce they took in
at the point (the intake's hand-in). The commission is earned when the sub-order completes
(`services.commissions.earn`), at the rate of the county of the point, per product category; a
refund after that takes back its share (`reversed_fen`); a payout batch pays it beside the
sellers' payouts, in `commission_payouts`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum


class CommissionKind(enum.StrEnum):
    PROXY = "proxy"  # a proxy order (代购) the agent placed for a villager
    INTAKE = "intake"  # produce the agent received and weighed at the point


class CommissionRate(Base):
    """A county's rate for one kind of commission on one category (`category_id` NULL: the
    county's rate for every category without its own)."""

    __tablename__ = "commission_rates"
    __table_args__ = (
        # A rate in basis points of the goods' price: 150 = 1.5 %; at most 30 %.
        CheckConstraint("rate_bp >= 0 AND rate_bp <= 3000", name="rate_in_range"),
        # One rate per county, kind and category, and one county-wide rate per kind (NULLs are
        # distinct in a unique index: the county-wide rate has its own partial index).
        Index(
            "uq_commission_rates_category",
            "county_code",
            "kind",
            "category_id",
            unique=True,
            sqlite_where=text("category_id IS NOT NULL"),
            postgresql_where=text("category_id IS NOT NULL"),
        ),
        Index(
            "uq_commission_rates_county",
            "county_code",
            "kind",
            unique=True,
            sqlite_where=text("category_id IS NULL"),
            postgresql_where=text("category_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"))
    kind: Mapped[CommissionKind] = mapped_column(str_enum(CommissionKind, 16))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), default=None)
    rate_bp: Mapped[int] = mapped_column(Integer)
    set_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    category = relationship("Category", lazy="joined")


class AgentCommission(Base):
    """What one agent earned on one sub-order, for one kind of work. `amount_fen` is fixed when
    earned; refunds after that add to `reversed_fen`; a payout batch claims it (`payout_id`)."""

    __tablename__ = "agent_commissions"
    __table_args__ = (
        UniqueConstraint("sub_order_id", "kind"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("reversed_fen >= 0 AND reversed_fen <= amount_fen", name="reversed_in_range"),
        Index("ix_agent_commissions_agent_earned", "agent_id", "earned_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))  # the point it was earned at
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id"))
    kind: Mapped[CommissionKind] = mapped_column(str_enum(CommissionKind, 16))
    base_fen: Mapped[Money]  # the goods' price it was earned on (after earlier refunds)
    amount_fen: Mapped[Money]
    reversed_fen: Mapped[Money] = mapped_column(default=0)
    earned_at: Mapped[datetime] = mapped_column(default=clock.now)
    payout_id: Mapped[int | None] = mapped_column(
        ForeignKey("commission_payouts.id", ondelete="SET NULL"), index=True, default=None
    )

    sub_order = relationship("SubOrder", lazy="joined")

    @property
    def net_fen(self) -> int:
        return self.amount_fen - self.reversed_fen


class CommissionPayout(Base):
    """One agent's line in a payout batch: the commissions it claims (`gross_fen`, net of their
    reversals), less what reversals after earlier payouts left the agent owing (`netted_fen`),
    is what the bank pays (`amount_fen`)."""

    __tablename__ = "commission_payouts"
    __table_args__ = (
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        CheckConstraint("netted_fen >= 0", name="netted_nonnegative"),
        CheckConstraint("gross_fen = amount_fen + netted_fen", name="gross_adds_up"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    gross_fen: Mapped[Money]
    netted_fen: Mapped[Money] = mapped_column(default=0)
    amount_fen: Mapped[Money]
    commission_count: Mapped[int] = mapped_column(default=0)

    agent = relationship("User", lazy="joined")
