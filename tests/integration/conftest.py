"""Fixtures the campaign tests share (test_campaigns.py, test_campaign_reports.py): a 高州
farmer's lychee and the 广货网上行 lychee campaign it is signed up to."""

from __future__ import annotations

import pytest

from domain import CertificationKind, Role
from services import catalog
from services.campaigns import manage

GAOZHOU = "440981"  # 茂名市高州市, lychee country


@pytest.fixture()
def lychee_farmer(session, make_user, first_village):  # type: ignore[no-untyped-def]
    farmer = make_user(Role.FARMER, name="高州荔枝农")
    catalog.save_seller_profile(
        session, farmer, shop_name="高州荔枝园", division_code=first_village(GAOZHOU).code
    )
    return farmer


@pytest.fixture()
def lychee(market, lychee_farmer):  # type: ignore[no-untyped-def]
    return market.shop.add(
        "高州白糖罂荔枝",
        "lychee-longan",
        3980,
        seller=lychee_farmer,
        stock=300,
        certifications=((CertificationKind.GEOGRAPHICAL_INDICATION, "AGI01234"),),
    )


def campaign_input(**changes):  # type: ignore[no-untyped-def]
    values = dict(
        name="广货网上行·荔枝季",
        description="高州荔枝、英德红茶，满200减50，平台补贴",
        starts_at="2026-11-27 10:00:00",
        ends_at="2026-11-30 22:00:00",
        platform_percent="100",  # the 满减 is the platform's
        price_platform_percent="0",  # the sign-ups' prices are the sellers'
        budget_yuan="120",
        tiers="满100减20, 满200减50",
        tier_basis="campaign",
    )
    values.update(changes)
    return manage.CampaignInput(**values)


@pytest.fixture()
def campaign(session, admin, market, lychee, lychee_farmer, clock):  # type: ignore[no-untyped-def]
    """Published and signed up the day before: the lychee at ¥29.80 (quota 100, 5 a buyer), the
    black tea at ¥118, both approved."""
    made = manage.create_campaign(session, admin, campaign_input())
    manage.publish(session, admin, made.id)
    tea = market.product("英德红茶")
    items = [
        manage.sign_up(
            session,
            lychee_farmer,
            made.id,
            lychee.id,
            manage.SignupInput(campaign_price_yuan="29.80", quota="100", per_buyer_limit="5"),
        ),
        manage.sign_up(
            session, market.shop.yingde_farmer, made.id, tea.id, manage.SignupInput(campaign_price_yuan="118")
        ),
    ]
    for item in items:
        manage.decide(session, admin, item.id, True)
    return made
