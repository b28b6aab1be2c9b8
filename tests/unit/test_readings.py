"""Temperature readings and excursions (services/logistics/readings.py): no database."""

from __future__ import annotations

import codecs
import contextlib
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import StorageClass
from services.errors import ValidationError
from services.logistics import readings as R
from services.logistics.readings import BadReadings, Excursion, Limits, Reading

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in China
T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00 in China


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def series(temps_c: list[float], *, every: int = 5, logger: str = "TL-01") -> list[Reading]:
    return [Reading(logger, at(i * every), round(t * 10)) for i, t in enumerate(temps_c)]


def messages(parsed) -> list[tuple[int, str]]:
    return [(getattr(e, "row", None) or getattr(e, "index", None), str(e.message)) for e in parsed.errors]


class TestCsvEncodings:
    GBK_TEXT = "记录仪编号,记录时间,温度(℃)\n冷藏车-01,2026/11/26 9:05,3.5\n冷藏车-01,2026/11/26 9:10,-1.2\n"

    def test_gbk_with_chinese_headers_reads_and_local_times_become_utc(self):
        parsed = R.parse_csv(self.GBK_TEXT.encode("gbk"), now=NOW)
        assert parsed.errors == []
        assert parsed.readings == [
            Reading("冷藏车-01", datetime(2026, 11, 26, 1, 5, tzinfo=UTC), 35),
            Reading("冷藏车-01", datetime(2026, 11, 26, 1, 10, tzinfo=UTC), -12),
        ]

    def test_gb18030_only_characters_read(self):
        text = "设备编号,时间,温度\n𠀀号,2026-11-26 09:05,3\n"  # a character GBK lacks
        parsed = R.parse_csv(text.encode("gb18030"), now=NOW)
        assert [r.logger_id for r in parsed.readings] == ["𠀀号"]

    def test_utf8_with_bom_reads(self):
        data = codecs.BOM_UTF8 + "设备编号,时间,温度\nTL-01,2026-11-26 09:05:00,4.0\n".encode()
        parsed = R.parse_csv(data, now=NOW)
        assert parsed.readings == [Reading("TL-01", datetime(2026, 11, 26, 1, 5, tzinfo=UTC), 40)]

    def test_utf8_without_bom_and_english_headers_with_units(self):
        data = b"Logger ID,Time,Temperature (\xc2\xb0C)\nTL-01,2026-11-26T09:05:00+08:00,-18.5\n"
        parsed = R.parse_csv(data, now=NOW)
        assert parsed.readings == [Reading("TL-01", datetime(2026, 11, 26, 1, 5, tzinfo=UTC), -185)]

    def test_utf16_tab_separated_unicode_text_from_excel(self):
        data = "记录仪编号\t时间\t温度\nTL-01\t2026/11/26 09:05\t2.5\n".encode("utf-16")
        assert R.parse_csv(data, now=NOW).readings == [Reading("TL-01", at(65), 25)]

    def test_full_width_brackets_title_lines_and_extra_columns(self):
        text = (
            "冷链温度记录报表\n导出时间：2026-11-26\n\n"
            "序号,设备号,采集时间,温度（℃）,湿度(%RH)\n1,TL-01,2026年11月26日 9时05分,3.0,80\n"
        )
        parsed = R.parse_csv(text.encode("gbk"), now=NOW)
        assert parsed.readings == [Reading("TL-01", at(65), 30)]

    def test_separate_date_and_time_columns(self):
        text = "日期,时间,记录仪,温度\n2026/11/26,9:05,TL-01,1.5\n2026-11-26,09:10:30,TL-01,1.6\n"
        parsed = R.parse_csv(text.encode("gbk"), now=NOW)
        assert [r.at for r in parsed.readings] == [at(65), at(70.5)]

    def test_an_excel_workbook_is_refused_with_a_hint(self):
        with pytest.raises(BadReadings, match="Excel workbook"):
            R.parse_csv(b"PK\x03\x04" + b"\x00" * 100, now=NOW)

    def test_binary_garbage_is_refused_as_a_whole(self):
        with pytest.raises(BadReadings, match="not a CSV text file"):
            R.parse_csv(bytes(range(256)) * 4, now=NOW)

    @pytest.mark.parametrize("data", [b"", b"  \n\n"])
    def test_an_empty_file_is_refused(self, data):
        with pytest.raises(BadReadings, match="empty"):
            R.parse_csv(data, now=NOW)


class TestCsvColumns:
    def test_wrong_columns_name_what_was_found_and_what_is_expected(self):
        with pytest.raises(BadReadings) as caught:
            R.parse_csv("名称,数量,价格\n荔枝,3,20\n".encode("gbk"), now=NOW)
        message = str(caught.value.message)
        assert "名称, 数量, 价格" in message
        for expected in ("记录仪编号", "时间", "温度", "logger", "time", "temperature"):
            assert expected in message
        assert str(caught.value.field_errors["file"][0]) == message
        assert isinstance(caught.value, ValidationError)

    def test_a_missing_temperature_column_is_wrong_columns(self):
        with pytest.raises(BadReadings, match="not recognised"):
            R.parse_csv("记录仪编号,时间,湿度\nTL,2026-11-26 09:00,50\n".encode("gbk"), now=NOW)

    def test_two_columns_for_one_thing_are_refused(self):
        with pytest.raises(BadReadings, match="时间 and 记录时间"):
            R.parse_csv("记录仪编号,时间,记录时间,温度\n".encode("gbk"), now=NOW)

    def test_fahrenheit_is_refused(self):
        with pytest.raises(BadReadings, match="Celsius"):
            R.parse_csv("记录仪编号,时间,温度(℉)\nTL,2026-11-26 09:00,38\n".encode("gbk"), now=NOW)


class TestCsvRows:
    def test_absurd_temperatures_are_reported_by_row_while_good_rows_are_kept(self):
        text = (
            "记录仪编号,时间,温度\n"  # row 1
            "TL-01,2026-11-26 09:00,3.5\n"  # row 2
            "TL-01,2026-11-26 09:05,85\n"  # row 3: absurd
            "\n"  # row 4: blank, skipped
            "TL-01,2026-11-26 09:10,-60.1\n"  # row 5: absurd
            "TL-01,2026-11-26 09:15,abc\n"  # row 6: not a number
            "TL-01,2026-11-26 09:20,-60\n"  # row 7: the limit itself
            "TL-01,2026-11-26 09:25,80.0℃\n"  # row 8: the other limit, with a unit
        )
        parsed = R.parse_csv(text.encode("gbk"), now=NOW)
        assert [r.celsius_tenths for r in parsed.readings] == [35, -600, 800]
        assert messages(parsed) == [
            (3, "The temperature 85 ℃ is outside -60 … 80 ℃."),
            (5, "The temperature -60.1 ℃ is outside -60 … 80 ℃."),
            (6, "The temperature is not a number."),
        ]
        assert parsed.error_count == 3

    def test_row_problems_each_have_their_message(self):
        text = (
            "记录仪编号,时间,温度\n"
            ",2026-11-26 09:00,3\n"  # 2 no logger
            "TL,,3\n"  # 3 no time
            "TL,2026-02-30 09:00,3\n"  # 4 no such day
            "TL,明天,3\n"  # 5 not a time
            "TL,2026-11-26 09:00,\n"  # 6 no temperature
            "TL,2026-11-27 09:00,3\n"  # 7 tomorrow: the logger's clock is wrong
            "TL,2000-01-01 00:00,3\n"  # 8 a reset logger
            "TL\n"  # 9 a short row
        )
        parsed = R.parse_csv(text.encode("gbk"), now=NOW)
        assert parsed.readings == []
        assert [row for row, _ in messages(parsed)] == [2, 3, 4, 5, 6, 7, 8, 9]
        texts = dict(messages(parsed))
        assert texts[2] == "The logger is missing."
        assert texts[3] == "The time is missing."
        assert texts[4].startswith("The time is not a date and time")
        assert texts[7] == "The time is in the future; check the logger's clock."
        assert texts[8] == "The time is more than a year ago; check the logger's clock."

    @pytest.mark.parametrize(
        ("cell", "utc"),
        [
            ("2026-11-26 09:05", datetime(2026, 11, 26, 1, 5, tzinfo=UTC)),
            ("2026/1/5 8:05", datetime(2026, 1, 5, 0, 5, tzinfo=UTC)),
            ("2026-11-26 00:30:00", datetime(2026, 11, 25, 16, 30, tzinfo=UTC)),  # the day before in UTC
            ("2026-11-26T09:05:01.5", datetime(2026, 11, 26, 1, 5, 1, 500000, tzinfo=UTC)),
            ("2026-11-26 01:05Z", datetime(2026, 11, 26, 1, 5, tzinfo=UTC)),
            ("2026-11-26 09:05+0800", datetime(2026, 11, 26, 1, 5, tzinfo=UTC)),
            ("2026-11-26 03:05+02:00", datetime(2026, 11, 26, 1, 5, tzinfo=UTC)),
            ("2026年11月26日 09时05分30秒", datetime(2026, 11, 26, 1, 5, 30, tzinfo=UTC)),
        ],
    )
    def test_spreadsheet_times_without_offset_are_china_time(self, cell, utc):
        data = f"logger,time,temperature\nTL,{cell},3\n".encode()
        assert R.parse_csv(data, now=NOW).readings[0].at == utc

    def test_a_resent_identical_row_is_kept_once_a_conflicting_one_is_an_error(self):
        text = (
            "logger,time,temperature\nTL,2026-11-26 09:00,3\nTL,2026-11-26 09:00,3.0\nTL,2026-11-26 09:00,4\n"
        )
        parsed = R.parse_csv(text.encode(), now=NOW)
        assert len(parsed.readings) == 1 and parsed.duplicates == 1
        assert messages(parsed) == [(4, "Same logger and time as row 2, with another temperature.")]

    def test_errors_are_capped_but_counted(self):
        rows = "".join(f"TL,2026-11-26 09:00,{900 + i}\n" for i in range(R.MAX_REPORTED_ERRORS + 50))
        parsed = R.parse_csv(("logger,time,temperature\n" + rows).encode(), now=NOW)
        assert len(parsed.errors) == R.MAX_REPORTED_ERRORS
        assert parsed.error_count == R.MAX_REPORTED_ERRORS + 50

    def test_too_many_rows_refuse_the_file(self, monkeypatch):
        monkeypatch.setattr(R, "MAX_CSV_ROWS", 3)
        rows = "".join(f"TL,2026-11-26 09:{i:02d},3\n" for i in range(4))
        with pytest.raises(BadReadings, match="more than 3 rows"):
            R.parse_csv(("logger,time,temperature\n" + rows).encode(), now=NOW)

    def test_too_many_bytes_refuse_the_file(self):
        with pytest.raises(BadReadings, match="larger than 10 MB"):
            R.parse_csv(b"logger,time,temperature\n" + b"x" * R.MAX_CSV_BYTES, now=NOW)

    def test_rounding_is_half_away_from_zero_to_tenths(self):
        text = (
            "logger,time,temperature\n"
            "A,2026-11-26 09:00,3.55\nA,2026-11-26 09:01,-3.55\nA,2026-11-26 09:02,\u22124\n"  # Unicode minus
        )
        assert [r.celsius_tenths for r in R.parse_csv(text.encode(), now=NOW).readings] == [36, -36, -40]


class TestJsonBatch:
    def test_each_reading_knows_its_item_or_row_and_repeats_have_none(self):
        batch = [
            {"logger": "ＴＬ－０１", "at": "2026-11-26T09:00:00+08:00", "celsius": 3.5},
            {"logger": "TL-01", "at": "bad", "celsius": 3.5},
            {"logger": "TL-01", "at": "2026-11-26T01:00:00Z", "celsius": 3.5},  # the first, again
            {"logger": "TL-01", "at": "2026-11-26T01:05:00Z", "celsius": 3.6},
        ]
        parsed = R.parse_batch(batch, now=NOW)
        assert parsed.positions == [0, 3] and parsed.duplicates == 1
        assert R.logger_key(batch[0]["logger"]) == "TL-01" and R.logger_key("") is None
        data = "记录仪编号,时间,温度\nTL-01,2026-11-26 09:00,3.5\n\nTL-01,2026-11-26 09:05,3.6\n".encode()
        assert R.parse_csv(data, now=NOW).positions == [2, 4]

    def test_good_items_are_kept_and_bad_ones_reported_by_index(self):
        batch = [
            {"logger": "TL-01", "at": "2026-11-26T09:00:00+08:00", "celsius": 3.5},
            {"logger": "TL-01", "at": "2026-11-26T09:05:00", "celsius": 3.5},  # no offset
            {"logger": "TL-01", "at": "2026-11-26T01:10:00Z", "celsius": 120},
            "not an object",
            {"logger": "", "at": "2026-11-26T01:10:00Z", "celsius": 1},
            {"logger": "TL-01", "at": "2026-11-26T01:15:00Z", "celsius": True},
            {"logger": "TL-01", "at": "2026-11-26T01:20:00Z", "celsius": "-18.0", "extra": "ignored"},
            {"logger": "TL-01", "at": 1764118800, "celsius": 1},
            {"logger": "x" * 65, "at": "2026-11-26T01:20:00Z", "celsius": 1},
            {"logger": "TL-01", "at": "2026-11-26T01:25:00Z", "celsius": float("nan")},
        ]
        parsed = R.parse_batch(batch, now=NOW)
        assert parsed.readings == [
            Reading("TL-01", datetime(2026, 11, 26, 1, 0, tzinfo=UTC), 35),
            Reading("TL-01", datetime(2026, 11, 26, 1, 20, tzinfo=UTC), -180),
        ]
        found = dict(messages(parsed))
        assert sorted(found) == [1, 2, 3, 4, 5, 7, 8, 9]
        assert found[1] == "The time needs a UTC offset, such as 2026-11-26T14:30:00+08:00."
        assert found[2] == "The temperature 120 ℃ is outside -60 … 80 ℃."
        assert found[3] == "Each reading is an object with logger, at and celsius."
        assert found[4] == "The logger is missing."
        assert found[5] == "The temperature is not a number."
        assert found[8] == "Enter the logger's ID (at most 64 characters)."
        assert found[9] == "The temperature is not a number."

    def test_a_float_is_rounded_from_its_shortest_spelling(self):
        batch = [{"logger": "A", "at": "2026-11-26T01:00:00Z", "celsius": 0.15}]  # 0.1499999… in binary
        assert R.parse_batch(batch, now=NOW).readings[0].celsius_tenths == 2

    def test_logger_ids_are_normalised(self):
        batch = [{"logger": " ＴＬ－０１ ", "at": "2026-11-26T01:00:00Z", "celsius": 1}]
        assert R.parse_batch(batch, now=NOW).readings[0].logger_id == "TL-01"

    @pytest.mark.parametrize("payload", [{}, None, "[]", {"readings": []}, []])
    def test_a_batch_that_is_not_a_list_of_readings_is_refused(self, payload):
        with pytest.raises(BadReadings) as caught:
            R.parse_batch(payload, now=NOW)
        assert "readings" in caught.value.field_errors

    def test_a_batch_too_large_is_refused(self):
        item = {"logger": "A", "at": "2026-11-26T01:00:00Z", "celsius": 1}
        with pytest.raises(BadReadings, match="at most 10000"):
            R.parse_batch([item] * (R.MAX_BATCH_ITEMS + 1), now=NOW)

    def test_the_product_clock_is_the_default_now(self):
        from domain import clock

        with clock.frozen(NOW):
            batch = [{"logger": "A", "at": "2026-11-26T05:00:00Z", "celsius": 1}]  # an hour ahead
            assert len(R.parse_batch(batch).errors) == 1


class TestExcursions:
    def test_a_spike_within_the_grace_period_is_not_an_excursion(self):
        rs = series([2, 2, 9, 2, 2])  # one reading at 9 °C, in range again 5 minutes later
        assert R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=30)) == []

    def test_a_long_run_is_flagged_with_its_worst_value_and_duration(self):
        rs = series([2, 5, 7.5, 6, 5, 5, 5, 5, 3, 2])  # out from minute 5 until the 3 °C at minute 40
        assert R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=30)) == [
            Excursion("TL-01", at(5), at(40), worst_tenths=75, minutes=35, readings=7, open_ended=False)
        ]

    def test_exactly_the_grace_period_is_not_longer_than_it(self):
        rs = series([2, 5, 5, 5, 5, 5, 5, 2])  # out 5 → 35: exactly 30 minutes
        assert R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=30)) == []
        assert len(R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=29))) == 1

    def test_boundaries_are_inside_the_range(self):
        for storage, temps in [
            (StorageClass.CHILLED, [0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4]),
            (StorageClass.FROZEN, [-18] * 14 + [-25] * 3),
        ]:
            assert R.find_excursions(series(temps), storage, timedelta(0)) == []

    def test_just_outside_the_boundaries_is_out(self):
        assert len(R.find_excursions(series([-0.1, -0.1, 2]), StorageClass.CHILLED, timedelta(0))) == 1
        assert len(R.find_excursions(series([4.1, 4.1, 2]), StorageClass.CHILLED, timedelta(0))) == 1
        assert len(R.find_excursions(series([-17.9, -17.9, -20]), StorageClass.FROZEN, timedelta(0))) == 1

    def test_frozen_has_no_lower_limit_and_flags_a_thaw(self):
        rs = series([-40, -22, -15, -12, -10, -14, -16, -19], every=10)
        [exc] = R.find_excursions(rs, StorageClass.FROZEN, timedelta(minutes=30))
        assert (exc.start, exc.end, exc.worst_tenths, exc.minutes) == (at(20), at(70), -100, 50)

    def test_too_cold_for_chilled_counts_and_the_worst_is_the_farthest_out(self):
        rs = series([2, -3, 6, -1, 2], every=15)  # -3 is 3.0 out, 6 is 2.0 out
        [exc] = R.find_excursions(rs, "chilled", timedelta(minutes=30))
        assert exc.worst_tenths == -30 and exc.minutes == 45

    def test_ambient_has_no_limits_unless_given(self):
        rs = series([45, 50, 55, 60], every=20)
        assert R.find_excursions(rs, StorageClass.AMBIENT, timedelta(0)) == []
        [exc] = R.find_excursions(rs, StorageClass.AMBIENT, timedelta(0), limits=Limits(None, 500))
        assert exc.worst_tenths == 600

    def test_a_run_still_out_when_the_data_ends_is_open_ended(self):
        rs = series([2, 8, 8, 8, 8, 8, 8, 8, 8])
        [exc] = R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=30))
        assert (exc.start, exc.end, exc.minutes, exc.open_ended) == (at(5), at(40), 35, True)

    def test_a_gap_ends_a_run_and_the_value_is_not_held_across_it(self):
        rs = [
            *series([2, 8, 8]),  # out at 5 and 10, then nothing for two hours
            Reading("TL-01", at(130), 80),
            Reading("TL-01", at(135), 20),
        ]
        assert R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=4)) == [
            Excursion("TL-01", at(5), at(10), 80, 5, 2, open_ended=True),
            Excursion("TL-01", at(130), at(135), 80, 5, 1, open_ended=False),
        ]
        # A larger max_gap joins them: 8 °C is held through the silence.
        [joined] = R.find_excursions(
            rs, StorageClass.CHILLED, timedelta(minutes=4), max_gap=timedelta(hours=3)
        )
        assert (joined.start, joined.end, joined.minutes) == (at(5), at(135), 130)
        assert R.find_gaps(rs) == [R.Gap("TL-01", at(10), at(130))]

    def test_loggers_are_judged_apart_and_input_order_does_not_matter(self):
        a = series([2, 8, 8, 8, 8, 8, 8, 8, 2], logger="A")
        b = series([2, 2, 9, 2, 2, 2, 2, 2, 2], logger="B")
        mixed = a + b
        random.Random(7).shuffle(mixed)
        found = R.find_excursions(mixed, StorageClass.CHILLED, timedelta(minutes=30))
        assert [(e.logger_id, e.start, e.minutes) for e in found] == [("A", at(5), 35)]

    def test_minutes_round_up(self):
        rs = [Reading("A", at(0), 80), Reading("A", at(30.5), 20)]
        assert R.find_excursions(rs, StorageClass.CHILLED, timedelta(minutes=30))[0].minutes == 31

    def test_nonsense_arguments_are_a_programming_error(self):
        with pytest.raises(ValueError):
            R.find_excursions([], StorageClass.CHILLED, timedelta(minutes=-1))
        with pytest.raises(ValueError):
            R.find_excursions([], StorageClass.CHILLED, max_gap=timedelta(0))


# --- Properties --------------------------------------------------------------------------------

temps = st.integers(R.MIN_TENTHS, R.MAX_TENTHS)
steps = st.integers(1, 90)  # minutes between readings


@st.composite
def reading_lists(draw, *, logger_ids=("A", "B")):
    out = []
    for logger in draw(st.lists(st.sampled_from(logger_ids), min_size=1, max_size=2, unique=True)):
        minute = 0
        for t in draw(st.lists(temps, max_size=30)):
            minute += draw(steps)
            out.append(Reading(logger, at(minute), t))
    return out


class TestReadingProperties:
    @given(st.binary(max_size=600))
    @settings(max_examples=300)
    def test_any_bytes_give_readings_and_errors_or_a_validation_error(self, data):
        try:
            parsed = R.parse_csv(data, now=NOW)
        except ValidationError:
            return
        assert all(R.MIN_TENTHS <= r.celsius_tenths <= R.MAX_TENTHS for r in parsed.readings)

    @given(st.text(alphabet='记录仪编号时间温度logertmpa,\n\t 0123456789-:/.℃年月日TZ+"', max_size=200))
    @settings(max_examples=300)
    def test_near_miss_text_never_raises_anything_else(self, text):
        for encoding in ("utf-8", "gb18030"):
            with contextlib.suppress(ValidationError):
                R.parse_csv(text.encode(encoding), now=NOW)

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )

    @given(
        json_values
        | st.lists(st.fixed_dictionaries({"logger": json_values, "at": json_values, "celsius": json_values}))
    )
    @settings(max_examples=150)
    def test_any_json_gives_readings_and_errors_or_a_validation_error(self, payload):
        try:
            parsed = R.parse_batch(payload, now=NOW)
        except ValidationError:
            return
        assert len(parsed.readings) + parsed.error_count + parsed.duplicates == len(payload)

    @given(reading_lists(), st.sampled_from(["utf-8", "utf-8-sig", "gbk", "utf-16"]))
    @settings(max_examples=80)
    def test_readings_written_as_china_time_csv_read_back_the_same(self, rs, encoding):
        lines = ["记录仪编号,记录时间,温度(℃)"]
        for r in rs:
            local = r.at.astimezone(R.clock.CHINA)
            lines.append(f"{r.logger_id},{local:%Y/%m/%d %H:%M:%S},{r.celsius_tenths / 10}")
        sep = "\t" if encoding == "utf-16" else ","
        data = "\r\n".join(line.replace(",", sep) for line in lines).encode(encoding)
        parsed = R.parse_csv(data, now=at(10_000))
        assert parsed.errors == [] and parsed.readings == rs

    @given(reading_lists())
    @settings(max_examples=80)
    def test_readings_sent_as_json_read_back_the_same(self, rs):
        payload = json.loads(
            json.dumps(
                [
                    {"logger": r.logger_id, "at": r.at.isoformat(), "celsius": r.celsius_tenths / 10}
                    for r in rs
                ]
            )
        )
        if not payload:
            return
        parsed = R.parse_batch(payload, now=at(10_000))
        assert parsed.errors == [] and parsed.readings == rs


class TestExcursionProperties:
    graces = st.integers(0, 120).map(lambda m: timedelta(minutes=m))

    @given(reading_lists(), st.sampled_from(list(StorageClass)), graces)
    @settings(max_examples=150)
    def test_every_excursion_is_a_run_of_out_of_range_readings_longer_than_grace(self, rs, storage, grace):
        limits = R.STORAGE_LIMITS[storage]
        for exc in R.find_excursions(rs, storage, grace):
            assert exc.end - exc.start > grace
            assert exc.minutes * 60 >= (exc.end - exc.start).total_seconds()
            inside = [r for r in rs if r.logger_id == exc.logger_id and exc.start <= r.at < exc.end]
            if exc.open_ended:
                inside += [r for r in rs if r.logger_id == exc.logger_id and r.at == exc.end]
            assert len(inside) == exc.readings
            assert all(limits.outside_by(r.celsius_tenths) > 0 for r in inside)
            assert exc.worst_tenths in {r.celsius_tenths for r in inside}
            assert limits.outside_by(exc.worst_tenths) == max(
                limits.outside_by(r.celsius_tenths) for r in inside
            )

    @given(reading_lists(), graces)
    @settings(max_examples=100)
    def test_readings_all_in_range_have_no_excursion(self, rs, grace):
        inside = [Reading(r.logger_id, r.at, max(0, min(40, r.celsius_tenths))) for r in rs]
        assert R.find_excursions(inside, StorageClass.CHILLED, grace) == []

    @given(reading_lists(), graces, graces, st.randoms())
    @settings(max_examples=100)
    def test_a_longer_grace_finds_a_subset_and_order_does_not_matter(self, rs, g1, g2, rnd):
        short, long_ = sorted([g1, g2])
        found_short = R.find_excursions(rs, StorageClass.FROZEN, short)
        found_long = R.find_excursions(rs, StorageClass.FROZEN, long_)
        assert set(found_long) <= set(found_short)
        shuffled = list(rs)
        rnd.shuffle(shuffled)
        assert R.find_excursions(shuffled, StorageClass.FROZEN, short) == found_short
