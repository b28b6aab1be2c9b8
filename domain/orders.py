"""Carts, delivery addresses, orders and their per-seller sub-orders, order lines, the state
history of each sub-order, and the stock reservations that keep a checkout from overselling.

One checkout is one `Order` (one payment) split into one `SubOrder` per seller, each with its own
fulfilment. Sub-orders move through the state machine in services.orders.states.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, shared_row, str_enum
from .catalog import StorageClass, Unit


class CartItem(Base):
    """A logged-in buyer's cart line. Guests keep theirs in the session; it is merged at login."""

    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("user_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    product = relationship("Product", lazy="joined")


class Address(Base):
    """A delivery address: a village or town (市/县/镇/村 by division code) plus the street detail."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(11))
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"))
    detail: Mapped[str] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Addresses an order points at are kept (orders copy the text anyway); a deleted one is hidden.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    division = relationship("Division", lazy="joined")


class DeliveryMethod(enum.StrEnum):
    HOME = "home"  # delivered to the address
    PICKUP = "pickup"  # collected at a village service point or a distribution center


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    CASH = "cash"  # cash on pickup, collected by the village agent (proxy orders)
    CREDIT = "credit"  # on the placing agent's credit: the villager pays cash at pickup


class Order(Base):
    """One checkout: one payment for the sub-orders of every seller in the cart."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("buyer_id", "idempotency_key"),
        CheckConstraint("items_fen >= 0 AND shipping_fen >= 0", name="amounts_nonnegative"),
        CheckConstraint("total_fen = items_fen + shipping_fen", name="total_adds_up"),
        Index("ix_orders_buyer_created", "buyer_id", "created_at"),
        # The per-placer caps and rate of proxy orders (services.orders.checkout.check_limits).
        Index("ix_orders_placed_by_created", "placed_by_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The public order number buyers read out on the phone: date + sequence digits.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Who pressed the button: the buyer, or (later) a village agent placing a proxy order.
    placed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # A proxy order's buyer of record: the villager the agent shopped for (services/proxy.py).
    villager_id: Mapped[int | None] = mapped_column(ForeignKey("villagers.id"), index=True, default=None)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, 16))
    delivery_method: Mapped[DeliveryMethod] = mapped_column(str_enum(DeliveryMethod, 16))
    pickup_node_id: Mapped[int | None] = mapped_column(shared_row("nodes.id"), index=True, default=None)
    # The address as it was at checkout: later edits to the address book do not move parcels.
    recipient: Mapped[str] = mapped_column(String(40))
    recipient_phone: Mapped[str] = mapped_column(String(11))
    division_code: Mapped[str] = mapped_column(shared_row("divisions.code"))
    address_detail: Mapped[str] = mapped_column(String(120), default="")
    items_fen: Mapped[Money]
    shipping_fen: Mapped[Money]
    total_fen: Mapped[Money]
    # Pre-sale orders are authorised now and captured when the goods are dispatched.
    presale: Mapped[bool] = mapped_column(default=False)
    # Unpaid orders give their stock back after this moment (services.orders.reservations).
    pay_by: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    buyer = relationship("User", foreign_keys=[buyer_id], lazy="joined")
    pickup_node = relationship("Node", lazy="joined")
    division = relationship("Division", lazy="joined")
    villager = relationship("Villager", lazy="select")
    sub_orders: Mapped[list[SubOrder]] = relationship(
        back_populates="order", lazy="selectin", order_by="SubOrder.id", cascade="all, delete-orphan"
    )
    payment = relationship("Payment", back_populates="order", uselist=False, lazy="selectin")


class OrderStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ACCEPTED = "accepted"
    HANDED_IN = "handed_in"
    IN_TRANSIT = "in_transit"
    READY_FOR_PICKUP = "ready_for_pickup"
    OUT_FOR_DELIVERY = "out_for_delivery"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUND_REQUESTED = "refund_requested"
    REFUNDED = "refunded"
    # Legacy: only older history events name it. A partial refund is money, not a state: the
    # sub-order keeps its fulfilment state with `refunded_fen` beside it.
    PARTIALLY_REFUNDED = "partially_refunded"


class SubOrder(Base):
    """One seller's part of an order, fulfilled on its own."""

    __tablename__ = "sub_orders"
    __table_args__ = (
        UniqueConstraint("order_id", "seller_id"),
        CheckConstraint("total_fen = items_fen + shipping_fen", name="total_adds_up"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= total_fen", name="refund_within_total"),
        CheckConstraint(
            "released_fen >= 0 AND released_fen + refunded_fen <= total_fen", name="released_within_total"
        ),
        CheckConstraint("commission_fen >= 0 AND commission_fen <= items_fen", name="commission_range"),
        CheckConstraint(
            "discount_fen >= 0 AND subsidy_fen >= 0 AND subsidy_fen <= discount_fen", name="discount_range"
        ),
        Index("ix_sub_orders_seller_status", "seller_id", "status", "id"),
        Index("ix_sub_orders_status_updated", "status", "status_changed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # e.g. 2026112600001234-2: the order number and the seller's position in it.
    number: Mapped[str] = mapped_column(String(28), unique=True)
    seller_id: Mapped[int] = mapped_column(shared_row("users.id"))
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, 24), default=OrderStatus.PENDING_PAYMENT
    )
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    items_fen: Mapped[Money]
    shipping_fen: Mapped[Money]
    total_fen: Mapped[Money]
    # The platform's cut of items_fen, fixed at checkout so later rate changes do not rewrite it.
    # Its basis is what the buyer paid for the goods (items_fen): the platform takes no
    # commission on the subsidy it pays itself (services/campaigns/__init__.py, "Money").
    commission_fen: Mapped[Money] = mapped_column(default=0)
    # Campaign discounts on the lines (items_fen is after them) and the platform's share of them
    # (the subsidy it pays the seller on top of what the buyer paid).
    discount_fen: Mapped[Money] = mapped_column(default=0, server_default="0")
    subsidy_fen: Mapped[Money] = mapped_column(default=0, server_default="0")
    refunded_fen: Mapped[Money] = mapped_column(default=0)
    # Authorised but not captured (a pre-sale captured for less, e.g. weighed produce): the buyer
    # was charged total_fen − released_fen for this sub-order, and only that can be refunded.
    released_fen: Mapped[Money] = mapped_column(default=0)
    weight_g: Mapped[int] = mapped_column(default=0)
    storage_class: Mapped[StorageClass] = mapped_column(str_enum(StorageClass, 16))
    decline_reason: Mapped[str] = mapped_column(String(200), default="")
    # The seller packed it and will bring it to the village point: the point can expect it.
    ready_at: Mapped[datetime | None] = mapped_column(default=None)
    # Handed to the recipient (a delivered scan): the completion timer runs from here.
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when the seller's money for this sub-order goes into a payout batch.
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"), index=True, default=None)

    order: Mapped[Order] = relationship(back_populates="sub_orders", lazy="joined")
    seller = relationship("User", foreign_keys=[seller_id], lazy="joined")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="sub_order", lazy="selectin", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="sub_order", lazy="select", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    """A product in a sub-order, with its name, unit and price copied at checkout, and its price
    breakdown: the list price (`unit_price_fen` × quantity = `line_fen`), each campaign discount
    with who funds it (`discounts`, written by services/campaigns/pricing.py), and what the buyer
    paid (`paid_fen` = line_fen − discount_fen). A refund of some of the line's units returns
    exactly what was paid for them (services.orders.promotions.refund_line)."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("line_fen = unit_price_fen * quantity", name="line_adds_up"),
        # Checked on PostgreSQL (SQLite databases migrated in place keep the table without them:
        # the checkout writes them from one breakdown).
        CheckConstraint("paid_fen = line_fen - discount_fen", name="paid_adds_up"),
        CheckConstraint("discount_fen >= 0 AND discount_fen <= line_fen", name="discount_within_list"),
        CheckConstraint("subsidy_fen >= 0 AND subsidy_fen <= discount_fen", name="subsidy_within_discount"),
        CheckConstraint(
            "discounted_units >= 0 AND discounted_units <= quantity", name="discounted_units_range"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(shared_row("products.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    unit: Mapped[Unit] = mapped_column(str_enum(Unit, 16))
    unit_price_fen: Mapped[Money]  # the list price of one unit
    quantity: Mapped[int]
    line_fen: Mapped[Money]  # at list price: unit_price_fen × quantity
    net_weight_g: Mapped[int]
    presale: Mapped[bool] = mapped_column(default=False)
    discount_fen: Mapped[Money] = mapped_column(default=0, server_default="0")
    paid_fen: Mapped[Money] = mapped_column(default=0, server_default="0")  # what the buyer paid
    subsidy_fen: Mapped[Money] = mapped_column(default=0, server_default="0")  # the platform's share
    # Units at a campaign's unit price (fixed price or percentage), the rest at list price.
    discounted_units: Mapped[int] = mapped_column(default=0, server_default="0")
    # [{"rule", "campaign_id", "kind", "amount_fen", "platform_fen", "seller_fen"}, ...] in the
    # engine's order; refunds spread them over units as promotions.refund_line says.
    discounts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    sub_order: Mapped[SubOrder] = relationship(back_populates="lines")
    product = relationship("Product", lazy="joined")


class OrderEvent(Base):
    """One applied transition of a sub-order: from, to, who and when (the order's history)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[OrderStatus | None] = mapped_column(str_enum(OrderStatus, 24), default=None)
    to_status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus, 24))
    # None when the system moved it (a webhook, the expiry job).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    note: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    sub_order: Mapped[SubOrder] = relationship(back_populates="events")
    actor = relationship("User", lazy="joined")


class ReservationStatus(enum.StrEnum):
    HELD = "held"  # taken out of stock, waiting for the payment
    COMMITTED = "committed"  # paid: the units are sold
    RELEASED = "released"  # payment failed, cancelled or expired: the units went back


class StockReservation(Base):
    """Units of one product held for one order line until payment succeeds, fails or expires."""

    __tablename__ = "stock_reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_stock_reservations_status_expires", "status", "expires_at"),
        Index("ix_stock_reservations_product_status", "product_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True)
    product_id: Mapped[int] = mapped_column(shared_row("products.id"))
    quantity: Mapped[int]
    status: Mapped[ReservationStatus] = mapped_column(
        str_enum(ReservationStatus, 16), default=ReservationStatus.HELD
    )
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
