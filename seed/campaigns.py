"""The demo's 广货网上行 campaign (seed/data/campaigns.json), loaded after the order history so the
history's orders keep their list prices: published by the demo admin, running from the day the
seed is loaded (00:00 in Beijing) for `days` days, with the sellers' sign-ups approved.

A second run adds nothing: a campaign is matched on its name.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import Campaign, Product, Role, User, clock
from seed.loader import DATA_DIR, SEED_KEY_PREFIX, read_json
from services.campaigns import manage


def _local(day_offset: int, hms: str) -> str:
    return f"{clock.today() + timedelta(days=day_offset):%Y-%m-%d} {hms}"


def load_campaigns(session: Session, data_dir: Path = DATA_DIR) -> dict[str, int]:
    report = {"campaigns": 0, "campaign_items": 0}
    admin = next(u for u in session.scalars(select(User).order_by(User.id)) if u.has_role(Role.ADMIN))
    for entry in read_json("campaigns.json", data_dir):
        if session.scalar(select(Campaign.id).where(Campaign.name == entry["name"])) is not None:
            continue
        campaign = manage.create_campaign(
            session,
            admin,
            manage.CampaignInput(
                name=entry["name"],
                description=entry["description"],
                starts_at=_local(entry["starts_days"], "00:00:00"),
                ends_at=_local(entry["starts_days"] + entry["days"], "22:00:00"),
                platform_percent=entry["platform_percent"],
                price_platform_percent=entry["price_platform_percent"],
                budget_yuan=entry["budget_yuan"],
                tiers=entry["tiers"],
                tier_basis=entry["tier_basis"],
            ),
        )
        manage.publish(session, admin, campaign.id)
        report["campaigns"] += 1
        for item in entry["items"]:
            product = session.scalar(
                select(Product).where(Product.idempotency_key == SEED_KEY_PREFIX + item["product"])
            )
            if product is None:
                raise LookupError(f"campaign {entry['name']}: no product {item['product']}")
            seller = session.get(User, product.seller_id)
            signed = manage.sign_up(
                session,
                seller,
                campaign.id,
                product.id,
                manage.SignupInput(
                    campaign_price_yuan=item["price_yuan"],
                    quota=str(item.get("quota", "")),
                    per_buyer_limit=str(item.get("per_buyer_limit", "")),
                ),
            )
            manage.decide(session, admin, signed.id, True)
            report["campaign_items"] += 1
    return report
