"""Money as a double-entry ledger: accounts, balanced transactions of signed entries, and the
payout batches that settle what the platform owes its sellers.

Entries are signed fen: debit positive, credit negative; every transaction's entries sum to zero.
A balance is always the sum of an account's entries, never a stored number.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum


class AccountKind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"


class LedgerAccount(Base):
    """One account: a fixed platform account (code only) or one per seller or agent (owner_id)."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # e.g. "buyer_payments_clearing", "seller_payable:42", "cash_held:17"
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, 16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class LedgerTransaction(Base):
    """One business event's money movement. `key` makes posting it twice a no-op."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    memo: Mapped[str] = mapped_column(String(200), default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True, default=None)
    sub_order_id: Mapped[int | None] = mapped_column(ForeignKey("sub_orders.id"), index=True, default=None)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"), index=True, default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    entries: Mapped[list[LedgerEntry]] = relationship(
        back_populates="transaction", lazy="selectin", order_by="LedgerEntry.id", cascade="all, delete-orphan"
    )


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_account", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[Money]  # debit > 0, credit < 0

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship(lazy="joined")


class PayoutBatchStatus(enum.StrEnum):
    OPEN = "open"  # built, exported for the bank, not yet confirmed paid
    PAID = "paid"  # staff confirmed the bank paid it; the ledger carries the payouts


class PayoutBatch(Base):
    """Seller settlement: what is owed for sub-orders delivered before a cut-off, one file for the bank."""

    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cutoff: Mapped[datetime]
    status: Mapped[PayoutBatchStatus] = mapped_column(
        str_enum(PayoutBatchStatus, 16), default=PayoutBatchStatus.OPEN
    )
    total_fen: Mapped[Money] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)

    payouts: Mapped[list[Payout]] = relationship(
        back_populates="batch", lazy="selectin", order_by="Payout.id", cascade="all, delete-orphan"
    )
    # The agents' commissions paid in this batch (domain/commissions.py).
    commission_payouts = relationship(
        "CommissionPayout", lazy="selectin", order_by="CommissionPayout.agent_id", viewonly=True
    )


class Payout(Base):
    """One seller's line in a payout batch: what their sub-orders in it owe (`gross_fen`), less
    what the seller carried from refunds made after earlier payouts (`netted_fen`), is what the
    bank pays (`amount_fen`, never negative; 0 when the netting took all of it)."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        CheckConstraint("netted_fen >= 0", name="netted_nonnegative"),
        CheckConstraint("gross_fen > 0 AND gross_fen = amount_fen + netted_fen", name="gross_adds_up"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id", ondelete="CASCADE"), index=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_fen: Mapped[Money]  # what the bank transfers
    gross_fen: Mapped[Money]  # what the sub-orders in this payout owe the seller
    netted_fen: Mapped[Money] = mapped_column(default=0)  # taken from the seller's carried balance
    sub_order_count: Mapped[int] = mapped_column(default=0)

    batch: Mapped[PayoutBatch] = relationship(back_populates="payouts")
    seller = relationship("User", lazy="joined")
