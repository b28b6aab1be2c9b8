"""Issue 13: a 广货网上行 campaign from start to end with a controlled clock, on SQLite and
PostgreSQL, through the real services and localstripe: a 高州 farmer's lychee signed up at a
fixed price with a flash-sale quota and a per-buyer limit, a platform-subsidised 满减 across the
campaign (spanning two sellers' sub-orders); prices at the second the window opens and closes;
what buyers are quoted is what they pay; the ledger pays the subsidy and balances; refunds give
the subsidy back to the budget; an expired order gives its quota and subsidy back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import (
    Campaign,
    CampaignHold,
    CampaignItem,
    CampaignState,
    Order,
    OrderLine,
    ReservationStatus,
    Role,
    SignupStatus,
    SubOrder,
)
from domain.catalog import CatalogFreshness
from services import ledger, ledger_checks
from services.campaigns import manage, pricing
from services.catalog import freshness
from services.errors import Forbidden, ValidationError
from services.orders import cart, checkout
from services.orders import manage as orders
from services.orders.checkout import PriceChanged
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.integration.conftest import GAOZHOU, campaign_input

SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
START = datetime(2026, 11, 27, 2, 0, 0, tzinfo=UTC)  # 2026-11-27 10:00:00 in Beijing
END = datetime(2026, 11, 30, 14, 0, 0, tzinfo=UTC)  # 2026-11-30 22:00:00 in Beijing


def shelf(session, product):  # type: ignore[no-untyped-def]
    price = pricing.shelf_prices(session, [product]).get(product.id)
    return price.price_fen if price else product.price_fen


def fresh(session, model, id_):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(model, id_)


class TestWindow:
    def test_the_price_changes_at_the_second_the_window_opens_and_closes(
        self, session, market, lychee, campaign, clock
    ):
        clock.set(START - timedelta(seconds=1))
        assert campaign.state(clock.now()) == CampaignState.SCHEDULED
        assert shelf(session, lychee) == 3980
        assert cart.quote(session, {lychee.id: 1}, SETTINGS).items_fen == 3980
        clock.set(START)
        assert fresh(session, Campaign, campaign.id).state(clock.now()) == CampaignState.RUNNING
        assert shelf(session, lychee) == 2980
        assert cart.quote(session, {lychee.id: 1}, SETTINGS).items_fen == 2980
        clock.set(END - timedelta(seconds=1))
        assert shelf(session, lychee) == 2980
        clock.set(END)
        assert shelf(session, lychee) == 3980
        assert cart.quote(session, {lychee.id: 1}, SETTINGS).items_fen == 3980


class TestCampaignOrder:
    def test_quoted_is_paid_the_tier_spans_sellers_and_the_ledger_balances(
        self, session, market, lychee, campaign, gateway, clock
    ):
        clock.set(START + timedelta(hours=1))
        tea = market.product("英德红茶")
        items = {lychee.id: 4, tea.id: 1}
        quote = cart.quote(session, items, SETTINGS, buyer=market.buyer)
        # 4 × 29.80 + 118 = 237.20 reaches 满200减50, split over both sellers' lines by what they cost.
        by_seller = {g.seller_id: g.price.items_fen for g in quote.groups}
        assert by_seller == {lychee.seller_id: 11920 - 2513, tea.seller_id: 11800 - 2487}
        assert quote.discount_fen == 4 * 1000 + 1000 + 5000
        assert quote.subsidy_fen == 5000  # the tier is the platform's; the fixed prices the sellers'

        order = market.place(items, SETTINGS, expected_total_fen=quote.total_fen)
        assert order.total_fen == quote.total_fen
        market.pay(order, gateway)
        order = fresh(session, Order, order.id)
        lines = {line.product_id: line for sub in order.sub_orders for line in sub.lines}
        lyc = lines[lychee.id]
        assert (lyc.unit_price_fen, lyc.line_fen, lyc.discounted_units) == (3980, 15920, 4)
        assert lyc.paid_fen == lyc.line_fen - lyc.discount_fen
        assert {d["kind"] for d in lyc.discounts} == {"fixed_price", "tier"}
        assert sum(line.subsidy_fen for line in lines.values()) == 5000
        assert sum(line.paid_fen for line in lines.values()) == order.items_fen

        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 5000
        assert fresh(session, CampaignItem, campaign_item(session, campaign, lychee).id).quota_used == 4
        # The ledger: the subsidy is the platform's expense and owed to the sellers on top of what
        # the buyer paid; commission on what the buyer paid.
        assert ledger.balance(session, ledger.CAMPAIGN_SUBSIDIES) == 5000
        for sub in order.sub_orders:
            owed = -ledger.balance(session, ledger.seller_payable_code(sub.seller_id))
            assert owed == sub.items_fen - sub.commission_fen + sub.subsidy_fen
            assert sub.commission_fen == sub.items_fen * 500 // 10_000
        assert ledger.trial_balance(session) == 0
        assert ledger_checks.find_breaches(session) == []

    def test_a_refund_of_the_whole_sub_order_gives_the_subsidy_back_to_the_budget(
        self, session, market, lychee, campaign, gateway, admin, clock
    ):
        clock.set(START + timedelta(hours=1))
        tea = market.product("英德红茶")
        order = market.place({lychee.id: 4, tea.id: 1}, SETTINGS)
        market.pay(order, gateway)
        order = fresh(session, Order, order.id)
        sub = next(s for s in order.sub_orders if s.seller_id == lychee.seller_id)
        orders.staff_refund(
            session, gateway, admin, sub.number, None, "荔枝坏了", checkout.new_idempotency_key()
        )
        sub = fresh(session, SubOrder, sub.id)
        assert sub.refunded_fen == sub.total_fen
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 5000 - sub.subsidy_fen
        assert ledger.balance(session, ledger.CAMPAIGN_SUBSIDIES) == 5000 - sub.subsidy_fen
        assert ledger.balance(session, ledger.seller_payable_code(sub.seller_id)) == 0
        assert ledger.trial_balance(session) == 0
        assert ledger_checks.find_breaches(session) == []

    def test_a_refund_of_money_only_keeps_the_subsidy_spent(
        self, session, market, lychee, campaign, gateway, admin, clock
    ):
        clock.set(START + timedelta(hours=1))
        tea = market.product("英德红茶")
        order = market.place({lychee.id: 4, tea.id: 1}, SETTINGS)
        market.pay(order, gateway)
        sub = next(s for s in fresh(session, Order, order.id).sub_orders if s.seller_id == lychee.seller_id)
        orders.staff_refund(session, gateway, admin, sub.number, 500, "补偿", checkout.new_idempotency_key())
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 5000
        assert ledger_checks.find_breaches(session) == []


def campaign_item(session, campaign, product) -> CampaignItem:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(CampaignItem).where(
            CampaignItem.campaign_id == campaign.id, CampaignItem.product_id == product.id
        )
    )


class TestLimitsQuotaBudget:
    def test_units_beyond_the_buyer_limit_pay_the_list_price(self, session, market, lychee, campaign, clock):
        clock.set(START + timedelta(minutes=5))
        market.place({lychee.id: 4}, SETTINGS)
        quote = cart.quote(session, {lychee.id: 3}, SETTINGS, buyer=market.buyer)
        assert quote.lines[0].discounted_units == 1  # 5 a buyer: 4 held already
        assert quote.lines[0].paid_fen == 2980 + 2 * 3980 - 2000  # and 满100减20

    def test_a_price_that_moved_since_the_page_is_refused_with_nothing_written(
        self, session, market, lychee, campaign, clock
    ):
        clock.set(START + timedelta(minutes=5))
        shown = cart.quote(session, {lychee.id: 3}, SETTINGS, buyer=market.buyer).total_fen
        market.place({lychee.id: 3}, SETTINGS)  # another tab bought 3 at the campaign price
        before = session.scalar(select(CampaignHold.id).order_by(CampaignHold.id.desc()).limit(1))
        with pytest.raises(PriceChanged):
            market.place({lychee.id: 3}, SETTINGS, expected_total_fen=shown)
        session.rollback()
        assert session.scalar(select(CampaignHold.id).order_by(CampaignHold.id.desc()).limit(1)) == before

    def test_the_quota_sells_out_then_the_product_sells_at_list(
        self, session, market, lychee, campaign, make_user, clock
    ):
        clock.set(START + timedelta(minutes=1))
        item = campaign_item(session, campaign, lychee)
        item.quota = 7
        session.commit()
        buyers = [make_user(Role.BUYER, name=f"抢购{i}") for i in range(3)]
        market.place({lychee.id: 5}, SETTINGS, buyer=buyers[0])
        second = cart.quote(session, {lychee.id: 5}, SETTINGS, buyer=buyers[1])
        assert second.lines[0].discounted_units == 2  # what the quota has left
        assert second.flash_items == [item.id]  # the checkout names the flash-sale price it buys at
        market.place({lychee.id: 5}, SETTINGS, buyer=buyers[1])
        assert fresh(session, CampaignItem, item.id).quota_used == 7
        assert pricing.shelf_prices(session, [lychee])[lychee.id].sold_out
        assert shelf(session, lychee) == 3980
        at_list = cart.quote(session, {lychee.id: 1}, SETTINGS, buyer=buyers[2])
        assert at_list.items_fen == 3980 and at_list.flash_items == []

    def test_an_expired_order_gives_quota_and_subsidy_back(
        self, session, market, lychee, campaign, gateway, clock
    ):
        clock.set(START + timedelta(minutes=1))
        tea = market.product("英德红茶")
        order = market.place({lychee.id: 4, tea.id: 1}, SETTINGS)
        payments.ensure_intent(session, gateway, order)
        item = campaign_item(session, campaign, lychee)
        assert (fresh(session, Campaign, campaign.id).subsidy_used_fen, item.quota_used) == (5000, 4)
        report = payments.reconcile(
            session, gateway, now=clock.now() + SETTINGS.payment_window + timedelta(minutes=1)
        )
        assert report.expired == 1
        session.expire_all()
        holds = session.scalars(select(CampaignHold).where(CampaignHold.order_id == order.id)).all()
        assert holds and all(h.status == ReservationStatus.RELEASED for h in holds)
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 0
        assert fresh(session, CampaignItem, item.id).quota_used == 0

    def test_a_budget_too_small_for_the_cart_prices_it_without_the_campaign(
        self, session, market, lychee, campaign, admin, clock
    ):
        clock.set(START + timedelta(minutes=1))
        tea = market.product("英德红茶")
        market.place({lychee.id: 4, tea.id: 1}, SETTINGS)  # 50 of the 120 budget
        other = market.shop.merchant
        for _ in range(1):
            market.place({lychee.id: 4, tea.id: 1}, SETTINGS, buyer=other)  # 100 used
        quote = cart.quote(session, {lychee.id: 4, tea.id: 1}, SETTINGS, buyer=market.buyer)
        assert quote.subsidy_fen == 0  # 50 needed, 20 left: no tier
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 10000

    def test_the_order_that_spends_the_budget_moves_the_catalog_version(
        self, session, market, lychee, campaign, clock
    ):
        # The shelf's prices drop the subsidised rules once the budget is spent: the lists' cached
        # prices (keyed by the catalog's version) must not outlive it.
        clock.set(START + timedelta(minutes=1))
        tea = market.product("英德红茶")
        market.place({lychee.id: 4, tea.id: 1}, SETTINGS)  # 50 of the 120 budget
        assert "budget" not in (fresh(session, CatalogFreshness, 1).reason or "")
        fresh(session, Campaign, campaign.id).budget_fen = 10000
        session.commit()
        before = freshness.version(session)
        market.place({lychee.id: 4, tea.id: 1}, SETTINGS, buyer=market.shop.merchant)  # 100 of 100
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == 10000
        assert freshness.version(session) == before + 1
        assert "campaign budget spent" in fresh(session, CatalogFreshness, 1).reason


class TestBadInput:
    def test_a_campaign_price_above_list_or_below_zero_is_refused(
        self, session, market, lychee, lychee_farmer, admin, clock
    ):
        made = manage.create_campaign(session, admin, campaign_input(name="另一场"))
        manage.publish(session, admin, made.id)
        for price in ("39.81", "-1", "39.80", "abc"):
            with pytest.raises(ValidationError) as caught:
                manage.sign_up(
                    session, lychee_farmer, made.id, lychee.id, manage.SignupInput(campaign_price_yuan=price)
                )
            assert "campaign_price_fen" in caught.value.field_errors
        assert session.scalars(select(CampaignItem)).all() == []

    def test_tiers_out_of_order_and_windows_backwards_are_refused(self, session, admin, clock):
        with pytest.raises(ValidationError) as caught:
            manage.create_campaign(
                session, admin, campaign_input(tiers="满200减50, 满100减20", ends_at="2026-11-27 09:00:00")
            )
        assert {"tiers", "ends_at"} <= set(caught.value.field_errors)
        assert session.scalars(select(Campaign)).all() == []

    def test_a_sign_up_outside_the_scope_is_refused(self, session, market, admin, clock):
        made = manage.create_campaign(session, admin, campaign_input(county_codes=[GAOZHOU]))
        manage.publish(session, admin, made.id)
        tea = market.product("英德红茶")
        with pytest.raises(ValidationError) as caught:
            manage.sign_up(
                session,
                market.shop.yingde_farmer,
                made.id,
                tea.id,
                manage.SignupInput(campaign_price_yuan="100"),
            )
        assert "product_id" in caught.value.field_errors

    def test_a_product_in_two_overlapping_campaigns_is_refused(
        self, session, lychee, lychee_farmer, admin, campaign, clock
    ):
        other = manage.create_campaign(
            session, admin, campaign_input(name="双十二", starts_at="2026-11-29 00:00:00")
        )
        manage.publish(session, admin, other.id)
        with pytest.raises(ValidationError) as caught:
            manage.sign_up(
                session, lychee_farmer, other.id, lychee.id, manage.SignupInput(campaign_price_yuan="25")
            )
        assert "荔枝季" in str(caught.value.field_errors["product_id"][0])
        assert campaign_item(session, other, lychee) is None

    def test_a_running_campaign_takes_only_the_allowed_edits_and_audits_them(
        self, session, admin, campaign, clock
    ):
        clock.set(START + timedelta(hours=1))
        with pytest.raises(ValidationError) as caught:
            manage.update_campaign(session, admin, campaign.id, campaign_input(tiers="满100减30"))
        assert "tiers" in caught.value.field_errors
        assert fresh(session, Campaign, campaign.id).tiers == [[10000, 2000], [20000, 5000]]
        changed = manage.update_campaign(
            session, admin, campaign.id, campaign_input(budget_yuan="500", ends_at="2026-12-01 22:00:00")
        )
        assert changed.budget_fen == 50000
        from domain import AuditEvent

        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_type == "campaign", AuditEvent.action == "campaign.update"
            )
        ).all()
        assert events and set(events[-1].changes) == {"budget_fen", "ends_at"}

    def test_only_admins_run_campaigns_and_admins_do_not_sign_up(
        self, session, market, lychee, admin, campaign, clock
    ):
        with pytest.raises(Forbidden):
            manage.create_campaign(session, market.buyer, campaign_input())
        with pytest.raises(Forbidden):
            manage.sign_up(
                session, admin, campaign.id, lychee.id, manage.SignupInput(campaign_price_yuan="20")
            )
        with pytest.raises(Forbidden):
            manage.sign_up(
                session,
                market.shop.yingde_farmer,
                campaign.id,
                lychee.id,
                manage.SignupInput(campaign_price_yuan="20"),
            )

    def test_a_rejection_needs_a_reason_the_seller_sees(self, session, market, admin, clock):
        made = manage.create_campaign(session, admin, campaign_input(name="绿茶节"))
        manage.publish(session, admin, made.id)
        green = market.product("英德绿茶")
        item = manage.sign_up(
            session,
            market.shop.yingde_farmer,
            made.id,
            green.id,
            manage.SignupInput(campaign_price_yuan="50"),
        )
        with pytest.raises(ValidationError):
            manage.decide(session, admin, item.id, False, "")
        manage.decide(session, admin, item.id, False, "价格降幅不足")
        mine = manage.seller_items(session, market.shop.yingde_farmer)
        assert [(i.status, i.reason) for i in mine] == [(SignupStatus.REJECTED, "价格降幅不足")]


def test_order_lines_keep_list_and_paid(session, market, lychee, campaign, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(START + timedelta(minutes=1))
    order = market.place({lychee.id: 2}, SETTINGS)
    line = session.scalar(select(OrderLine).join(SubOrder).where(SubOrder.order_id == order.id))
    assert (line.line_fen, line.discount_fen, line.paid_fen, line.subsidy_fen) == (7960, 2000, 5960, 0)
