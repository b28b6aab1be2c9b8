"""Proxy orders (代购) a village agent places for villagers: the agent's credit (the limit county
staff set, and each collection at pickup of an order placed on it) and the agent's proxy cart for
one villager (services/proxy.py, services/cash.py).

Credit used is never stored: it is the balance of the ledger account `agent_credit:{agent}`
(services/ledger.py). A `CreditCollection` is the record, beside the ledger, that the villager
paid the agent cash for one sub-order placed on credit: what the ledger moved from agent_credit
to cash_held is checked against it (services/ledger_checks.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money


class AgentCreditLimit(Base):
    """How much an agent may place on credit (cash on pickup), set by county staff of the agent's
    point's county. No row: a limit of 0 (no credit)."""

    __tablename__ = "agent_credit_limits"
    __table_args__ = (CheckConstraint("limit_fen >= 0", name="limit_nonnegative"),)

    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    limit_fen: Mapped[Money] = mapped_column(default=0)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # The key of the request that set it last: the same request again changes nothing.
    idempotency_key: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    agent = relationship("User", foreign_keys=[agent_id], lazy="joined")
    set_by = relationship("User", foreign_keys=[set_by_id], lazy="select")


class CreditCollection(Base):
    """The villager paid the agent at pickup for one sub-order placed on credit: `amount_fen`
    (what was still owed: charged less refunded) left agent_credit of the placer for cash_held of
    the collecting agent. Once per sub-order."""

    __tablename__ = "credit_collections"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id", ondelete="CASCADE"), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # The agent whose credit it was (the placer) and the agent who took the cash (holds it now).
    credit_agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_fen: Mapped[Money]
    collected_at: Mapped[datetime] = mapped_column(default=clock.now)


class ProxyCartItem(Base):
    """One line of an agent's proxy cart for one villager (kept on the server: the agent may
    switch phones or lose the connection between picking goods and placing the order)."""

    __tablename__ = "proxy_cart_items"
    __table_args__ = (
        UniqueConstraint("agent_id", "villager_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    villager_id: Mapped[int] = mapped_column(ForeignKey("villagers.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    product = relationship("Product", lazy="joined")
