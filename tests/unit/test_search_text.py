"""The language work of search, without a database: normalisation, segmentation with the domain
word list, pinyin with its fixes, documents, query parsing, typo keys and highlighting."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.config import PROJECT_ROOT
from services.search import text
from services.search.text import (
    CHARS,
    INITIALS,
    NAME,
    PARTS,
    PINYIN,
    PLACES,
    SYLLABLES,
    build_document,
    parse_query,
)


class TestNormalize:
    def test_full_width_upper_case_and_tone_marks(self):
        assert text.normalize("ＬＩＺＨＩ　荔枝") == "lizhi 荔枝"
        assert text.normalize("Lǜ") == "lv"
        assert text.normalize("lü") == "lv"
        assert text.normalize("lìzhī") == "lizhi"

    def test_runs_split_ideographs_from_latin_and_drop_punctuation(self):
        assert text.runs(text.normalize("增城挂绿荔枝（5斤装）!")) == ["增城挂绿荔枝", "5", "斤装"]


class TestDomainWords:
    @pytest.mark.parametrize("word", ["农家菜心", "走地鸡", "单丛茶", "凤凰单丛", "化州橘红", "客家娘酒"])
    def test_jieba_keeps_domain_words_whole(self, word):
        assert word in text.cut(f"清远{word}")

    def test_default_dictionary_alone_would_split_them(self):
        import jieba

        plain = jieba.Tokenizer()
        assert "走地鸡" not in plain.lcut("清远走地鸡", HMM=False)
        assert plain.lcut("农家菜心", HMM=False) == ["农家菜", "心"]

    def test_search_mode_adds_the_words_inside(self):
        assert set(text.cut_for_search("农家菜心")) >= {"农家", "菜心", "农家菜心"}

    def test_every_guangdong_city_county_and_town_is_in_the_word_list(self):
        with (PROJECT_ROOT / "seed" / "data" / "divisions.csv").open(encoding="utf-8") as f:
            wanted = text.place_words((r["level"], r["name"]) for r in csv.DictReader(f))
        missing = sorted(wanted - text.lexicon().places)
        assert not missing, f"add to the [places] section of {text.WORDS_FILE.name}: {missing[:20]}"
        assert {"增城", "梅州", "连州", "博罗", "徐闻", "英德", "新会", "化州", "从化"} <= wanted

    @pytest.mark.parametrize(
        ("name", "stem"),
        [
            ("增城区", "增城"),
            ("梅县区", "梅县"),
            ("连南瑶族自治县", "连南"),
            ("连山壮族瑶族自治县", "连山"),
            ("大黄村委会", "大黄"),
            ("东门社区居委会", "东门"),
            ("城区", "城区"),
            ("新塘镇", "新塘"),
        ],
    )
    def test_place_stems(self, name, stem):
        assert text.place_stem(name) == stem


class TestPinyin:
    @pytest.mark.parametrize(
        ("word", "pinyin"),
        [
            ("荔枝", "lizhi"),
            ("金柚", "jinyou"),
            ("长隆", "changlong"),  # pypinyin says zhanglong
            ("佛冈", "fogang"),  # pypinyin says fugang
            ("都斛", "duhu"),  # pypinyin says douhu
            ("麻涌", "machong"),  # a Cantonese 涌 (stream), pypinyin says mayong
            ("新圩", "xinxu"),  # a market town 圩, pypinyin says xinwei
            ("花都", "huadu"),
            ("塘厦", "tangxia"),
            ("单丛", "dancong"),
            ("番禺", "panyu"),
            ("大埔", "dabu"),
        ],
    )
    def test_readings_including_place_name_polyphones(self, word, pinyin):
        assert "".join(text.syllables(word)) == pinyin

    def test_lv_has_a_u_spelling_too(self):
        assert text.full_pinyin(text.syllables("挂绿")) == ("gualv", "gualu")
        assert text.initials(text.syllables("挂绿")) == "gl"

    @pytest.mark.parametrize(
        ("typed", "split"),
        [
            ("lizhi", ("li", "zhi")),
            ("changlong", ("chang", "long")),
            ("xian", ("xian",)),
            ("lv", ("lv",)),
            ("lz", None),
            ("zcglz", None),
            ("li5", None),
        ],
    )
    def test_syllable_splitter(self, typed, split):
        assert text.split_syllables(typed) == split


class TestDocument:
    def test_fields_of_a_name(self):
        doc = build_document("增城挂绿荔枝", "果肉清甜", ["水果", "增城区", "新塘镇"])
        assert {"增城挂绿", "荔枝", "挂绿"} <= set(doc.fields[NAME])
        assert {"增城", "挂绿", "荔枝"} <= set(doc.fields[PARTS])
        assert {"lizhi", "gualv", "gualu", "zengchenggualvlizhi", "gualvlizhi"} <= set(doc.fields[PINYIN])
        assert {"lz", "gl", "zcgllz", "gllz"} <= set(doc.fields[INITIALS])
        assert {"lv", "lu", "li", "zhi"} <= set(doc.fields[SYLLABLES])
        assert set(doc.fields[CHARS]) == set("增城挂绿荔枝")
        assert {"增城", "zengcheng", "增城区", "区", "新塘", "水果", "shuiguo"} <= set(doc.fields[PLACES])
        assert "果肉" in doc.fields["body"]
        assert doc.name_len == 6
        assert doc.text(NAME).startswith(" ") and doc.text(NAME).endswith(" ")

    def test_a_head_is_an_exact_word_a_part_is_not(self):
        assert "菠萝" in build_document("徐闻菠萝").fields[NAME]
        jackfruit = build_document("菠萝蜜")
        assert "菠萝" not in jackfruit.fields[NAME] and "菠萝" in jackfruit.fields[PARTS]
        assert "boluo" not in jackfruit.fields[PINYIN]

    def test_postings_rank_exact_tokens_by_field_then_name_length(self):
        doc = build_document("增城挂绿荔枝", "", ["水果", "增城区"], ["大埔村委会"])
        ranks = dict(doc.postings())
        assert ranks["荔枝"] == text.W_NAME * text.RANK_SCALE - 6
        assert ranks["lizhi"] == text.W_PINYIN * text.RANK_SCALE - 6
        assert ranks["增城"] == text.W_PART * text.RANK_SCALE - 6  # a part of the name beats the place
        assert ranks["lz"] == text.W_INITIALS * text.RANK_SCALE - 6
        assert ranks["水果"] == text.W_PLACE * text.RANK_SCALE - 6
        # Only searchable, not posted: the name's pinyin tails, the village, the suffix 区.
        assert {"zengchenggualvlizhi", "大埔", "区"}.isdisjoint(ranks)
        assert {"zengchenggualvlizhi", "大埔", "区"} <= {t for f in doc.fields.values() for t in f}

    def test_vocabulary_maps_pinyin_back_to_chinese(self):
        words = build_document("增城挂绿荔枝").words
        assert ("荔枝", "lizhi", "lz") in words and ("绿", "lu", "l") in words

    @given(st.text(max_size=80))
    def test_any_text_gives_tokens_safe_for_fts5_and_tsvector(self, s):
        doc = build_document(s, s, [s])
        for tokens in doc.fields.values():
            for token in tokens:
                assert (
                    token and " " not in token and "'" not in token and '"' not in token and "\\" not in token
                )


class TestQuery:
    def test_chinese_query_words(self):
        q = parse_query("增城挂绿荔枝")
        assert [t.text for t in q.terms] == ["增城挂绿", "荔枝"]

    def test_stopwords_drop_when_something_else_is_asked(self):
        assert parse_query("我想买荔枝").text == "荔枝"

    def test_syllables_typed_apart_join(self):
        assert parse_query("li zhi").text == "lizhi"
        assert parse_query("lizhi jinyou").text == "lizhi jinyou"

    def test_exact_chinese_and_full_pinyin_weigh_more_than_initials(self):
        chinese = parse_query("荔枝").terms[0].alts[0]
        pinyin = next(a for a in parse_query("lizhi").terms[0].alts if a.conds[0].field == PINYIN)
        initials = next(a for a in parse_query("lz").terms[0].alts if a.conds[0].field == INITIALS)
        assert chinese.weight > pinyin.weight > initials.weight

    def test_farmhouse_choy_sum_query_falls_back_to_its_parts_not_to_heart(self):
        alts = parse_query("农家菜心").terms[0].alts
        assert any({c.token for c in a.conds} == {"农家", "菜心"} for a in alts)
        assert all(len(a.conds) > 1 or a.conds[0].token != "心" for a in alts)

    def test_nothing_searchable(self):
        assert parse_query(" ，。！？ ").terms == ()

    def test_long_queries_are_bounded(self):
        assert len(parse_query("荔枝 " * 100).terms) <= text.MAX_TERMS
        assert len(parse_query("abcdefghij" * 50).text) <= text.MAX_QUERY_CHARS


class TestTypoKeys:
    @pytest.mark.parametrize(
        ("typo", "word"),
        [
            ("lizji", "lizhi"),
            ("jinyuo", "jinyou"),
            ("lizh", "lizhi"),
            ("lizhii", "lizhi"),
            ("zengcehng", "zengcheng"),
            ("zenchen", "zengcheng"),
        ],
    )
    def test_a_typo_and_its_word_share_a_key_and_are_close(self, typo, word):
        assert text.deletion_keys(typo) & text.deletion_keys(word)
        assert text.edit_distance(typo, word) <= text.max_typo_distance(typo)

    def test_best_correction_prefers_fewest_edits_then_a_neighbouring_key(self):
        # j is next to h on the keyboard, u is not next to z: lizji was meant to be lizhi.
        assert text.correction_candidates("lizji", ["liuji", "liji", "lizhi", "zhongguo"]) == [
            "lizhi",
            "liji",
            "liuji",
        ]
        assert text.best_correction("lizji", ["zhongguo"]) is None
        assert text.typo_cost("jinyuo", "jinyou") == (1, 0)  # a transposition is one slip

    def test_edit_distance(self):
        assert text.edit_distance("jinyuo", "jinyou") == 1  # a transposition
        assert text.edit_distance("", "abc") == 3
        assert text.edit_distance("abc", "abc") == 0


class TestHighlight:
    def test_escapes_html_and_marks_terms(self):
        assert (
            str(text.highlight('<script>alert("荔枝")</script>增城荔枝', ["荔枝"]))
            == "&lt;script&gt;alert(&#34;<mark>荔枝</mark>&#34;)&lt;/script&gt;增城<mark>荔枝</mark>"
        )

    def test_longest_term_wins_and_no_terms_is_plain_escaping(self):
        assert str(text.highlight("增城挂绿荔枝", ["挂绿", "增城挂绿"])) == "<mark>增城挂绿</mark>荔枝"
        assert str(text.highlight("a<b", [])) == "a&lt;b"
