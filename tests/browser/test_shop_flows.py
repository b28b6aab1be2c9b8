"""A city buyer on a 360×740 phone, in headless Chromium against the seeded server: the home page,
a category, a county filter, sorting by price, the next page, a product page, and search in
Chinese and in pinyin with the matches highlighted; then the same pages with JavaScript off."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

MEIXIAN = "441403"


def no_horizontal_scroll(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide on a 360px phone"


def load_lazy_images(page) -> None:  # type: ignore[no-untyped-def]
    """Scroll down the page so lazy photos load before a full-page screenshot."""
    height = page.evaluate("document.documentElement.scrollHeight")
    for y in range(0, height, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(50)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_load_state("networkidle")


def prices(page) -> list[int]:  # type: ignore[no-untyped-def]
    """The card prices on the page, in fen."""
    out = []
    for text in page.locator(".pcard .price").all_inner_texts():
        yuan = re.search(r"¥([\d,]+)\.(\d\d)", text)
        assert yuan, text
        out.append(int(yuan.group(1).replace(",", "")) * 100 + int(yuan.group(2)))
    return out


def card_ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        page.locator(".pcard").nth(i).get_attribute("data-id") for i in range(page.locator(".pcard").count())
    ]


class TestBuyerBrowsesOnAPhone:
    def test_home_category_sort_next_page_filter_product(self, phone_page, shot):
        page = phone_page
        page.goto(page.base_url + "/")
        assert page.locator(".pcard").count() >= 8
        assert page.locator(".cats a[href='/c/fruit']").is_visible()
        no_horizontal_scroll(page)
        load_lazy_images(page)
        shot(page, "shop-1-home")

        with page.expect_navigation():
            page.click(".cats h2 a[href='/c/fruit']")
        assert page.url.endswith("/c/fruit")
        assert page.locator(".pcard").count() == 20  # a full first page: the seed has more fruit
        no_horizontal_scroll(page)
        load_lazy_images(page)
        shot(page, "shop-2-category")

        with page.expect_navigation():
            page.click("nav.sorts a[href*='sort=price_asc']")
        first_page = prices(page)
        assert first_page == sorted(first_page)
        first_ids = card_ids(page)
        shot(page, "shop-3-sorted-by-price")

        with page.expect_navigation():
            page.click("a[rel=next]")
        assert "after=" in page.url and "sort=price_asc" in page.url
        second_page = prices(page)
        assert second_page and min(second_page) >= max(first_page)
        assert not set(card_ids(page)) & set(first_ids)
        shot(page, "shop-4-next-page")

        # Filter the category by county of origin (the order is kept, the page starts again).
        page.goto(page.base_url + "/c/fruit?sort=price_asc")
        page.click("details.filters summary")
        page.select_option("select[name=county]", MEIXIAN)
        shot(page, "shop-5-filter-open")
        with page.expect_navigation():
            page.click("details.filters button[type=submit]")
        assert f"county={MEIXIAN}" in page.url and "sort=price_asc" in page.url
        metas = page.locator(".pcard .meta").all_inner_texts()
        assert metas and all("梅县区" in m for m in metas)
        assert prices(page) == sorted(prices(page))
        no_horizontal_scroll(page)
        load_lazy_images(page)
        shot(page, "shop-6-filtered-by-county")

        with page.expect_navigation():
            page.locator(".pcard a").first.click()
        assert re.search(r"/p/\d+$", page.url)
        main = page.inner_text("main")
        assert "梅州市" in main and "梅县区" in main and "大黄村" in main  # origin village → county → city
        assert "梅县区县域电子商务综合服务中心" in main  # the county service center
        assert "AGI" in main or page.locator(".certs").count() == 0
        assert page.locator(".gallery img").first.evaluate("img => img.complete && img.naturalWidth > 0")
        no_horizontal_scroll(page)
        shot(page, "shop-7-product")

        with page.expect_navigation():
            page.click(".seller a.title")
        assert re.search(r"/s/\d+$", page.url) and page.locator(".pcard").count() >= 1
        shot(page, "shop-8-seller")

    @pytest.mark.parametrize(("query", "name"), [("荔枝", "lizhi-chinese"), ("lizhi", "lizhi-pinyin")])
    def test_search_finds_lychees_with_highlighted_names(self, phone_page, shot, query, name):
        page = phone_page
        page.goto(page.base_url + "/")
        page.fill("form.search input[name=q]", query)
        with page.expect_navigation():
            page.click("form.search button[type=submit]")
        assert "/search?q=" in page.url
        names = page.locator(".pcard .pname").all_inner_texts()
        assert len(names) >= 4 and all("荔枝" in n for n in names[:4])
        assert page.locator(".pcard .pname mark").count() >= 4
        assert "荔枝" in page.locator(".pcard .pname mark").first.inner_text()
        no_horizontal_scroll(page)
        load_lazy_images(page)
        shot(page, f"shop-9-search-{name}")

    def test_suggestions_come_as_the_buyer_types(self, phone_page):
        page = phone_page
        page.goto(page.base_url + "/")
        page.type("form.search input[name=q]", "lizh", delay=60)
        page.wait_for_selector("#q-suggest option", state="attached", timeout=5000)
        options = page.eval_on_selector_all("#q-suggest option", "os => os.map(o => o.value)")
        assert any("荔枝" in o for o in options)


@pytest.fixture()
def no_js_page(browser, server):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        locale="zh-CN",
        java_script_enabled=False,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.base_url = server  # type: ignore[attr-defined]
    yield page
    context.close()


class TestWithoutJavaScript:
    def test_the_same_pages_work(self, no_js_page, shot):
        page = no_js_page
        page.goto(page.base_url + "/")
        assert page.locator(".pcard").count() >= 8
        with page.expect_navigation():
            page.click(".cats h2 a[href='/c/fruit']")
        page.click("details.filters summary")  # <details> opens without JavaScript
        page.select_option("select[name=county]", MEIXIAN)
        page.fill("input[name=price_max]", "50")
        with page.expect_navigation():
            page.click("details.filters button[type=submit]")
        assert f"county={MEIXIAN}" in page.url and "price_max=50" in page.url
        assert page.locator(".pcard").count() >= 1 and all(p <= 5000 for p in prices(page))
        shot(page, "shop-nojs-filtered")
        with page.expect_navigation():
            page.click("nav.sorts a[href*='sort=price_desc']")
        assert prices(page) == sorted(prices(page), reverse=True)
        with page.expect_navigation():
            page.locator(".pcard a").first.click()
        assert re.search(r"/p/\d+$", page.url) and "梅县区" in page.inner_text("main")
        with page.expect_navigation():
            page.click("header a.brand")
        page.fill("form.search input[name=q]", "lizhi")
        with page.expect_navigation():
            page.click("form.search button[type=submit]")
        assert page.locator(".pcard .pname mark").count() >= 1
        no_horizontal_scroll(page)
        shot(page, "shop-nojs-search")

    def test_a_search_that_finds_nothing_offers_a_way_on(self, no_js_page):
        page = no_js_page
        page.goto(page.base_url + "/search?q=zzzqqq")
        assert page.locator(".pcard").count() == 0
        assert page.locator("ul.chips a").count() >= 1  # suggestions or the categories
