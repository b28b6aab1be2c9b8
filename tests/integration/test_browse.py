"""Browsing as a buyer (services.browse) on the real database: filters narrow, sorts order,
keyset pages return every product exactly once, cursors cannot be forged into errors, and only
what buyers may see is ever shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from domain import (
    CertificationKind,
    NodeKind,
    Product,
    ProductStatus,
    Role,
    Unit,
    clock,
)
from seed.loader import read_json
from services import browse, catalog, places
from services.errors import NotFound, ValidationError
from tests.conftest import MEIXIAN, YINGDE
from tests.factories import FOSHAN_SHUNDE, GI, Shop, build_shop


@pytest.fixture()
def shop(session, make_user, first_village) -> Shop:  # type: ignore[no-untyped-def]
    return build_shop(session, make_user, first_village)


def names(page: browse.ProductPage) -> list[str]:
    return [c.name for c in page.items]


def all_pages(session: Session, limit: int, **kwargs: Any) -> list[list[browse.ProductCard]]:
    pages, after = [], None
    for _ in range(100):
        page = browse.find_products(session, after=after, limit=limit, **kwargs)
        pages.append(page.items)
        after = page.next_cursor
        if after is None:
            return pages
    raise AssertionError("pagination did not end")


class TestWhatBuyersSee:
    def test_active_and_sold_out_products_only(self, session, shop):
        page = browse.find_products(session, limit=50)
        assert {c.id for c in page.items} == shop.visible_ids()
        assert "草稿里的柚子" not in names(page) and "暂停的柚子" not in names(page)
        sold_out = next(c for c in page.items if c.name == "售罄的荔枝干")
        assert sold_out.sold_out and sold_out.status == ProductStatus.SOLD_OUT

    def test_cards_carry_seller_origin_and_county(self, session, shop, first_village):
        (card,) = [c for c in browse.find_products(session, limit=50).items if c.name == "梅县金柚"]
        assert card.shop_name == "梅县柚园"
        assert card.county_code == MEIXIAN and card.county_name == "梅县区"
        assert card.village_name == first_village(MEIXIAN).short_name
        assert card.has_gi is True and card.photo is None
        assert card.price_fen == 4500 and card.unit == Unit.JIN

    def test_a_product_paused_after_a_buyer_loaded_page_one_is_not_on_page_two(self, session, shop):
        first = browse.find_products(session, sort="price_asc", limit=2)
        catalog.set_status(session, shop.yingde_farmer, shop.products["英德红茶"].id, ProductStatus.PAUSED)
        second = browse.find_products(session, sort="price_asc", after=first.next_cursor, limit=50)
        assert "英德红茶" not in names(second)


class TestFilters:
    def test_a_top_category_includes_its_children(self, session, shop):
        assert set(names(browse.find_products(session, category_slug="tea"))) == {"英德红茶", "英德绿茶"}
        assert names(browse.find_products(session, category_slug="black-tea")) == ["英德红茶"]

    def test_county_of_origin(self, session, shop):
        got = set(names(browse.find_products(session, county_code=YINGDE)))
        assert got == {"英德红茶", "英德绿茶", "售罄的荔枝干"}

    def test_certification(self, session, shop):
        assert set(names(browse.find_products(session, certification="geographical_indication"))) == {
            "梅县金柚",
            "英德红茶",
        }
        assert names(browse.find_products(session, certification=CertificationKind.ORGANIC)) == ["英德红茶"]

    def test_storage_class(self, session, shop):
        assert names(browse.find_products(session, storage_class="chilled")) == ["冰鲜走地鸡"]

    def test_price_range_is_inclusive(self, session, shop):
        got = set(names(browse.find_products(session, price_min_fen=450, price_max_fen=6800)))
        assert got == {"梅县金柚", "梅县蜜柚", "平价沙田柚", "英德绿茶", "售罄的荔枝干"}

    def test_seller_and_flow(self, session, shop):
        assert names(browse.find_products(session, seller_id=shop.merchant.id)) == ["复合肥"]
        assert names(browse.find_products(session, flow="goods")) == ["复合肥"]
        assert "复合肥" not in names(browse.find_products(session, flow="farm", limit=50))

    def test_filters_combine(self, session, shop):
        page = browse.find_products(session, category_slug="fruit", county_code=MEIXIAN, price_max_fen=500)
        assert set(names(page)) == {"梅县蜜柚", "平价沙田柚"}

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"category_slug": "no-such-category"}, "category"),
            ({"category_slug": "../etc"}, "category"),
            ({"county_code": "4414"}, "county"),
            ({"certification": "iso9001"}, "certification"),
            ({"storage_class": "warm"}, "storage"),
            ({"price_min_fen": -1}, "price_min"),
            ({"price_max_fen": 10**12}, "price_max"),
            ({"price_min_fen": 500, "price_max_fen": 100}, "price_max"),
            ({"sort": "cheapest"}, "sort"),
            ({"limit": 0}, "limit"),
            ({"limit": 51}, "limit"),
            ({"flow": "both"}, "flow"),
        ],
    )
    def test_bad_filters_are_validation_errors_on_their_field(self, session, shop, kwargs, field):
        with pytest.raises(ValidationError) as exc:
            browse.find_products(session, **kwargs)
        assert field in exc.value.field_errors


class TestSorting:
    def test_price_ascending_and_descending(self, session, shop):
        up = [c.price_fen for c in browse.find_products(session, sort="price_asc", limit=50).items]
        down = [c.price_fen for c in browse.find_products(session, sort="price_desc", limit=50).items]
        assert up == sorted(up) and down == sorted(down, reverse=True) and len(up) == len(shop.visible_ids())

    def test_newest_first_by_default(self, session, shop):
        base = clock.now()
        for i, name in enumerate(["复合肥", "梅县金柚", "英德绿茶"]):
            session.execute(
                update(Product)
                .where(Product.id == shop.products[name].id)
                .values(published_at=base + timedelta(minutes=10 + i))
            )
        page = browse.find_products(session, limit=3)
        assert page.sort == browse.Sort.NEW
        assert names(page) == ["英德绿茶", "梅县金柚", "复合肥"]

    def test_best_selling(self, session, shop):
        for name, sales in (("英德红茶", 40), ("复合肥", 7), ("梅县蜜柚", 300)):
            session.execute(
                update(Product).where(Product.id == shop.products[name].id).values(sales_count=sales)
            )
        assert names(browse.find_products(session, sort="sales", limit=3)) == [
            "梅县蜜柚",
            "英德红茶",
            "复合肥",
        ]

    def test_relevance_without_a_query_is_newest(self, session, shop):
        assert browse.find_products(session, sort="relevance").sort == browse.Sort.NEW


class TestKeysetPages:
    @pytest.fixture()
    def many(self, session, shop):  # type: ignore[no-untyped-def]
        # 30 more with only three prices and the same publication time: ties everywhere.
        same_time = clock.now()
        for i in range(30):
            p = shop.add(f"同价柚子{i:02d}", "citrus", (450, 900, 1200)[i % 3])
            session.execute(update(Product).where(Product.id == p.id).values(published_at=same_time))
        session.execute(update(Product).where(Product.name.like("同价柚子1%")).values(sales_count=5))
        return shop

    @pytest.mark.parametrize("sort", ["new", "price_asc", "price_desc", "sales"])
    @pytest.mark.parametrize("limit", [1, 7, 20])
    def test_every_product_exactly_once_in_order(self, session, many, sort, limit):
        pages = all_pages(session, limit, sort=sort)
        seen = [c.id for page in pages for c in page]
        assert len(seen) == len(set(seen)) == len(many.visible_ids())
        assert set(seen) == many.visible_ids()
        assert all(len(p) == limit for p in pages[:-1])
        whole = [c.id for c in browse.find_products(session, sort=sort, limit=50).items]
        assert seen == whole

    def test_pages_of_a_filtered_list(self, session, many):
        pages = all_pages(session, 4, category_slug="fruit", county_code=MEIXIAN, sort="price_desc")
        seen = [c.id for page in pages for c in page]
        assert len(seen) == len(set(seen)) == 33
        prices = [c.price_fen for page in pages for c in page]
        assert prices == sorted(prices, reverse=True)

    def test_the_last_page_has_no_next_cursor(self, session, shop):
        page = browse.find_products(session, limit=50)
        assert page.next_cursor is None
        exact = browse.find_products(session, limit=len(shop.visible_ids()))
        assert exact.next_cursor is None


class TestCursors:
    @pytest.mark.parametrize(
        "cursor",
        [
            "garbage",
            "",
            "!!!!",
            "W10",  # []
            "eyJhIjoxfQ",  # {"a":1}
            browse.encode_cursor(browse.Sort.PRICE_ASC, 450, 1),  # another order's cursor
            browse.encode_cursor(browse.Sort.NEW, "yesterday", 1),  # type: ignore[arg-type]
            browse.encode_cursor(browse.Sort.NEW, "2026-01-01T00:00:00", 1),  # no time zone
            browse.encode_cursor(browse.Sort.NEW, 12, 1),  # type: ignore[arg-type]
            browse.encode_cursor(browse.Sort.NEW, "2026-01-01T00:00:00+00:00", -5),
            browse.encode_cursor(browse.Sort.NEW, "2026-01-01T00:00:00+00:00", 2**40),
            "A" * 500,
        ],
    )
    def test_a_cursor_this_code_did_not_make_is_refused(self, session, shop, cursor):
        if cursor == "":
            # An empty cursor is no cursor: the first page.
            assert browse.find_products(session, after=cursor).items
            return
        with pytest.raises(browse.InvalidCursor) as exc:
            browse.find_products(session, sort="new", after=cursor)
        assert exc.value.status == 422 and "after" in exc.value.field_errors

    @pytest.mark.parametrize("key", [True, "450", 1.5, 2**70])
    def test_price_cursors_need_a_whole_number_key(self, session, shop, key):
        cursor = browse.encode_cursor(browse.Sort.PRICE_ASC, key, 3)
        with pytest.raises(browse.InvalidCursor):
            browse.find_products(session, sort="price_asc", after=cursor)

    def test_a_forged_but_well_formed_cursor_just_starts_elsewhere(self, session, shop):
        cursor = browse.encode_cursor(browse.Sort.PRICE_ASC, 5000, 0 + 1)
        page = browse.find_products(session, sort="price_asc", after=cursor, limit=50)
        assert all(c.price_fen >= 5000 for c in page.items)


class TestFilterOptions:
    def test_counties_with_visible_products_and_their_counts(self, session, shop):
        options = browse.filter_options(session)
        counts = {c.code: c.count for c in options.counties}
        assert counts == {MEIXIAN: 4, YINGDE: 3, FOSHAN_SHUNDE: 1}
        meixian = next(c for c in options.counties if c.code == MEIXIAN)
        assert (meixian.name, meixian.city_name) == ("梅县区", "梅州市")

    def test_in_one_category(self, session, shop):
        options = browse.filter_options(session, category_slug="tea")
        assert [c.code for c in options.counties] == [YINGDE]

    def test_no_products_no_counties(self, session):
        assert browse.filter_options(session).counties == []


class TestCategories:
    def test_tree_has_two_levels_in_order(self, session, shop):
        tree = browse.category_tree(session)
        assert [b.category.slug for b in tree][:2] == ["fruit", "vegetables"]
        fruit = tree[0]
        assert [c.slug for c in fruit.children] == [
            "citrus",
            "lychee-longan",
            "tropical-fruit",
            "orchard-fruit",
        ]
        assert all(c.parent_id is None for c in (b.category for b in tree))

    def test_unknown_slug_is_not_found(self, session, shop):
        with pytest.raises(NotFound):
            browse.get_category(session, "nope")
        with pytest.raises(NotFound):
            browse.get_category(session, "DROP TABLE")

    def test_importing_twice_adds_nothing(self, session, shop):
        assert catalog.import_categories(session, read_json("categories.json")) == 0


class TestProductPage:
    def test_origin_path_county_center_seller_and_certifications(self, session, shop, admin, first_village):
        village = first_village(MEIXIAN)
        center = places.create_node(
            session,
            admin,
            NodeKind.COUNTY_CENTER,
            {"division_code": MEIXIAN, "name": "梅县区县域电商服务中心"},
        )
        point = places.create_node(
            session, admin, NodeKind.VILLAGE_POINT, {"division_code": village.code, "name": "村服务站"}
        )
        # The farmer's profile picks up the point of their village when saved again.
        catalog.save_seller_profile(
            session, shop.meixian_farmer, shop_name="梅县柚园", division_code=village.code
        )
        detail = browse.product_page(session, shop.products["梅县金柚"].id)
        assert [d.code for d in detail.origin_path] == [
            village.code[:4],
            village.code[:6],
            village.code[:9],
            village.code,
        ]
        assert detail.county_center is not None and detail.county_center.id == center.id
        assert detail.village_point is not None and detail.village_point.id == point.id
        assert detail.seller is not None and detail.seller.shop_name == "梅县柚园"
        assert [(c.kind, c.number) for c in detail.product.certifications] == [(GI, "AGI00319")]

    def test_a_county_without_a_center_has_none(self, session, shop):
        detail = browse.product_page(session, shop.products["复合肥"].id)
        assert detail.county_center is None
        assert [d.code for d in detail.origin_path] == ["4406", FOSHAN_SHUNDE]

    def test_sold_out_is_shown(self, session, shop):
        assert (
            browse.product_page(session, shop.products["售罄的荔枝干"].id).product.status
            == ProductStatus.SOLD_OUT
        )

    @pytest.mark.parametrize("name", ["草稿里的柚子", "暂停的柚子"])
    def test_drafts_and_paused_are_not_found(self, session, shop, name):
        with pytest.raises(NotFound):
            browse.product_page(session, shop.products[name].id)

    @pytest.mark.parametrize("product_id", [0, -1, 10**9, 2**40])
    def test_unknown_ids_are_not_found(self, session, shop, product_id):
        with pytest.raises(NotFound):
            browse.product_page(session, product_id)


class TestSellerPage:
    def test_profile_path_and_visible_listings(self, session, shop):
        detail = browse.seller_page(session, shop.yingde_farmer.id)
        assert detail.profile.shop_name == "英德茶园"
        assert [d.level.value for d in detail.path] == ["city", "county", "town", "village"]
        assert set(names(detail.products)) == {"英德红茶", "英德绿茶", "售罄的荔枝干"}

    def test_drafts_of_the_seller_are_not_listed(self, session, shop):
        listed = names(browse.seller_page(session, shop.meixian_farmer.id, limit=50).products)
        assert "草稿里的柚子" not in listed and "暂停的柚子" not in listed

    @pytest.mark.parametrize("seller_id", [0, 10**9, 2**40])
    def test_unknown_sellers_are_not_found(self, session, shop, seller_id):
        with pytest.raises(NotFound):
            browse.seller_page(session, seller_id)

    def test_a_user_without_a_seller_profile_is_not_found(self, session, shop, make_user):
        buyer = make_user(Role.BUYER)
        with pytest.raises(NotFound):
            browse.seller_page(session, buyer.id)


class TestSearchResultsPutWhatCanBeBoughtFirst:
    def test_a_sold_out_match_comes_after_available_ones_and_paging_still_sees_each_once(self, session, shop):
        # The shortest name is the best text match, but it is sold out.
        shop.add("荔枝", "citrus", 990, stock=0)
        for i in range(5):
            shop.add(f"增城挂绿荔枝礼盒{i}", "citrus", 2990 + i)
        first = browse.find_products(session, q="荔枝", limit=20).items
        flags = [c.sold_out for c in first]
        assert False in flags and True in flags
        assert flags == sorted(flags), "a sold-out product came before one that can be bought"
        pages = all_pages(session, 2, q="荔枝")
        seen = [c.id for page in pages for c in page]
        assert seen == [c.id for c in first]
