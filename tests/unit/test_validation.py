"""Input rules shared by services, forms and the API: no database."""

from __future__ import annotations

import re

import pytest

from services.errors import ValidationError
from services.validation import (
    ID_DIGITS,
    MAX_ID,
    check_opening_hours,
    check_password,
    check_text,
    digits_up_to,
    id_or_none,
    mask_phone,
    normalize_contact_phone,
    normalize_phone,
    parse_id,
    parse_int,
)


class TestNormalizePhone:
    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("13812345678", "13812345678"),
            ("138 1234 5678", "13812345678"),
            ("138-1234-5678", "13812345678"),
            ("+8613812345678", "13812345678"),
            ("+86 138 1234 5678", "13812345678"),
            ("008613812345678", "13812345678"),
            ("１３８１２３４５６７８", "13812345678"),  # full-width digits from a Chinese keyboard
            (" 19912345678 ", "19912345678"),
        ],
    )
    def test_accepts_what_people_type_and_returns_eleven_ascii_digits(self, typed, stored):
        assert normalize_phone(typed) == stored

    @pytest.mark.parametrize(
        "typed",
        [
            "",
            None,
            "1381234567",  # 10 digits
            "138123456789",  # 12 digits
            "12812345678",  # second digit 2
            "10812345678",
            "23812345678",  # not starting with 1
            "1381234567a",
            "138١٢٣٤٥٦٧٨",  # Arabic-Indic digits are digits to Python, not to a phone network
            "+85291234567",  # a Hong Kong number
            "0753-2222333",  # a landline
        ],
    )
    def test_refuses_anything_else_with_a_message_on_the_phone_field(self, typed):
        with pytest.raises(ValidationError) as exc:
            normalize_phone(typed)
        assert list(exc.value.field_errors) == ["phone"]
        assert "11" in str(exc.value.message)


class TestMaskPhone:
    @pytest.mark.parametrize(
        ("phone", "masked"),
        [
            ("13812345678", "138****5678"),
            ("0753-2222333", "075******333"),
            ("12345", "*****"),
            ("", ""),
            (None, ""),
        ],
    )
    def test_hides_the_middle(self, phone, masked):
        assert mask_phone(phone) == masked


class TestNormalizeContactPhone:
    @pytest.mark.parametrize("typed", ["13812345678", "0753-2222333", "07532222333", "020-12345678", ""])
    def test_accepts_mobiles_landlines_and_nothing(self, typed):
        assert normalize_contact_phone(typed) == typed

    @pytest.mark.parametrize("typed", ["12345", "0753-22", "phone", "٠٧٥٣-٢٢٢٢٣٣٣"])
    def test_refuses_the_rest_on_the_given_field(self, typed):
        with pytest.raises(ValidationError) as exc:
            normalize_contact_phone(typed, field="contact")
        assert list(exc.value.field_errors) == ["contact"]


class TestCheckPassword:
    def test_accepts_eight_to_128_characters(self):
        assert check_password("nongye-2026") == "nongye-2026"
        assert check_password("x" * 128) == "x" * 128

    @pytest.mark.parametrize("password", [None, "", "short", "x" * 129, "11111111", "12121212"])
    def test_refuses_short_long_and_trivial_passwords(self, password):
        with pytest.raises(ValidationError) as exc:
            check_password(password)
        assert list(exc.value.field_errors) == ["password"]


class TestCheckText:
    def test_trims(self):
        assert check_text("  梅县 ", "name", max_len=10) == "梅县"

    @pytest.mark.parametrize(
        ("raw", "kwargs"),
        [
            ("", {"required": True}),
            ("   ", {"required": True}),
            ("名" * 11, {}),
            ("a\x00b", {}),
            ("<script>alert(1)</script>", {}),
        ],
    )
    def test_refuses_empty_required_too_long_control_characters_and_html(self, raw, kwargs):
        with pytest.raises(ValidationError) as exc:
            check_text(raw, "name", max_len=10, **kwargs)
        assert list(exc.value.field_errors) == ["name"]

    def test_a_lone_angle_bracket_is_fine(self):
        assert check_text("1 < 2", "name", max_len=10) == "1 < 2"


class TestCheckOpeningHours:
    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("08:00-20:00", "08:00-20:00"),
            ("08：00—20：00", "08:00-20:00"),
            ("０８:００-２０:００", "08:00-20:00"),
            ("", ""),
        ],
    )
    def test_accepts_and_normalizes(self, typed, stored):
        assert check_opening_hours(typed) == stored

    @pytest.mark.parametrize("typed", ["8-20", "25:00-26:00", "20:00-08:00", "08:00-08:00", "0٨:00-20:00"])
    def test_refuses_bad_hours(self, typed):
        with pytest.raises(ValidationError) as exc:
            check_opening_hours(typed)
        assert list(exc.value.field_errors) == ["opening_hours"]


class TestParseId:
    """Ids as URLs, forms, query strings and JSON carry them: one rule for all of them."""

    @pytest.mark.parametrize(
        ("sent", "value"),
        [(1, 1), ("1", 1), (" 42 ", 42), ("１２", 12), (MAX_ID, MAX_ID), (str(MAX_ID), MAX_ID)],
    )
    def test_accepts_a_positive_id_that_fits_the_column(self, sent, value):
        assert parse_id(sent) == value

    @pytest.mark.parametrize(
        "sent",
        [
            2**64,
            str(2**64),
            10**30,
            "1" + "0" * 30,
            MAX_ID + 1,
            str(MAX_ID + 1),
            "²",  # isdigit() is True, int() fails
            "①",
            "١٢",  # Arabic-Indic digits: int() reads them, an id never has them
            "-1",
            -1,
            "0",
            0,
            "1e3",
            1e3,
            "1.0",
            "",
            None,
            True,
            "0x10",
            "1_000",
            [1],
        ],
    )
    def test_refuses_everything_else_with_a_field_error(self, sent):
        with pytest.raises(ValidationError) as err:
            parse_id(sent, "product_id")
        assert err.value.field_errors == {"product_id": [err.value.message]}

    def test_id_or_none_is_none_for_what_is_not_an_id(self):
        assert id_or_none("7") == 7
        assert id_or_none(str(2**64)) is None
        assert id_or_none("²") is None
        assert id_or_none(None) is None


class TestParseInt:
    @pytest.mark.parametrize(("sent", "value"), [("3", 3), (" 999 ", 999), ("０", 0), (5, 5), ("007", 7)])
    def test_accepts_whole_numbers_in_bounds(self, sent, value):
        assert parse_int(sent, "quantity", minimum=0, maximum=999) == value

    @pytest.mark.parametrize(
        "sent", ["²", "①", "١", "1e3", "1.5", "", None, True, 1.0, "+1", "--1", "1 000", str(2**64)]
    )
    def test_refuses_what_is_not_a_whole_number(self, sent):
        with pytest.raises(ValidationError) as err:
            parse_int(sent, "quantity", minimum=1, maximum=999)
        assert "quantity" in err.value.field_errors

    @pytest.mark.parametrize("sent", ["0", "-1", "1000", 2**64, -(2**64), "99999999999999999999"])
    def test_refuses_numbers_out_of_bounds_saying_the_bounds(self, sent):
        with pytest.raises(ValidationError) as err:
            parse_int(sent, "quantity", minimum=1, maximum=999)
        assert "1" in str(err.value.message) and "999" in str(err.value.message)


@pytest.mark.parametrize("limit", [1, 9, 10, 12, 99, 100, 101, 307, 1000, 2047])
def test_digits_up_to_matches_exactly_the_numbers_one_to_the_limit(limit):
    pattern = re.compile(digits_up_to(limit))
    matched = {n for n in range(0, limit * 10 + 2) if pattern.fullmatch(str(n))}
    assert matched == set(range(1, limit + 1))
    assert not pattern.fullmatch("0" + str(limit))  # no leading zeros


def test_the_id_pattern_is_the_id_range():
    pattern = re.compile(ID_DIGITS)
    assert pattern.fullmatch(str(MAX_ID)) and pattern.fullmatch("1") and pattern.fullmatch("2147483639")
    assert not any(
        pattern.fullmatch(s) for s in ("0", str(MAX_ID + 1), "2147483650", "3000000000", str(2**64), "²")
    )
