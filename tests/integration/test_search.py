"""Product search on the real database (run with TEST_DATABASE=sqlite and =postgresql): Chinese,
full pinyin and initials find the same products, ranked name over description, exact over partial,
Chinese and full pinyin over initials; typos are corrected; only active products show."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    Category,
    CategoryFlow,
    Division,
    DivisionLevel,
    Product,
    ProductStatus,
    Role,
    Unit,
    User,
)
from services import search

# Real counties (seed/data/divisions.csv); products come from their first village.
COUNTIES = {
    "增城": "440118",
    "番禺": "440113",
    "梅县": "441403",
    "连州": "441882",
    "英德": "441881",
    "徐闻": "440825",
    "博罗": "441322",
    "新会": "440705",
    "清城": "441802",
    "潮安": "445103",
}


@dataclass
class Shop:
    session: Session
    seller: User
    categories: dict[str, Category] = field(default_factory=dict)

    def category(self, name: str) -> Category:
        if name not in self.categories:
            cat = Category(
                slug=f"search-test-{len(self.categories)}", name=name, name_en=name, flow=CategoryFlow.FARM
            )
            self.session.add(cat)
            self.session.flush()
            self.categories[name] = cat
        return self.categories[name]

    def add(
        self,
        name: str,
        county: str = "增城",
        *,
        description: str = "",
        category: str = "水果",
        status: ProductStatus = ProductStatus.ACTIVE,
    ) -> Product:
        code = COUNTIES[county]
        product = Product(
            seller_id=self.seller.id,
            listed_by_id=self.seller.id,
            category_id=self.category(category).id,
            name=name,
            description=description,
            origin_code=self.village(code),
            county_code=code,
            unit=Unit.JIN,
            net_weight_g=500,
            price_fen=1990,
            stock=100,
            status=status,
        )
        self.session.add(product)
        self.session.flush()
        search.index_product(self.session, product)
        return product

    def village(self, county_code: str) -> str:
        return self.session.scalars(
            select(Division.code)
            .where(Division.level == DivisionLevel.VILLAGE, Division.code.startswith(county_code))
            .order_by(Division.code)
            .limit(1)
        ).one()

    def names(self, q: str, limit: int = 20) -> list[str]:
        return [p.name for p, _ in search.search_products(self.session, q, limit)]


@pytest.fixture()
def shop(session, make_user) -> Shop:  # type: ignore[no-untyped-def]
    return Shop(session, make_user(Role.FARMER, name="陈阿姨"))


@pytest.fixture()
def lychee_and_friends(shop: Shop) -> Shop:
    """A small market where the issue's examples collide: 荔枝 vs 连州 (lz), 菠萝 vs 博罗 (boluo)."""
    shop.add("增城挂绿荔枝", "增城", description="增城特产，果肉清甜")
    shop.add("从化糯米糍荔枝", "增城")
    shop.add("梅州金柚", "梅县", description="梅县金柚，皮薄多汁")
    shop.add("连州菜心", "连州", category="蔬菜")
    shop.add("徐闻菠萝", "徐闻")
    shop.add("博罗酸菜", "博罗", category="蔬菜")
    shop.add("菠萝蜜", "徐闻")
    return shop


class TestChineseFullPinyinAndInitials:
    @pytest.mark.parametrize("q", ["荔枝", "lizhi", "lz"])
    def test_lychee_typed_three_ways_finds_zengcheng_gualv(self, lychee_and_friends, q):
        assert "增城挂绿荔枝" in lychee_and_friends.names(q)

    @pytest.mark.parametrize("q", ["金柚", "jinyou"])
    def test_pomelo_in_chinese_and_pinyin_finds_meizhou_jinyou(self, lychee_and_friends, q):
        assert lychee_and_friends.names(q)[0] == "梅州金柚"

    def test_two_character_chinese_query(self, lychee_and_friends):
        # SQLite's trigram tokenizer could not match 2 characters; word tokens can.
        assert lychee_and_friends.names("菜心") == ["连州菜心"]
        assert lychee_and_friends.names("挂绿") == ["增城挂绿荔枝"]

    def test_full_width_and_upper_case_input(self, lychee_and_friends):
        assert "增城挂绿荔枝" in lychee_and_friends.names("ＬＩＺＨＩ")

    def test_pinyin_with_spaces_between_syllables(self, lychee_and_friends):
        assert "增城挂绿荔枝" in lychee_and_friends.names("li zhi")

    @pytest.mark.parametrize("q", ["zengchengg", "gualvli", "zcgl", "gllz"])
    def test_long_pinyin_and_initials_match_the_name_as_a_prefix(self, lychee_and_friends, q):
        assert lychee_and_friends.names(q) == ["增城挂绿荔枝"]

    @pytest.mark.parametrize("q", ["lv", "lu", "gualv", "gualu"])
    def test_lv_and_lu_both_spell_the_green_of_gualv(self, lychee_and_friends, q):
        assert "增城挂绿荔枝" in lychee_and_friends.names(q)

    def test_polyphone_in_a_place_name_changlong(self, shop):
        shop.add("长隆农场土鸡蛋", "番禺", category="禽蛋")
        assert shop.names("changlong") == ["长隆农场土鸡蛋"]
        # pypinyin's own reading (zhang) is not indexed: it is a typo, corrected.
        match = search.matches(shop.session, "zhanglong")
        assert match is not None and match.corrected == "changlong"
        assert shop.names("cl") == ["长隆农场土鸡蛋"]

    def test_origin_and_category_names_match_in_chinese_and_pinyin(self, lychee_and_friends):
        assert lychee_and_friends.names("梅县") == ["梅州金柚"]
        assert lychee_and_friends.names("meixian") == ["梅州金柚"]
        assert set(lychee_and_friends.names("蔬菜")) == {"连州菜心", "博罗酸菜"}


class TestDomainWords:
    def test_free_range_chicken_is_one_word(self, shop):
        shop.add("清远走地鸡", "清城", category="禽蛋")
        shop.add("土鸡蛋", "清城", category="禽蛋")
        match = search.matches(shop.session, "走地鸡")
        assert match is not None and "走地鸡" in match.terms
        assert shop.names("走地鸡") == ["清远走地鸡"]

    def test_dancong_tea_is_one_word(self, shop):
        shop.add("潮州单丛茶 鸭屎香", "潮安", category="茶叶")
        shop.add("英德红茶", "英德", category="茶叶")
        assert shop.names("单丛茶") == ["潮州单丛茶 鸭屎香"]
        assert shop.names("单丛") == ["潮州单丛茶 鸭屎香"]
        assert shop.names("dancong") == ["潮州单丛茶 鸭屎香"]

    def test_farmhouse_choy_sum_is_not_split_into_heart(self, shop):
        shop.add("心里美萝卜", "增城", category="蔬菜")
        shop.add("农家菜心", "增城", category="蔬菜")
        shop.add("农家自种菜心", "增城", category="蔬菜")
        names = shop.names("农家菜心")
        assert names[0] == "农家菜心"
        # 农家 + 菜心 still finds the longer name; 心 alone finds nothing.
        assert names == ["农家菜心", "农家自种菜心"]


class TestRanking:
    def test_chinese_and_full_pinyin_rank_lychee_above_lianzhou_while_initials_find_both(
        self, lychee_and_friends
    ):
        for q in ("荔枝", "lizhi"):
            names = lychee_and_friends.names(q)
            assert set(names[:2]) == {"增城挂绿荔枝", "从化糯米糍荔枝"}
            assert "连州菜心" not in names
        assert {"增城挂绿荔枝", "从化糯米糍荔枝", "连州菜心"} <= set(lychee_and_friends.names("lz"))

    def test_initials_find_every_lz_word_full_pinyin_only_the_lychee(self, shop):
        lianzhou = shop.add("连州菜心", "连州", category="蔬菜")
        bamboo = shop.add("绿竹笋", "连州", category="蔬菜")  # 绿竹: lz as well
        lychee = shop.add("荔枝", "增城")
        assert {p.id for p, _ in search.search_products(shop.session, "lz")} == {
            lianzhou.id,
            bamboo.id,
            lychee.id,
        }
        assert [p.id for p, _ in search.search_products(shop.session, "lizhi")] == [lychee.id]

    def test_an_exact_word_ranks_above_initials(self, shop):
        shop.add("连州菜心", "连州", category="蔬菜")
        shop.add("LZ牌复合肥", "连州", category="农资")
        assert shop.names("lz") == ["LZ牌复合肥", "连州菜心"]

    def test_boluo_is_pineapple_and_bolo_county_but_chinese_ranks_pineapple_first(self, lychee_and_friends):
        assert {"徐闻菠萝", "博罗酸菜"} <= set(lychee_and_friends.names("boluo"))
        names = lychee_and_friends.names("菠萝")
        # 菠萝 is the head of 徐闻菠萝 (a pineapple) but only a part of 菠萝蜜 (a jackfruit).
        assert names[0] == "徐闻菠萝"
        assert "博罗酸菜" not in names

    def test_name_match_ranks_above_description_match(self, shop):
        in_description = shop.add("龙眼干", "增城", description="比荔枝还甜的桂圆")
        in_name = shop.add("荔枝干", "增城")
        ranked = search.search_products(shop.session, "荔枝")
        assert [p.id for p, _ in ranked] == [in_name.id, in_description.id]
        assert ranked[0][1] > ranked[1][1]

    def test_exact_word_ranks_above_longer_names_and_prefixes(self, shop):
        longer = shop.add("连州菜心", "连州", category="蔬菜")
        exact = shop.add("菜心", "增城", category="蔬菜")
        ranked = [p.id for p, _ in search.search_products(shop.session, "菜心")]
        assert ranked == [exact.id, longer.id]
        part = shop.add("金柚子", "梅县")  # 金柚 is a word inside 金柚子, not its head
        word = shop.add("金柚", "梅县")
        ranked = [p.id for p, _ in search.search_products(shop.session, "金柚")]
        assert ranked == [word.id, part.id]

    def test_rank_is_an_integer_key_stable_across_calls(self, lychee_and_friends):
        session = lychee_and_friends.session
        first = search.matches(session, "lz")
        second = search.matches(session, "lz")
        assert first is not None and second is not None
        rows1 = session.execute(select(first.subquery.c.product_id, first.subquery.c.rank)).all()
        rows2 = session.execute(select(second.subquery.c.product_id, second.subquery.c.rank)).all()
        assert sorted(rows1) == sorted(rows2) and all(isinstance(r, int) for _, r in rows1)


class TestRankOrderedPostings:
    """A one-word query with many exact matches reads them off the postings index; the same ranks."""

    @pytest.fixture()
    def posted(self, monkeypatch):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(search.query, "POSTED_ENOUGH", 1)

    @pytest.mark.parametrize(
        "q", ["荔枝", "lizhi", "lz", "boluo", "菠萝", "梅县", "meixian", "蔬菜", "jinyou"]
    )
    def test_same_exact_matches_and_ranks_as_the_full_path(self, lychee_and_friends, monkeypatch, q):
        session = lychee_and_friends.session

        def ranks() -> dict[int, int]:
            match = search.matches(session, q)
            assert match is not None
            return dict(
                session.execute(select(match.subquery.c.product_id, match.subquery.c.rank)).tuples().all()
            )

        full = ranks()
        monkeypatch.setattr(search.query, "POSTED_ENOUGH", 1)
        posted = ranks()
        assert posted and all(full[pid] == rank for pid, rank in posted.items())
        # Only weaker matches (below every exact one) may be left out.
        left_out = set(full) - set(posted)
        assert all(full[pid] < min(posted.values()) for pid in left_out)

    def test_reindex_and_removal_update_the_postings(self, shop, posted):
        product = shop.add("增城挂绿荔枝", "增城")
        other = shop.add("从化荔枝", "增城")
        assert shop.names("荔枝") == ["从化荔枝", "增城挂绿荔枝"]
        product.name = "梅州金柚"
        search.index_product(shop.session, product)
        assert shop.names("荔枝") == ["从化荔枝"] and shop.names("金柚") == ["梅州金柚"]
        search.remove_product(shop.session, other.id)
        assert shop.names("lizhi") == []
        search.rebuild_index(shop.session)
        assert shop.names("jinyou") == ["梅州金柚"]


class TestTypos:
    @pytest.mark.parametrize(
        ("typo", "fixed", "name"), [("lizji", "lizhi", "增城挂绿荔枝"), ("jinyuo", "jinyou", "梅州金柚")]
    )
    def test_a_pinyin_typo_is_corrected_when_nothing_matches(self, lychee_and_friends, typo, fixed, name):
        match = search.matches(lychee_and_friends.session, typo)
        assert match is not None and match.corrected == fixed
        assert name in lychee_and_friends.names(typo)

    def test_no_correction_when_the_query_matches(self, lychee_and_friends):
        match = search.matches(lychee_and_friends.session, "lizhi")
        assert match is not None and match.corrected is None

    def test_nothing_close_enough_finds_nothing(self, lychee_and_friends):
        match = search.matches(lychee_and_friends.session, "qwxyzk")
        assert match is not None and match.corrected is None
        assert lychee_and_friends.names("qwxyzk") == []


class TestVisibilityAndIndexing:
    def test_paused_draft_and_sold_out_products_do_not_appear(self, shop):
        shop.add("增城挂绿荔枝", "增城")
        for status in (ProductStatus.PAUSED, ProductStatus.DRAFT, ProductStatus.SOLD_OUT):
            shop.add(f"从化荔枝{status.value}", "增城", status=status)
        assert shop.names("荔枝") == ["增城挂绿荔枝"]
        assert search.suggest(shop.session, "荔") == ["增城挂绿荔枝"]

    def test_matches_holds_every_status_for_the_caller_to_filter(self, shop):
        paused = shop.add("增城荔枝", "增城", status=ProductStatus.PAUSED)
        match = search.matches(shop.session, "荔枝")
        assert match is not None
        assert shop.session.scalars(select(match.subquery.c.product_id)).all() == [paused.id]

    def test_reindexing_after_an_edit_forgets_the_old_name(self, shop):
        product = shop.add("增城挂绿荔枝", "增城")
        product.name = "梅州金柚"
        search.index_product(shop.session, product)
        assert shop.names("荔枝") == [] and shop.names("jinyou") == ["梅州金柚"]

    def test_removed_product_is_not_found(self, shop):
        product = shop.add("增城挂绿荔枝", "增城")
        search.remove_product(shop.session, product.id)
        assert shop.names("荔枝") == []

    def test_rebuild_indexes_every_product(self, shop):
        shop.add("增城挂绿荔枝", "增城")
        shop.add("梅州金柚", "梅县")
        total = shop.session.scalar(select(Product.id).order_by(Product.id.desc()).limit(1))
        assert total is not None
        assert search.rebuild_index(shop.session) >= 2
        assert shop.names("lz") == ["增城挂绿荔枝"] and shop.names("jinyuo") == ["梅州金柚"]

    def test_empty_or_punctuation_only_query_is_none(self, session):
        assert search.matches(session, "") is None
        assert search.matches(session, " ，。！ ") is None
        assert search.search_products(session, "？？") == []


class TestSuggest:
    def test_chinese_pinyin_prefix_and_initials(self, lychee_and_friends):
        session = lychee_and_friends.session
        assert set(search.suggest(session, "荔")) == {"增城挂绿荔枝", "从化糯米糍荔枝"}
        assert set(search.suggest(session, "liz")) == {"增城挂绿荔枝", "从化糯米糍荔枝"}
        assert search.suggest(session, "jiny") == ["梅州金柚"]
        assert search.suggest(session, "zcg") == ["增城挂绿荔枝"]
        assert search.suggest(session, "增城挂") == ["增城挂绿荔枝"]

    def test_one_latin_letter_suggests_nothing_yet_and_limit_holds(self, lychee_and_friends):
        session = lychee_and_friends.session
        assert search.suggest(session, "l") == []
        assert len(search.suggest(session, "lz", limit=1)) == 1

    def test_from_the_postings_when_a_prefix_has_many(self, lychee_and_friends, monkeypatch):
        monkeypatch.setattr(search.query, "POSTED_ENOUGH", 1)
        session = lychee_and_friends.session
        assert set(search.suggest(session, "荔")) == {"增城挂绿荔枝", "从化糯米糍荔枝"}
        assert set(search.suggest(session, "liz")) == {"增城挂绿荔枝", "从化糯米糍荔枝"}
        assert search.suggest(session, "jiny") == ["梅州金柚"]
        assert search.suggest(session, "zcg") == ["增城挂绿荔枝"]  # the initials of 增城挂绿

    def test_same_name_from_many_sellers_is_suggested_once(self, shop):
        shop.add("增城挂绿荔枝", "增城")
        shop.add("增城挂绿荔枝", "增城")
        assert search.suggest(shop.session, "gualv") == ["增城挂绿荔枝"]


class TestHighlightTerms:
    def test_pinyin_and_initials_queries_highlight_the_chinese_words(self, lychee_and_friends):
        session = lychee_and_friends.session
        for q in ("lizhi", "lz", "荔枝"):
            match = search.matches(session, q)
            assert match is not None and "荔枝" in match.terms, q
            assert "<mark>荔枝</mark>" in search.highlight("增城挂绿荔枝", match.terms)
        match = search.matches(session, "lv")
        assert match is not None
        assert search.highlight("增城挂绿荔枝", match.terms) == "增城挂<mark>绿</mark>荔枝"


class TestApi:
    def test_search_returns_ranked_products_with_highlighted_names(self, client, lychee_and_friends):
        resp = client.get("/api/v1/search?q=lizhi&limit=5")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["corrected"] is None
        first = body["products"][0]
        assert first["name"] in ("增城挂绿荔枝", "从化糯米糍荔枝")
        assert "<mark>荔枝</mark>" in first["name_html"]
        assert first["county_name"] == "增城区" and first["unit"] == "jin" and first["price_fen"] == 1990
        ranks = [p["rank"] for p in body["products"]]
        assert ranks == sorted(ranks, reverse=True)

    def test_search_escapes_html_in_names_and_reports_the_correction(self, client, shop):
        shop.add("<b>增城</b>荔枝", "增城")
        body = client.get("/api/v1/search?q=lizji").get_json()
        assert body["corrected"] == "lizhi"
        assert body["products"][0]["name_html"] == "&lt;b&gt;增城&lt;/b&gt;<mark>荔枝</mark>"

    def test_suggest_returns_a_list_of_names(self, client, lychee_and_friends):
        resp = client.get("/api/v1/search/suggest?q=jiny")
        assert resp.status_code == 200
        assert resp.get_json() == ["梅州金柚"]

    @pytest.mark.parametrize(
        "url",
        [
            "/api/v1/search?q=" + "荔" * 51,
            "/api/v1/search?q=lizhi&limit=0",
            "/api/v1/search?q=lizhi&limit=51",
            "/api/v1/search",
            "/api/v1/search/suggest?q=" + "x" * 51,
        ],
    )
    def test_bad_input_is_a_422_json_error(self, client, url):
        resp = client.get(url)
        assert resp.status_code == 422
        assert resp.get_json()["code"] == "validation_error"

    def test_documented_in_openapi(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        assert "/api/v1/search" in paths and "/api/v1/search/suggest" in paths


class TestInitialsPreferProductWords:
    def test_lz_ranks_lychee_above_products_named_after_lianzhou(self, shop):
        place = shop.add("连州菜心", "连州", category="蔬菜")
        lychee = shop.add("增城挂绿荔枝")
        ranked = [p.id for p, _ in search.search_products(shop.session, "lz")]
        assert lychee.id in ranked and place.id in ranked
        assert ranked.index(lychee.id) < ranked.index(place.id)
