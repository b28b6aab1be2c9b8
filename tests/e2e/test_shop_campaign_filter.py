"""The 活动 (campaign) filter over HTTP: the category page and the search results narrowed to one
campaign's products, the choice offered only while a campaign runs and kept in the next-page
and sort links, a campaign buyers cannot see said on the field (the list unfiltered below), the
campaign page's way into the filtered search, the page cache keyed by it; the API's
`campaign_id` on /api/v1/products and /api/v1/search: 200 narrowed, 422 JSON with the message.

The campaign (tests/integration/conftest.py): 高州 lychee and 英德 black tea approved, running
2026-11-27 10:00 → 11-30 22:00 Beijing; the clock starts the day before."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import event

from marketplace.web.shop import routes as shop_routes
from marketplace.web.shop.cache import shop_cache
from services.campaigns import manage
from tests.integration.conftest import (  # noqa: F401  (the fixtures)
    campaign,
    campaign_input,
    lychee,
    lychee_farmer,
)
from tests.integration.test_campaigns import END, START

CAMPAIGN_SELECT = re.compile(r'<select[^>]*name="campaign_id"')


def ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'class="pcard[^"]*" data-id="(\d+)"', html)}


def get(client, url: str) -> str:  # type: ignore[no-untyped-def]
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def links(html: str, rel: str = "next") -> list[str]:
    return [unescape(u) for u in re.findall(rf'rel="{rel}" href="([^"]+)"', html)]


@pytest.fixture()
def announced(campaign):  # type: ignore[no-untyped-def]  # noqa: F811
    """The campaign, published and its two products approved, the day before it runs."""
    return campaign


@pytest.fixture()
def running(clock, announced):  # type: ignore[no-untyped-def]
    clock.set(START + timedelta(hours=1))
    return announced


@pytest.fixture()
def lychee_id(market, announced) -> int:  # type: ignore[no-untyped-def]
    return market.product("高州白糖罂荔枝").id


@pytest.fixture()
def tea(market):  # type: ignore[no-untyped-def]
    return market.product("英德红茶"), market.product("英德绿茶")


class TestCategoryPage:
    def test_only_the_campaigns_products(self, client, running, tea):
        black, green = tea
        assert ids(get(client, "/c/tea")) == {black.id, green.id}
        html = get(client, f"/c/tea?campaign_id={running.id}")
        assert ids(html) == {black.id}
        assert f'<option selected value="{running.id}">{running.name}</option>' in html
        assert '<details class="filters" open>' in html

    def test_the_choice_is_offered_only_while_a_campaign_runs(self, client, clock, announced, tea):
        clock.set(START - timedelta(seconds=1))
        assert not CAMPAIGN_SELECT.search(get(client, "/c/tea"))
        clock.set(START)
        html = get(client, "/c/tea")
        assert CAMPAIGN_SELECT.search(html) and f'value="{announced.id}">{announced.name}<' in html
        assert "活动" in html
        clock.set(END)
        assert not CAMPAIGN_SELECT.search(get(client, "/c/tea"))

    def test_the_next_page_and_sort_links_keep_it(
        self,
        client,
        session,
        admin,
        market,
        running,
        lychee_id,
        monkeypatch,
    ):
        pomelo = market.product("梅县金柚")  # a second fruit in the campaign
        item = manage.sign_up(
            session, market.shop.meixian_farmer, running.id, pomelo.id, manage.SignupInput("40")
        )
        manage.decide(session, admin, item.id, True)
        monkeypatch.setattr(shop_routes, "PAGE_SIZE", 1)
        url: str | None = f"/c/fruit?campaign_id={running.id}&sort=price_asc"
        seen: list[int] = []
        while url:
            html = get(client, url)
            assert f'href="/c/fruit?campaign_id={running.id}&amp;sort=price_desc"' in html
            seen += ids(html)
            url = next(iter(links(html)), None)
            if url:
                assert f"campaign_id={running.id}" in url and "after=" in url
        assert seen == [lychee_id, pomelo.id]  # ¥39.80, ¥45: the tea is no fruit

    def test_an_ended_campaign_chosen_stays_chosen_and_a_bad_one_is_said_on_the_field(
        self,
        client,
        clock,
        announced,
        tea,
    ):
        black, green = tea
        clock.set(END + timedelta(hours=1))
        html = get(client, f"/c/tea?campaign_id={announced.id}")
        assert ids(html) == {black.id}
        assert re.search(
            rf'<option selected value="{announced.id}">{announced.name}（不在活动时间）</option>', html
        )
        for bad in (999999, "abc"):
            html = get(client, f"/c/tea?campaign_id={bad}")
            assert ids(html) == {black.id, green.id}
            after_field = html.split('id="campaign_id"', 1)[1][:600]
            assert 'class="field-error"' in after_field and "请从列表中选择活动" in after_field


class TestSearchPage:
    def test_results_narrowed_and_the_links_keep_it(self, client, running, lychee_id, tea, monkeypatch):
        black, green = tea
        assert {black.id, green.id} <= ids(get(client, "/search?q=英德"))
        html = get(client, f"/search?q=英德&campaign_id={running.id}")
        assert ids(html) == {black.id}
        assert f'<option selected value="{running.id}">' in html
        # the search box searches the campaign again; the sort links keep it
        assert f'<input type="hidden" name="campaign_id" value="{running.id}">' in html
        assert re.search(rf'href="/search\?q=[^"]*campaign_id={running.id}[^"]*sort=price_asc"', html)
        monkeypatch.setattr(shop_routes, "PAGE_SIZE", 1)
        html = get(client, f"/search?campaign_id={running.id}&sort=price_asc")
        (after,) = links(html)
        assert f"campaign_id={running.id}" in after
        assert len(ids(html)) == 1 and ids(html) | ids(get(client, after)) == {black.id, lychee_id}

    def test_the_choice_is_offered_only_while_a_campaign_runs(self, client, clock, announced):
        assert not CAMPAIGN_SELECT.search(get(client, "/search?q=英德"))
        clock.set(START)
        assert CAMPAIGN_SELECT.search(get(client, "/search?q=英德"))

    def test_a_campaign_buyers_cannot_see_is_said_on_the_field(self, client, running, session, admin, tea):
        black, green = tea
        manage.cancel(session, admin, running.id, "天气原因")
        html = get(client, f"/search?q=英德&campaign_id={running.id}")
        assert ids(html) == ids(get(client, "/search?q=英德")) >= {black.id, green.id}
        assert 'class="field-error"' in html.split('id="campaign_id"', 1)[1][:600]
        assert 'type="hidden" name="campaign_id"' not in html


def test_the_campaign_page_leads_to_its_filtered_search(client, clock, announced):
    html = get(client, f"/campaigns/{announced.id}")
    assert f"/search?campaign_id={announced.id}" not in html  # not before it runs
    clock.set(START + timedelta(minutes=1))
    html = get(client, f"/campaigns/{announced.id}")
    assert f'href="/search?campaign_id={announced.id}"' in html
    assert f'<input type="hidden" name="campaign_id" value="{announced.id}">' in html


def test_the_page_cache_keys_the_campaign(app, client, running, tea):
    black, green = tea
    saved = app.config["SHOP_PAGE_CACHE_SECONDS"]
    app.config["SHOP_PAGE_CACHE_SECONDS"] = 30.0
    try:
        with app.app_context():
            shop_cache().clear()
        for _ in range(2):  # rendered, then from the cache
            assert ids(get(client, "/c/tea")) == {black.id, green.id}
            assert ids(get(client, f"/c/tea?campaign_id={running.id}")) == {black.id}
            assert ids(get(client, f"/search?q=英德&campaign_id={running.id}")) == {black.id}
            assert ids(get(client, "/search?q=英德")) >= {black.id, green.id}
    finally:
        app.config["SHOP_PAGE_CACHE_SECONDS"] = saved
        with app.app_context():
            shop_cache().clear()


def test_no_campaign_running_costs_the_pages_no_campaign_query(
    client, engine, clock, session, admin, announced, tea
):
    """Which campaigns run is known per freshness key (marketplace/web/shop/cache.py per_key):
    while none runs, the shelf's pricing and the campaign filter issue no statement, and a
    campaign starting (a boundary) or cancelled (a bump) shows on the very next request."""
    black, _green = tea
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    pages = ("/c/tea", "/search?q=英德", f"/p/{black.id}")
    clock.set(START - timedelta(seconds=1))
    for url in pages:
        get(client, url)  # the first request of a key reads the boundaries and the running set
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for url in pages:
            statements.clear()
            assert "campaign-price" not in get(client, url)
            if "/p/" not in url:  # (the product page's row is in the test session already)
                assert any("products" in s for s in statements), url  # the listener sees the page
            assert not any("campaign" in s for s in statements), (url, statements)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    clock.set(START)
    for url in pages:
        assert "campaign-price" in get(client, url), url
    manage.cancel(session, admin, announced.id, "天气原因")
    for url in pages:
        assert "campaign-price" not in get(client, url), url


class TestApi:
    def test_products_and_search_narrowed(self, client, running, lychee_id, tea):
        black, green = tea
        body = client.get(f"/api/v1/products?campaign_id={running.id}").get_json()
        assert {p["id"] for p in body["items"]} == {lychee_id, black.id}
        body = client.get(f"/api/v1/products?campaign_id={running.id}&category=tea").get_json()
        assert [p["id"] for p in body["items"]] == [black.id]
        body = client.get(f"/api/v1/search?q=英德&campaign_id={running.id}").get_json()
        assert [p["id"] for p in body["products"]] == [black.id]
        body = client.get("/api/v1/search?q=英德").get_json()
        assert {p["id"] for p in body["products"]} == {black.id, green.id}

    @pytest.mark.parametrize("value", ["999999", "abc", "0", "-1", "1.5", "99999999999999999999", ""])
    @pytest.mark.parametrize("path", ["/api/v1/products?", "/api/v1/search?q=英德&"])
    def test_bad_campaigns_are_422_json(self, client, running, path, value):
        resp = client.get(f"{path}campaign_id={value}")
        assert resp.status_code == 422, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["code"] == "validation_error" and body["errors"]["campaign_id"]

    @pytest.mark.parametrize("path", ["/api/v1/products?", "/api/v1/search?q=英德&"])
    def test_a_cancelled_or_draft_campaign_is_422_in_chinese(self, client, session, admin, running, path):
        draft = manage.create_campaign(session, admin, campaign_input(name="草稿"))
        manage.cancel(session, admin, running.id, "天气原因")
        for campaign_id in (running.id, draft.id):
            resp = client.get(f"{path}campaign_id={campaign_id}")
            assert resp.status_code == 422
            assert resp.get_json()["errors"]["campaign_id"] == ["请从列表中选择活动。"]

    def test_the_document_describes_it(self, client):
        doc = client.get("/api/openapi.json").get_json()
        for path in ("/api/v1/products", "/api/v1/search"):
            params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
            assert params["campaign_id"]["in"] == "query" and params["campaign_id"]["description"]
