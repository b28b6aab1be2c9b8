"""The campaign pages over HTTP (issue 13): an admin's bad form (errors on the fields, nothing
written), a campaign created, published, a farmer's sign-up approved; the landing page at the
controlled clock with the campaign price and the list price struck through; 403 for a buyer on
the admin pages, 404 for a draft's landing page; a rejection with its reason, a withdrawal, an
agent signing up for a consenting farmer.

Assertions look at status codes, markup and the database, not at English words (the pages speak
Chinese by default)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import Campaign, CampaignItem, CampaignStatus, Role, SignupStatus
from services.campaigns import manage
from tests.conftest import MEIXIAN, count, login
from tests.factories import consent

START = datetime(2026, 11, 27, 2, 0, 0, tzinfo=UTC)  # 2026-11-27 10:00:00 in Beijing
END = datetime(2026, 11, 30, 14, 0, 0, tzinfo=UTC)  # 2026-11-30 22:00:00 in Beijing


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def good_form(**changes: str) -> dict[str, str]:
    data = {
        "name": "广货网上行·金柚季",
        "description": "梅县金柚，满100减20",
        "starts_at": "2026-11-27T10:00:00",
        "ends_at": "2026-11-30T22:00",
        "county_codes": MEIXIAN,
        "platform_percent": "100",
        "price_platform_percent": "0",
        "budget_yuan": "500",
        "tiers": "满100减20",
        "tier_basis": "seller",
        "percent_off": "",
        "first_order_off_yuan": "",
    }
    data.update(changes)
    return data


def made(session) -> list[Campaign]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Campaign)))


def as_input(form: dict) -> manage.CampaignInput:  # type: ignore[type-arg]
    """The form's campaign fields as the service takes them (the page's own fields left out)."""
    return manage.CampaignInput(
        **{k: v for k, v in form.items() if k in manage.CampaignInput.__dataclass_fields__}
    )


@pytest.fixture()
def pomelo(market):  # type: ignore[no-untyped-def]
    return market.product("梅县金柚")  # ¥45.00, the 梅县 farmer's, GI certified


@pytest.fixture()
def published(session, admin, market):  # type: ignore[no-untyped-def]
    campaign = manage.create_campaign(session, admin, as_input(good_form()))
    manage.publish(session, admin, campaign.id)
    return campaign


class TestAdminPages:
    def test_a_bad_form_shows_its_errors_and_writes_nothing(self, client, session, admin, market):
        login(client, admin.phone)
        assert client.get("/admin/campaigns/new").status_code == 200
        resp = client.post(
            "/admin/campaigns/new",
            data=good_form(
                name="",
                ends_at="2026-11-26T10:00:00",  # before the start
                budget_yuan="abc",
                tiers="满一百减二十",
                platform_percent="101",
            ),
        )
        page = html(resp)
        assert resp.status_code == 422
        assert page.count('class="field-error"') >= 5
        for name in ("name", "ends_at", "budget_yuan", "tiers", "platform_percent"):
            assert re.search(rf'name="{name}"[^>]*class="invalid"|class="invalid"[^>]*name="{name}"', page), (
                name
            )
        assert 'value="满一百减二十"' in page  # what was typed is kept
        assert made(session) == []

    def test_create_edit_publish_and_decide_a_sign_up(self, client, session, admin, market, pomelo, clock):
        login(client, admin.phone)
        resp = client.post("/admin/campaigns/new", data=good_form())
        (campaign,) = made(session)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(
            f"/admin/campaigns/{campaign.id}"
        )
        assert campaign.status == CampaignStatus.DRAFT
        assert (campaign.starts_at, campaign.ends_at) == (START, END)
        assert (campaign.tiers, campaign.platform_bps, campaign.budget_fen) == ([[10000, 2000]], 10000, 50000)
        assert campaign.county_codes == [MEIXIAN]

        # The edit form shows the campaign in Beijing time, to the second, and its tiers as typed.
        page = html(client.get(f"/admin/campaigns/{campaign.id}/edit"))
        assert 'value="2026-11-27T10:00:00"' in page and 'step="1"' in page
        assert 'value="满100减20"' in page
        resp = client.post(
            f"/admin/campaigns/{campaign.id}/edit",
            data=good_form(budget_yuan="800", ends_at="2026-11-25T00:00"),
        )
        assert resp.status_code == 422 and 'class="field-error"' in html(resp)
        assert made(session)[0].budget_fen == 50000
        resp = client.post(f"/admin/campaigns/{campaign.id}/edit", data=good_form(budget_yuan="800"))
        assert resp.status_code == 302 and made(session)[0].budget_fen == 80000

        # The draft is nobody's business but the admins'.
        assert client.get(f"/campaigns/{campaign.id}").status_code == 404
        assert client.post(f"/admin/campaigns/{campaign.id}/publish").status_code == 302
        assert made(session)[0].status == CampaignStatus.PUBLISHED

        page = html(client.get("/admin/campaigns"))
        assert f"/admin/campaigns/{campaign.id}" in page and "¥0.00 / ¥800.00" in page

        # The farmer signs up their pomelo at ¥39.90, quota 50, 2 a buyer.
        client.post("/auth/logout")
        login(client, market.shop.meixian_farmer.phone)
        page = html(client.get("/sell/campaigns"))
        assert f'action="/sell/campaigns/{campaign.id}/sign-up"' in page
        assert f'<option value="{pomelo.id}"' in page
        assert f'value="{market.product("英德红茶").id}"' not in page  # another seller's
        prefix = f"c{campaign.id}-"
        resp = client.post(
            f"/sell/campaigns/{campaign.id}/sign-up",
            data={prefix + "product_id": pomelo.id, prefix + "campaign_price": "50", prefix + "quota": "0"},
        )
        page = html(resp)
        assert resp.status_code == 422
        assert re.search(
            rf'name="{prefix}campaign_price"[^>]*class="invalid"|class="invalid"[^>]*name="{prefix}campaign_price"',
            page,
        )
        assert count(session, CampaignItem) == 0
        resp = client.post(
            f"/sell/campaigns/{campaign.id}/sign-up",
            data={
                prefix + "product_id": pomelo.id,
                prefix + "campaign_price": "39.90",
                prefix + "quota": "50",
                prefix + "per_buyer_limit": "2",
            },
        )
        assert resp.status_code == 302
        item = session.scalar(select(CampaignItem))
        assert (item.status, item.campaign_price_fen, item.quota, item.per_buyer_limit) == (
            SignupStatus.PENDING,
            3990,
            50,
            2,
        )
        page = html(client.get("/sell/campaigns"))
        assert f'id="s{item.id}"' in page and "0 / 50" in page

        # The admin rejects without a reason (refused, on the form), then approves.
        client.post("/auth/logout")
        login(client, admin.phone)
        resp = client.post(f"/admin/campaigns/signups/{item.id}/decide", data={"decision": "reject"})
        assert resp.status_code == 422 and 'class="field-error"' in html(resp)
        session.expire_all()
        assert session.get(CampaignItem, item.id).status == SignupStatus.PENDING
        resp = client.post(f"/admin/campaigns/signups/{item.id}/decide", data={"decision": "approve"})
        assert resp.status_code == 302
        session.expire_all()
        assert session.get(CampaignItem, item.id).status == SignupStatus.APPROVED

        # The landing page, before the start: the window in Beijing time, the prices it will have.
        client.post("/auth/logout")
        clock.set(START - timedelta(seconds=1))
        page = html(client.get(f"/campaigns/{campaign.id}"))
        assert "11月27日 10:00:00" in page and "11月30日 22:00:00" in page
        assert f'data-starts="{START.isoformat()}"' in page and "js/countdown.js" in page
        assert "满100减20" in page
        assert "即将开始" in page
        # While it runs: the campaign price, the list price struck through.
        clock.set(START)
        page = html(client.get(f"/campaigns/{campaign.id}"))
        assert re.search(r'<b class="campaign-price">¥39\.90</b> <s class="list-price">¥45\.00</s>', page)
        assert "进行中" in page and "已抢光" not in page
        assert f"/campaigns/{campaign.id}" in html(client.get("/campaigns"))
        # The same price on the product page and on its card in the category and in search.
        page = html(client.get(f"/p/{pomelo.id}"))
        assert re.search(r'<b class="campaign-price">¥39\.90</b> <s class="list-price">¥45\.00</s>', page)
        assert f'href="/campaigns/{campaign.id}"' in page and "满100减20" in page
        for listing in (f"/c/{pomelo.category.slug}", "/search?q=金柚"):
            page = html(client.get(listing))
            card = page[page.index(f'data-id="{pomelo.id}"') :]
            card = card[: card.index("</li>")]
            assert "¥39.90" in card and '<s class="list-price">¥45.00</s>' in card, listing
            assert "广货网上行·金柚季" in card
        # The quota gone: 已抢光, the list price.
        session.get(CampaignItem, item.id).quota_used = 50
        session.commit()
        page = html(client.get(f"/campaigns/{campaign.id}"))
        assert "已抢光" in page and "campaign-price" not in page
        page = html(client.get(f"/p/{pomelo.id}"))
        assert "已抢光" in page and "campaign-price" not in page and "¥45.00" in page
        # After the end: 已结束, the list price only, and no longer in the list.
        clock.set(END)
        page = html(client.get(f"/campaigns/{campaign.id}"))
        assert "已结束" in page and "campaign-price" not in page
        assert f"/campaigns/{campaign.id}" not in html(client.get("/campaigns"))

    def test_a_buyer_is_refused_every_admin_page(self, client, market, published):
        login(client, market.buyer.phone)
        cid = published.id
        for method, url in (
            ("get", "/admin/campaigns"),
            ("get", "/admin/campaigns/new"),
            ("post", "/admin/campaigns/new"),
            ("get", f"/admin/campaigns/{cid}"),
            ("get", f"/admin/campaigns/{cid}/edit"),
            ("post", f"/admin/campaigns/{cid}/edit"),
            ("post", f"/admin/campaigns/{cid}/publish"),
            ("post", f"/admin/campaigns/{cid}/cancel"),
        ):
            assert getattr(client, method)(url).status_code == 403, url
        assert client.get("/sell/campaigns").status_code == 403  # no seller either

    def test_cancel_needs_a_reason_and_hides_the_landing_page(self, client, session, admin, published):
        login(client, admin.phone)
        resp = client.post(f"/admin/campaigns/{published.id}/cancel", data={"reason": " "})
        assert resp.status_code == 422 and 'class="field-error"' in html(resp)
        assert client.get(f"/campaigns/{published.id}").status_code == 200
        resp = client.post(f"/admin/campaigns/{published.id}/cancel", data={"reason": "台风停运"})
        assert resp.status_code == 302
        assert made(session)[0].status == CampaignStatus.CANCELLED
        assert "台风停运" in html(client.get(f"/admin/campaigns/{published.id}"))
        assert client.get(f"/campaigns/{published.id}").status_code == 404

    def test_publishing_a_window_already_over_is_an_error_on_the_page(
        self, client, session, admin, market, clock
    ):
        campaign = manage.create_campaign(session, admin, as_input(good_form()))
        clock.set(END + timedelta(days=1))
        login(client, admin.phone)
        resp = client.post(f"/admin/campaigns/{campaign.id}/publish")
        assert resp.status_code == 422 and 'class="flash flash-error"' in html(resp)
        assert made(session)[0].status == CampaignStatus.DRAFT


class TestSellerPages:
    def test_a_rejection_shows_its_reason_and_a_sign_up_can_be_withdrawn(
        self, client, session, admin, market, pomelo, published
    ):
        farmer = market.shop.meixian_farmer
        item = manage.sign_up(session, farmer, published.id, pomelo.id, manage.SignupInput("40"))
        manage.decide(session, admin, item.id, False, "价格不够优惠")
        login(client, farmer.phone)
        page = html(client.get("/sell/campaigns"))
        assert "价格不够优惠" in page and "未通过" in page
        again = manage.sign_up(session, farmer, published.id, pomelo.id, manage.SignupInput("35"))
        resp = client.post(f"/sell/campaigns/signups/{again.id}/withdraw")
        assert resp.status_code == 302
        session.expire_all()
        assert session.get(CampaignItem, again.id).status == SignupStatus.WITHDRAWN

    def test_another_seller_cannot_withdraw_or_sign_up_a_product_not_theirs(
        self, client, session, market, pomelo, published
    ):
        item = manage.sign_up(
            session, market.shop.meixian_farmer, published.id, pomelo.id, manage.SignupInput("40")
        )
        login(client, market.shop.yingde_farmer.phone)
        assert client.post(f"/sell/campaigns/signups/{item.id}/withdraw").status_code == 403
        prefix = f"c{published.id}-"
        resp = client.post(
            f"/sell/campaigns/{published.id}/sign-up",
            data={prefix + "product_id": pomelo.id, prefix + "campaign_price": "30"},
        )
        assert resp.status_code == 403

    def test_an_agent_signs_up_for_a_consenting_farmer(
        self, client, session, market, pomelo, published, point, agent
    ):
        farmer = market.shop.meixian_farmer
        consent(session, agent, farmer, point)
        login(client, agent.phone)
        page = html(client.get("/sell/campaigns"))  # an agent chooses the farmer first
        assert f"/sell/campaigns?farmer={farmer.id}" in page
        page = html(client.get(f"/sell/campaigns?farmer={farmer.id}"))
        assert f'<option value="{pomelo.id}"' in page
        assert f'action="/sell/campaigns/{published.id}/sign-up?farmer={farmer.id}"' in page
        prefix = f"c{published.id}-"
        resp = client.post(
            f"/sell/campaigns/{published.id}/sign-up?farmer={farmer.id}",
            data={prefix + "product_id": pomelo.id, prefix + "campaign_price": "38"},
        )
        assert resp.status_code == 302 and f"farmer={farmer.id}" in resp.headers["Location"]
        item = session.scalar(select(CampaignItem))
        assert (item.seller_id, item.signed_up_by_id) == (farmer.id, agent.id)


def test_nav_links_for_admins_and_sellers(client, admin, market):
    login(client, admin.phone)
    assert "/admin/campaigns" in html(client.get("/workspace"))
    client.post("/auth/logout")
    login(client, market.shop.meixian_farmer.phone)
    assert "/sell/campaigns" in html(client.get("/workspace"))
    assert "/sell/campaigns" in html(client.get("/sell/"))


def test_unknown_campaigns_are_404(client, admin):
    assert client.get("/campaigns/999999").status_code == 404
    login(client, admin.phone)
    assert client.get("/admin/campaigns/999999").status_code == 404
    assert (
        client.post("/admin/campaigns/signups/999999/decide", data={"decision": "approve"}).status_code == 404
    )


@pytest.mark.parametrize("role", [Role.FARMER])
def test_a_seller_without_a_profile_is_sent_to_fill_it_in(client, make_user, role):
    login(client, make_user(role).phone)
    resp = client.get("/sell/campaigns")
    assert resp.status_code == 302 and "/sell/profile" in resp.headers["Location"]


def test_a_flash_sale_checkout_names_its_price_and_is_refused_at_once_once_sold_out(
    client, session, admin, market, pomelo, published, clock
):  # type: ignore[no-untyped-def]
    """The checkout page says which flash-sale price it shows (flash_items); once the flash-sale
    gate's counter is at 0 the form is refused with the reason, nothing written, the new price shown."""
    import uuid

    import redis

    from domain import Order
    from services.campaigns import gate
    from tests.e2e.test_cart_checkout_web import add, checkout_form

    item = manage.sign_up(
        session,
        pomelo.seller,
        published.id,
        pomelo.id,
        manage.SignupInput(campaign_price_yuan="39.90", quota="2", per_buyer_limit=""),
    )
    manage.decide(session, admin, item.id, True)
    clock.set(START + timedelta(minutes=1))
    login(client, market.buyer.phone)
    assert add(client, pomelo).status_code == 302
    form = checkout_form(client, market)
    assert form["flash_items"] == str(item.id) and form["items_fen"] == "3990"

    previous = gate.install(
        gate.RedisGate(redis.Redis(host="127.0.0.1", port=6379), prefix=f"t:{uuid.uuid4().hex}:")
    )
    try:
        session.get(CampaignItem, item.id).quota_used = 2  # others bought the two units meanwhile
        session.commit()
        resp = client.post("/cart/checkout", data=form)
    finally:
        gate.install(previous)
    assert resp.status_code == 409
    assert "该商品的活动价已抢光，请确认新价格。" in html(resp)
    assert count(session, Order) == 0
    # The page shown again prices it at list, without the claim.
    again = checkout_form(client, market)
    assert again["flash_items"] == "" and again["items_fen"] == "4500"
