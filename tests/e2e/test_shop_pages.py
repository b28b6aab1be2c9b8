"""The buyer's pages over HTTP: home, category pages with filters, sorting and next-page links,
search results, product and seller pages. Chinese is the default language, so these tests look
at status codes, structure and data; the one English check switches to English first."""

from __future__ import annotations

import gzip
import re
from html import unescape

import pytest

from domain import NodeKind, ProductStatus
from services import catalog, places
from tests.conftest import MEIXIAN, YINGDE
from tests.factories import Shop, build_shop


@pytest.fixture()
def shop(session, make_user, first_village) -> Shop:  # type: ignore[no-untyped-def]
    return build_shop(session, make_user, first_village)


def ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="pcard[^"]*" data-id="(\d+)"', html)]


def next_link(html: str) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def get(client, url: str) -> str:  # type: ignore[no-untyped-def]
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


class TestHome:
    def test_the_shop_front_has_search_categories_and_products(self, client, shop):
        html = get(client, "/")
        assert 'action="/search"' in html and 'name="q"' in html
        assert 'href="/c/fruit"' in html and 'href="/c/citrus"' in html and 'href="/c/fertilizer"' in html
        listed = set(ids(html))
        assert shop.products["梅县金柚"].id in listed and shop.products["复合肥"].id in listed
        assert shop.products["草稿里的柚子"].id not in listed
        # the network introduction stays, compact
        assert 'class="stats"' in html and 'href="/points"' in html

    def test_an_empty_catalog_still_renders(self, client):
        assert client.get("/").status_code == 200


class TestCategoryPage:
    def test_lists_the_category_and_its_children(self, client, shop):
        html = get(client, "/c/tea")
        assert set(ids(html)) == {shop.products["英德红茶"].id, shop.products["英德绿茶"].id}
        assert 'href="/c/black-tea"' in html

    def test_filters_by_county_certification_storage_and_price_in_yuan(self, client, shop):
        assert set(ids(get(client, f"/c/fruit?county={MEIXIAN}&price_max=5"))) == {
            shop.products["梅县蜜柚"].id,
            shop.products["平价沙田柚"].id,
        }
        assert ids(get(client, "/c/fruit?certification=geographical_indication")) == [
            shop.products["梅县金柚"].id
        ]
        assert ids(get(client, "/c/poultry-meat-eggs?storage=chilled")) == [shop.products["冰鲜走地鸡"].id]
        # ¥45 and ¥45.00 and full-width digits all mean 4500 fen
        assert ids(get(client, "/c/citrus?price_min=４５")) == [shop.products["梅县金柚"].id]

    def test_the_county_choices_are_counties_with_products(self, client, shop):
        html = get(client, "/c/tea")
        assert f'value="{YINGDE}"' in html and f'value="{MEIXIAN}"' not in html

    def test_sort_by_price(self, client, shop):
        html = get(client, "/c/fruit?sort=price_asc")
        prices = [shop.session.get(type(shop.products["梅县金柚"]), i).price_fen for i in ids(html)]
        assert prices == sorted(prices) and len(prices) == 3
        assert 'href="/c/fruit?sort=price_desc"' in html

    def test_next_page_links_walk_every_product_once(self, client, shop):
        for i in range(45):
            shop.add(f"分页柚子{i:02d}", "citrus", 100 + i % 4)
        url: str | None = f"/c/citrus?county={MEIXIAN}&sort=price_asc"
        seen: list[int] = []
        while url:
            html = get(client, url)
            page = ids(html)
            assert 0 < len(page) <= 20
            seen += page
            url = next_link(html)
            if url:
                assert f"county={MEIXIAN}" in url and "sort=price_asc" in url
        assert len(seen) == len(set(seen)) == 45 + 3

    @pytest.mark.parametrize("after", ["garbage", "eyJ4IjoxfQ", "%00", "A" * 400])
    def test_a_broken_page_link_shows_the_first_page(self, client, shop, after):
        assert set(ids(get(client, f"/c/fruit?after={after}"))) == set(ids(get(client, "/c/fruit")))

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("price_min=abc", "price_min"),
            ("price_max=-3", "price_max"),
            ("price_min=9&price_max=1", "price_max"),
        ],
    )
    def test_a_bad_price_is_shown_on_its_field_with_the_unfiltered_list(self, client, shop, query, field):
        html = get(client, f"/c/fruit?{query}")
        assert 'class="field-error"' in html.split(f'id="{field}"', 1)[1][:400]
        assert len(ids(html)) == 3
        assert '<details class="filters" open>' in html

    @pytest.mark.parametrize(
        "query", ["county=abc", "certification=x", "storage=warm", "sort=nope", "county=44"]
    )
    def test_bad_choices_never_fail_the_page(self, client, shop, query):
        assert client.get(f"/c/fruit?{query}").status_code == 200

    def test_unknown_category_is_404(self, client, shop):
        assert client.get("/c/no-such-thing").status_code == 404
        assert client.get("/c/%E8%8D%94").status_code == 404


class TestSearchPage:
    def test_results_have_highlighted_names(self, client, shop):
        html = get(client, "/search?q=红茶")
        assert ids(html) == [shop.products["英德红茶"].id]
        assert "<mark>红茶</mark>" in html

    def test_pinyin_finds_the_chinese_name(self, client, shop):
        assert shop.products["英德红茶"].id in ids(get(client, "/search?q=hongcha"))

    def test_an_empty_query_shows_the_form_and_categories(self, client, shop):
        html = get(client, "/search")
        assert 'name="q"' in html and 'href="/c/fruit"' in html and not ids(html)

    def test_nothing_found_is_a_page_not_an_error(self, client, shop):
        assert ids(get(client, "/search?q=zzzzqqqq")) == []

    def test_drafts_are_not_found_by_search(self, client, shop):
        assert shop.products["草稿里的柚子"].id not in ids(get(client, "/search?q=柚子"))


class TestProductPage:
    def test_shows_price_origin_county_center_seller_and_certificates(self, client, shop, admin, session):
        places.create_node(
            session, admin, NodeKind.COUNTY_CENTER, {"division_code": MEIXIAN, "name": "梅县区中心"}
        )
        product = shop.products["梅县金柚"]
        html = get(client, f"/p/{product.id}")
        assert "¥45.00" in html and "AGI00319" in html
        assert "梅州市" in html and "梅县区" in html and product.origin.short_name in html
        assert "梅县区中心" in html
        assert f'href="/s/{shop.meixian_farmer.id}"' in html and "梅县柚园" in html

    def test_in_english(self, client, shop):
        client.post("/lang", data={"lang": "en"})
        html = get(client, f"/p/{shop.products['英德红茶'].id}")
        assert "Geographical indication" in html and "Organic" in html and "Net weight" in html

    def test_sold_out_is_marked(self, client, shop):
        html = get(client, f"/p/{shop.products['售罄的荔枝干'].id}")
        assert 'class="tag off"' in html

    def test_drafts_paused_and_unknown_are_404(self, client, shop):
        for name in ("草稿里的柚子", "暂停的柚子"):
            assert client.get(f"/p/{shop.products[name].id}").status_code == 404
        assert client.get("/p/999999999").status_code == 404
        assert client.get("/p/99999999999999").status_code == 404

    def test_a_product_paused_later_disappears(self, client, shop, session):
        product = shop.products["英德绿茶"]
        assert client.get(f"/p/{product.id}").status_code == 200
        catalog.set_status(session, shop.yingde_farmer, product.id, ProductStatus.PAUSED)
        assert client.get(f"/p/{product.id}").status_code == 404
        assert product.id not in ids(get(client, "/c/tea"))


class TestSellerPage:
    def test_shop_village_and_listings(self, client, shop):
        html = get(client, f"/s/{shop.yingde_farmer.id}")
        assert "英德茶园" in html and "英德市" in html
        assert set(ids(html)) == {shop.products[n].id for n in ("英德红茶", "英德绿茶", "售罄的荔枝干")}

    def test_unknown_seller_is_404(self, client, shop, make_user):
        assert client.get("/s/999999").status_code == 404
        assert client.get(f"/s/{make_user().id}").status_code == 404


class TestPageWeight:
    @pytest.mark.parametrize("url", ["/", "/c/citrus", "/search?q=柚", "PRODUCT"])
    def test_gzipped_html_stays_under_14_kb_with_20_products(self, client, shop, url):
        for i in range(25):
            shop.add(
                f"梅县金柚礼盒 两个装 第{i:02d}号 柚子",
                "citrus",
                5980 + i,
                certifications=(("geographical_indication", "AGI00319"),),
            )
        if url == "PRODUCT":
            url = f"/p/{shop.products['梅县金柚'].id}"
        html = get(client, url).encode()
        assert len(gzip.compress(html)) <= 14 * 1024
