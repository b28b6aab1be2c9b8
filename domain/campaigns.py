"""广货网上行 campaigns: a window of time in which signed-up products sell at campaign prices, with
满减 tiers and a first-order discount on top, funded by the platform (a subsidy budget), by the
sellers, or shared; the sellers' sign-ups (price, flash-sale quota, per-buyer limit) and what each
order line holds of a campaign's quota and budget.

Whether a campaign is running is never stored: `Campaign.state(now)` computes it from the clock,
so a price changes at the second the window opens or closes, whatever the jobs are doing.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, Money, shared_row, str_enum
from .orders import ReservationStatus


class CampaignStatus(enum.StrEnum):
    """What staff decided; the state buyers see also depends on the clock (CampaignState)."""

    DRAFT = "draft"  # being prepared: sellers cannot sign up, buyers see nothing
    PUBLISHED = "published"  # announced: sellers sign up; it runs inside its window
    CANCELLED = "cancelled"


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # published, window not open yet
    RUNNING = "running"
    ENDED = "ended"
    CANCELLED = "cancelled"


class TierBasisKind(enum.StrEnum):
    SELLER = "seller"
    CAMPAIGN = "campaign"


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window_order"),
        CheckConstraint("platform_bps >= 0 AND platform_bps <= 10000", name="platform_bps_range"),
        CheckConstraint(
            "price_platform_bps >= 0 AND price_platform_bps <= 10000", name="price_platform_bps_range"
        ),
        # The budget is never overspent: checkouts take subsidy with a conditional UPDATE, and
        # this constraint is the last word if anything else ever tried.
        CheckConstraint("subsidy_used_fen >= 0 AND subsidy_used_fen <= budget_fen", name="within_budget"),
        CheckConstraint(
            "percent_off_bps IS NULL OR (percent_off_bps > 0 AND percent_off_bps < 10000)",
            name="percent_off_range",
        ),
        CheckConstraint(
            "first_order_off_fen IS NULL OR first_order_off_fen > 0", name="first_order_positive"
        ),
        Index("ix_campaigns_status_window", "status", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    # The banner picture, a key in the media store (services/media.py), or None.
    banner_key: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus, 16), default=CampaignStatus.DRAFT)
    # The window, exact to the second (entered and shown in Asia/Shanghai, stored in UTC).
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # Scope: which products may sign up. Empty lists mean any; both flags narrow further.
    county_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    category_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    certified_only: Mapped[bool] = mapped_column(default=False)
    gi_only: Mapped[bool] = mapped_column(default=False)
    # Funding, the platform's share in basis points (10000: platform-subsidised, 0: seller-funded,
    # between: shared), the seller funds the rest: of the campaign's own discounts (满减 tiers and
    # the first-order discount), and of the sign-ups' campaign prices (a seller lowering their own
    # price funds it unless the campaign subsidises it).
    platform_bps: Mapped[int] = mapped_column(default=0)
    price_platform_bps: Mapped[int] = mapped_column(default=0)
    budget_fen: Mapped[Money] = mapped_column(default=0)
    # Subsidy held by unpaid orders plus spent by paid ones, less what refunds gave back.
    subsidy_used_fen: Mapped[Money] = mapped_column(default=0)
    # Rules on the approved products: a percentage off (items with their own price use that),
    # 满减 tiers [[threshold_fen, off_fen], ...] per seller or across the campaign, and a
    # first-order discount.
    percent_off_bps: Mapped[int | None] = mapped_column(default=None)
    tiers: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    tier_basis: Mapped[TierBasisKind] = mapped_column(
        str_enum(TierBasisKind, 16), default=TierBasisKind.SELLER
    )
    first_order_off_fen: Mapped[int | None] = mapped_column(default=None)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    # The follow-up after the end (services/campaigns/jobs.py): quotas closed, report frozen.
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    items: Mapped[list[CampaignItem]] = relationship(
        back_populates="campaign", lazy="select", order_by="CampaignItem.id"
    )

    def state(self, now: datetime) -> CampaignState:
        if self.status == CampaignStatus.CANCELLED:
            return CampaignState.CANCELLED
        if self.status == CampaignStatus.DRAFT:
            return CampaignState.DRAFT
        if now < self.starts_at:
            return CampaignState.SCHEDULED
        if now < self.ends_at:
            return CampaignState.RUNNING
        return CampaignState.ENDED


class SignupStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class CampaignItem(Base):
    """A seller's product signed up to a campaign: its campaign price (or the campaign's
    percentage), its flash-sale quota and per-buyer limit, and the admin's decision."""

    __tablename__ = "campaign_items"
    __table_args__ = (
        UniqueConstraint("campaign_id", "product_id"),
        CheckConstraint("campaign_price_fen IS NULL OR campaign_price_fen >= 0", name="price_nonnegative"),
        CheckConstraint("quota IS NULL OR quota > 0", name="quota_positive"),
        # Flash-sale units held or sold at the campaign price: never beyond the quota.
        CheckConstraint("quota_used >= 0 AND (quota IS NULL OR quota_used <= quota)", name="within_quota"),
        CheckConstraint("per_buyer_limit IS NULL OR per_buyer_limit > 0", name="limit_positive"),
        Index("ix_campaign_items_product_status", "product_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    campaign_price_fen: Mapped[int | None] = mapped_column(default=None)
    quota: Mapped[int | None] = mapped_column(default=None)
    quota_used: Mapped[int] = mapped_column(default=0)
    per_buyer_limit: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[SignupStatus] = mapped_column(str_enum(SignupStatus, 16), default=SignupStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(200), default="")
    signed_up_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)

    campaign: Mapped[Campaign] = relationship(back_populates="items", lazy="joined")
    product = relationship("Product", lazy="joined")

    @property
    def sold_out(self) -> bool:
        return self.quota is not None and self.quota_used >= self.quota


class CampaignHold(Base):
    """What one order line holds of one campaign: flash-sale units of its item's quota (and the
    units counted against the buyer's limit) and the platform subsidy taken from the budget.

    It follows the line's stock reservation: held when the order is placed, committed when it is
    paid, released (units and subsidy back) when it expires or is cancelled unpaid, and re-taken
    if a late payment arrives. Refunds give subsidy back (`returned_fen`)."""

    __tablename__ = "campaign_holds"
    __table_args__ = (
        UniqueConstraint("line_id", "campaign_id"),
        CheckConstraint("units >= 0 AND subsidy_fen >= 0", name="amounts_nonnegative"),
        CheckConstraint("returned_fen >= 0 AND returned_fen <= subsidy_fen", name="returned_within"),
        Index("ix_campaign_holds_item_buyer", "item_id", "buyer_id", "status"),
        Index("ix_campaign_holds_campaign_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id", ondelete="CASCADE"))
    line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(shared_row("campaigns.id"))
    item_id: Mapped[int | None] = mapped_column(shared_row("campaign_items.id"), default=None)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    units: Mapped[int] = mapped_column(default=0)
    subsidy_fen: Mapped[Money] = mapped_column(default=0)
    returned_fen: Mapped[Money] = mapped_column(default=0)
    status: Mapped[ReservationStatus] = mapped_column(
        str_enum(ReservationStatus, 16), default=ReservationStatus.HELD
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
