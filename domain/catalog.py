"""The catalog: sellers, categories, products (listings), certifications, photos, and the consent
that lets a village agent list on a farmer's behalf (托管代运营)."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, str_enum


class SellerKind(enum.StrEnum):
    FARMER = "farmer"
    COOPERATIVE = "cooperative"
    MERCHANT = "merchant"


class SellerProfile(Base):
    """A seller's public face: shop name, home village (for farmers) and the point they use."""

    __tablename__ = "seller_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[SellerKind] = mapped_column(str_enum(SellerKind))
    shop_name: Mapped[str] = mapped_column(String(60))
    # A farmer's village (12-digit code); a merchant's county or city.
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    county_code: Mapped[str | None] = mapped_column(ForeignKey("divisions.code"), index=True, default=None)
    # The village service point where the farmer hands goods in.
    home_point_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    intro: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    user = relationship("User", lazy="joined")
    division = relationship("Division", foreign_keys=[division_code], lazy="joined")
    home_point = relationship("Node", lazy="joined")


class CategoryFlow(enum.StrEnum):
    FARM = "farm"  # first kilometer: farm products to the city
    GOODS = "goods"  # last kilometer: farm inputs, daily goods, appliances to the village


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True, default=None)
    name: Mapped[str] = mapped_column(String(40))  # Simplified Chinese
    name_en: Mapped[str] = mapped_column(String(60))
    flow: Mapped[CategoryFlow] = mapped_column(str_enum(CategoryFlow, 16))
    position: Mapped[int] = mapped_column(default=0)

    parent: Mapped[Category | None] = relationship(remote_side=[id])

    def label(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name


class Unit(enum.StrEnum):
    JIN = "jin"  # 斤, 500 g
    KG = "kg"  # 公斤
    BOX = "box"  # 箱
    BAG = "bag"  # 袋
    PIECE = "piece"  # 个


class StorageClass(enum.StrEnum):
    AMBIENT = "ambient"
    CHILLED = "chilled"  # 0–4 °C
    FROZEN = "frozen"  # ≤ −18 °C


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    SOLD_OUT = "sold_out"


class CertificationKind(enum.StrEnum):
    GREEN_FOOD = "green_food"  # 绿色食品
    ORGANIC = "organic"  # 有机
    GEOGRAPHICAL_INDICATION = "geographical_indication"  # 地理标志


MAX_PRICE_FEN = 10_000_000  # ¥100,000 for one unit: above that it is a typo
MAX_STOCK = 1_000_000


class Product(Base):
    """A listing: one product a seller offers, in one unit of sale."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(f"price_fen > 0 AND price_fen <= {MAX_PRICE_FEN}", name="price_range"),
        CheckConstraint(f"stock >= 0 AND stock <= {MAX_STOCK}", name="stock_range"),
        CheckConstraint("net_weight_g > 0", name="net_weight_positive"),
        CheckConstraint("sales_count >= 0", name="sales_nonnegative"),
        CheckConstraint("reserved >= 0", name="reserved_nonnegative"),
        UniqueConstraint("seller_id", "idempotency_key"),
        # Browse queries: active products by newest, price and sales, with id as the keyset tie-break.
        Index("ix_products_status_published", "status", "published_at", "id"),
        Index("ix_products_status_price", "status", "price_fen", "id"),
        Index("ix_products_status_sales", "status", "sales_count", "id"),
        Index("ix_products_category_status", "category_id", "status", "id"),
        Index("ix_products_county_status", "county_code", "status"),
        # A category's county facet (services/browse.py filter_options): counted from the index alone.
        Index("ix_products_category_status_county", "category_id", "status", "county_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    # Where it comes from: a village for farm produce, a county or city for goods.
    origin_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"))
    unit: Mapped[Unit] = mapped_column(str_enum(Unit, 16))
    net_weight_g: Mapped[int]
    price_fen: Mapped[Money]
    # Units a buyer can still order. A checkout takes its units out of `stock` at once and holds
    # them in `reserved` until the payment succeeds (they are sold) or fails or expires (they
    # come back). services.orders.reservations keeps the two in step.
    stock: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0, server_default="0")
    storage_class: Mapped[StorageClass] = mapped_column(
        str_enum(StorageClass, 16), default=StorageClass.AMBIENT
    )
    harvest_start: Mapped[date | None] = mapped_column(Date, default=None)
    harvest_end: Mapped[date | None] = mapped_column(Date, default=None)
    # Pre-sale (预售): sold before harvest against an announced quantity, shipped from a date.
    presale: Mapped[bool] = mapped_column(Boolean, default=False)
    ships_from: Mapped[date | None] = mapped_column(Date, default=None)
    status: Mapped[ProductStatus] = mapped_column(str_enum(ProductStatus, 16), default=ProductStatus.DRAFT)
    sales_count: Mapped[int] = mapped_column(default=0)
    # Who typed it in: the seller, or an agent acting under a consent record.
    listed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("listing_consents.id"), default=None)
    # The client's key for the create request: a repeated submit returns the same product.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    published_at: Mapped[datetime | None] = mapped_column(default=None)

    seller = relationship("User", foreign_keys=[seller_id], lazy="joined")
    category: Mapped[Category] = relationship(lazy="joined")
    origin = relationship("Division", foreign_keys=[origin_code], lazy="joined")
    certifications: Mapped[list[Certification]] = relationship(
        back_populates="product", cascade="all, delete-orphan", lazy="selectin", order_by="Certification.id"
    )
    photos: Mapped[list[ProductPhoto]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ProductPhoto.position",
    )


class Certification(Base):
    __tablename__ = "certifications"
    __table_args__ = (UniqueConstraint("product_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    kind: Mapped[CertificationKind] = mapped_column(str_enum(CertificationKind))
    number: Mapped[str] = mapped_column(String(64))

    product: Mapped[Product] = relationship(back_populates="certifications")


class ProductPhoto(Base):
    """A photo, stored re-encoded in several sizes under `key` (see services.media)."""

    __tablename__ = "product_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    product: Mapped[Product] = relationship(back_populates="photos")


class ListingConsent(Base):
    """A farmer's consent for a village agent to list and run their products (托管代运营).

    Recorded by the agent after the farmer reads out an SMS code sent to the farmer's phone.
    """

    __tablename__ = "listing_consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    farmer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    granted_at: Mapped[datetime] = mapped_column(default=clock.now)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    farmer = relationship("User", foreign_keys=[farmer_id], lazy="joined")
    agent = relationship("User", foreign_keys=[agent_id], lazy="joined")
    point = relationship("Node", lazy="joined")


class CatalogFreshness(Base):
    """One row: the version of what the shop's lists show (services/catalog/freshness.py).

    Every change a list page shows (a listing's price, status, stock state…) adds one to
    `version` in the change's own transaction, so every process's page cache, keyed by it, sees
    the change on its next request. `reason` and `changed_at` tell what moved it last."""

    __tablename__ = "catalog_freshness"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)
    reason: Mapped[str] = mapped_column(String(40), default="")
    changed_at: Mapped[datetime | None] = mapped_column(default=None)
