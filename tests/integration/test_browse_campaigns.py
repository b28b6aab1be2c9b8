"""Narrowing the shop's lists to one campaign (services.browse, campaign_id) on SQLite and
PostgreSQL: only the products with an approved sign-up, with every other filter, sort, the
keyset pages and the search; a campaign buyers may not see (draft, cancelled, unknown) is a field
error; the campaigns offered in the filter are those running at the clock's now."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import Product
from services import browse
from services.campaigns import manage
from services.errors import ValidationError
from tests.integration.conftest import campaign_input
from tests.integration.test_campaigns import END, START


def names(page: browse.ProductPage) -> set[str]:
    return {c.name for c in page.items}


@pytest.fixture()
def signups(session, admin, market, campaign):  # type: ignore[no-untyped-def]
    """Beside the campaign's two approved products: the 梅县 pomelo pending, the green tea
    rejected, the honey pomelo withdrawn."""
    shop = market.shop
    pending = manage.sign_up(
        session, shop.meixian_farmer, campaign.id, shop.products["梅县金柚"].id, manage.SignupInput("40")
    )
    rejected = manage.sign_up(
        session, shop.yingde_farmer, campaign.id, shop.products["英德绿茶"].id, manage.SignupInput("60")
    )
    manage.decide(session, admin, rejected.id, False, "价格不够低")
    withdrawn = manage.sign_up(
        session, shop.meixian_farmer, campaign.id, shop.products["梅县蜜柚"].id, manage.SignupInput("4")
    )
    manage.withdraw(session, shop.meixian_farmer, withdrawn.id)
    return pending, rejected, withdrawn


def field_error(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [str(m) for m in exc.value.field_errors["campaign_id"]]


class TestTheFilter:
    def test_only_the_approved_sign_ups_of_that_campaign(self, session, campaign, signups, clock):
        page = browse.find_products(session, campaign_id=campaign.id, limit=50)
        assert names(page) == {"高州白糖罂荔枝", "英德红茶"}
        clock.set(START + timedelta(hours=1))  # the same while it runs, and once it has ended
        assert names(browse.find_products(session, campaign_id=campaign.id, limit=50)) == {
            "高州白糖罂荔枝",
            "英德红茶",
        }
        clock.set(END + timedelta(days=1))
        assert names(browse.find_products(session, campaign_id=campaign.id, limit=50)) == {
            "高州白糖罂荔枝",
            "英德红茶",
        }

    def test_nothing_else_changes_without_it(self, session, market, campaign, signups):
        everything = browse.find_products(session, limit=50)
        assert {c.id for c in everything.items} == market.shop.visible_ids()
        assert browse.find_products(session, campaign_id=None, limit=50) == everything
        assert browse.find_products(session, campaign_id="", limit=50) == everything

    def test_another_campaigns_products_are_not_in_it(self, session, admin, market, campaign):
        later = manage.create_campaign(
            session,
            admin,
            campaign_input(name="年货节", starts_at="2026-12-20 10:00:00", ends_at="2026-12-31 22:00:00"),
        )
        manage.publish(session, admin, later.id)
        pomelo = market.product("梅县金柚")
        item = manage.sign_up(
            session, market.shop.meixian_farmer, later.id, pomelo.id, manage.SignupInput("40")
        )
        manage.decide(session, admin, item.id, True)
        assert names(browse.find_products(session, campaign_id=later.id)) == {"梅县金柚"}
        assert "梅县金柚" not in names(browse.find_products(session, campaign_id=campaign.id))

    def test_with_the_other_filters_and_a_search(self, session, campaign, signups):
        assert names(browse.find_products(session, campaign_id=campaign.id, category_slug="tea")) == {
            "英德红茶"
        }
        assert names(browse.find_products(session, campaign_id=campaign.id, certification="organic")) == {
            "英德红茶"
        }
        assert names(browse.find_products(session, campaign_id=campaign.id, price_max_fen=5000)) == {
            "高州白糖罂荔枝"
        }
        assert names(browse.find_products(session, campaign_id=campaign.id, q="英德")) == {"英德红茶"}
        assert names(browse.find_products(session, campaign_id=campaign.id, q="柚")) == set()
        # the search API's list too
        hits = browse.search_hits(session, "英德", campaign_id=campaign.id).hits
        assert {h.product.name for h in hits} == {"英德红茶"}
        assert {h.product.name for h in browse.search_hits(session, "英德").hits} >= {"英德红茶", "英德绿茶"}

    @pytest.mark.parametrize("sort", ["new", "price_asc", "price_desc", "sales"])
    def test_pages_cover_the_campaign_once(self, session, campaign, signups, sort):
        seen: list[int] = []
        after = None
        for _ in range(5):
            page = browse.find_products(session, campaign_id=campaign.id, sort=sort, after=after, limit=1)
            seen += [c.id for c in page.items]
            after = page.next_cursor
            if after is None:
                break
        assert len(seen) == len(set(seen)) == 2
        assert {session.get(Product, i).name for i in seen} == {"高州白糖罂荔枝", "英德红茶"}


class TestCampaignsBuyersCannotSee:
    def test_a_cancelled_a_draft_or_an_unknown_campaign_is_a_field_error(self, session, admin, campaign):
        draft = manage.create_campaign(session, admin, campaign_input(name="草稿活动"))
        manage.cancel(session, admin, campaign.id, "天气原因")
        for bad in (campaign.id, draft.id, 999_999, "abc", 0, -1, True, 2**40):
            with pytest.raises(ValidationError) as exc:
                browse.find_products(session, campaign_id=bad)
            assert field_error(exc), bad
            with pytest.raises(ValidationError) as exc:
                browse.search_hits(session, "荔枝", campaign_id=bad)
            assert field_error(exc), bad

    def test_all_the_errors_at_once(self, session):
        with pytest.raises(ValidationError) as exc:
            browse.find_products(session, campaign_id=999_999, county_code="44")
        assert set(exc.value.field_errors) == {"campaign_id", "county"}


class TestTheChoices:
    def test_the_campaigns_running_now(self, session, admin, campaign, clock):
        clock.set(START - timedelta(seconds=1))
        assert browse.campaign_options(session) == []
        clock.set(START)
        assert browse.campaign_options(session) == [browse.CampaignOption(campaign.id, campaign.name, True)]
        clock.set(END)
        assert browse.campaign_options(session) == []

    def test_the_one_chosen_is_offered_while_not_running_unless_cancelled(
        self, session, admin, campaign, clock
    ):
        clock.set(START - timedelta(hours=1))
        assert browse.campaign_options(session, selected=str(campaign.id)) == [
            browse.CampaignOption(campaign.id, campaign.name, False)
        ]
        assert browse.campaign_options(session, selected="999999") == []
        assert browse.campaign_options(session, selected="abc") == []
        manage.cancel(session, admin, campaign.id, "天气原因")
        assert browse.campaign_options(session, selected=campaign.id) == []
        clock.set(START + timedelta(hours=1))
        assert browse.campaign_options(session) == []

    def test_filter_options_carry_them(self, session, campaign, clock):
        clock.set(START + timedelta(minutes=5))
        options = browse.filter_options(session, category_slug="tea")
        assert [c.id for c in options.campaigns] == [campaign.id]
