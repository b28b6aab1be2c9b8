from hypothesis import given
from hypothesis import strategies as st

from marketplace.formatting import money
from services.i18n import _, install_translator


class TestMoney:
    def test_fen_become_yuan_with_two_decimals(self):
        assert money(1250) == "¥12.50"
        assert money(5) == "¥0.05"
        assert money(0) == "¥0.00"
        assert money(123456789) == "¥1,234,567.89"

    def test_negative_amounts_keep_their_sign(self):
        assert money(-1250) == "-¥12.50"

    def test_none_renders_empty(self):
        assert money(None) == ""

    @given(st.integers(min_value=-(10**12), max_value=10**12))
    def test_the_shown_amount_parses_back_to_the_same_fen(self, fen):
        shown = money(fen)
        negative = shown.startswith("-")
        digits = shown.lstrip("-").lstrip("¥").replace(",", "")
        yuan, cents = digits.split(".")
        back = int(yuan) * 100 + int(cents)
        assert (-back if negative else back) == fen


class TestLazyServiceMessages:
    def test_messages_are_translated_when_rendered_not_when_made(self):
        message = _("Not found.")
        install_translator(lambda s: {"Not found.": "未找到。"}.get(s, s))
        try:
            assert str(message) == "未找到。"
        finally:
            install_translator(lambda s: s)
        assert str(message) == "Not found."

    def test_placeholders_are_filled_after_translation(self):
        install_translator(lambda s: "最多%(n)d个字符。" if s.startswith("At most") else s)
        try:
            assert str(_("At most %(n)d characters.", n=40)) == "最多40个字符。"
        finally:
            install_translator(lambda s: s)


class TestDivisionNames:
    def test_village_committee_names_are_shortened_as_people_say_them(self):
        from domain import Division, DivisionLevel

        def village(name: str) -> Division:
            return Division(code="441403100001", name=name, level=DivisionLevel.VILLAGE)

        assert village("长教村委会").short_name == "长教村"
        assert village("义容村村民委员会").short_name == "义容村"
        assert village("东门社区居委会").short_name == "东门社区"
        assert village("义容村村民委员会").is_rural_village
        assert not village("东门社区居委会").is_rural_village


def test_amounts_in_service_messages_are_exact_yuan():
    from services.i18n import yuan_text

    assert yuan_text(99_999_999) == "¥999,999.99"
    assert yuan_text(5) == "¥0.05"
    assert yuan_text(-1050) == "-¥10.50"
