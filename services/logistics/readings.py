"""Temperature readings from the cold chain's loggers, and excursions against a storage class.

Pure rules: parsing and judging readings, no database. The coordinator's services attribute the
readings to lots and store them.

A reading. `Reading(logger_id, at, celsius_tenths)`: the logger's ID (1-64 printable characters,
NFKC-normalised and trimmed: full-width digits from a Chinese keyboard become ASCII), the instant
(timezone-aware UTC) and the temperature in tenths of a degree Celsius as an integer (-18.5 °C is
-185), rounded half away from zero from what the logger sent (3.55 → 36, -3.55 → -36): integers
compare and sum exactly, and 0.1 °C is finer than a logger's accuracy (typically ±0.5 °C). A temperature
outside -60.0 … +80.0 °C is not a reading but a broken probe or a typo, and is refused.

Two ways in; both return the good readings and the errors of the bad ones (partial acceptance),
in input order; only a problem with the whole batch or file raises (`BadReadings`, a
ValidationError with the field's error).
* `parse_batch`: a JSON batch (the API's decoded body): a list of at most MAX_BATCH_ITEMS objects
  {"logger": str (or an integer), "at": ISO-8601 with a UTC offset ("Z" or "+08:00"), "celsius": number (or a
  numeric string)}; other keys are ignored. Errors name the item's 0-based index.
* `parse_csv`: an uploaded CSV as bytes (at most MAX_CSV_BYTES, 10 MiB, and MAX_CSV_ROWS, 100,000
  non-blank rows under the header), as Chinese
  Excel saves it. Encoding: UTF-8 with or without a BOM; else GB18030 (a superset of GBK, what
  "CSV (逗号分隔)" writes on Chinese Windows); UTF-16 with a BOM ("Unicode 文本", tab-separated).
  Separator: comma, or tab when the header line has more tabs than commas. The header is the
  first row, within the first HEADER_SEARCH_ROWS, naming the three required columns (a logger's
  export often starts with a title line or two); other columns (湿度 …) are ignored. Header names
  are matched after NFKC, lower-casing and dropping spaces, punctuation and a unit in brackets
  (温度(℃), 温度（℃）, Temperature [°C] are all 温度/temperature):
      logger       记录仪编号 记录仪 记录仪号 设备编号 设备号 设备ID 探头编号 传感器编号
                   logger logger_id device device_id sensor sensor_id serial sn
      time         时间 记录时间 采集时间 日期时间 time datetime timestamp recorded_at at
      temperature  温度 温度值 temperature temp celsius
      date         日期 date   (optional: when the time column holds only the time of day)
  A temperature column in °F (℉) is refused. Times: "2026-11-26 14:30:00", "2026/11/26 14:30"
  (Excel's zh-CN format, month and day with or without a leading zero), "2026年11月26日 14:30",
  seconds and fractions optional, optionally with "T" and an offset ("Z", "+08:00", "+0800");
  a time without an offset is China's (Asia/Shanghai). Temperatures may carry "℃"/"°C" and a
  Unicode minus. Errors name the row number as the spreadsheet shows it (the first line is
  row 1; blank rows count and are skipped).
Both refuse a reading more than MAX_FUTURE ahead of the product's clock or more than MAX_AGE old
(a logger whose clock was reset to 2000-01-01 or never set). The same logger at the same instant
twice with the same temperature is a re-sent reading: kept once and counted in `duplicates`;
with a different temperature the later one is an error.

Excursions (`find_excursions`). Limits per storage class, inclusive (STORAGE_LIMITS): chilled
0.0 … 4.0 °C, frozen at most -18.0 °C, ambient none (ambient goods are not temperature-controlled:
readings from an unrefrigerated van are shown, but Guangdong's summer would raise an alert on
every trip; a caller can pass its own `limits`). Each logger's readings are taken in time order
(any input order), and a reading holds until the next one (sample and hold), with one exception:
readings more than `max_gap` apart (DEFAULT_MAX_GAP, an hour: cold-chain loggers commonly record
every 5-15 minutes, so an hour without a reading means the logger stopped or lost its data) are
not joined: the value is not assumed across a gap.
* A run is a longest sequence of consecutive out-of-range readings of one logger with no gap
  between them. It starts at its first reading and ends at the in-range reading that follows it,
  or, when a gap or the end of the data follows, at its last reading (`open_ended`: it may have
  lasted longer than we know).
* A run is an excursion when it lasts longer than `grace` (strictly): a spike shorter than the
  grace period, say one reading followed by an in-range one, is not.
* An excursion reports its start, end, duration in whole minutes (rounded up), its number of
  readings, and its worst reading: the one farthest outside the range (the first such).
`find_gaps` lists the gaps themselves, for a chart to mark the missing data.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from domain import StorageClass, clock
from services.errors import ValidationError
from services.i18n import _

MIN_TENTHS = -600  # -60.0 °C
MAX_TENTHS = 800  # +80.0 °C
MAX_LOGGER_LEN = 64
MAX_BATCH_ITEMS = 10_000
MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_CSV_ROWS = 100_000
HEADER_SEARCH_ROWS = 10
MAX_REPORTED_ERRORS = 100
MAX_FUTURE = timedelta(minutes=10)
MAX_AGE = timedelta(days=366)
DEFAULT_GRACE = timedelta(minutes=30)
DEFAULT_MAX_GAP = timedelta(hours=1)


class BadReadings(ValidationError):
    """The whole batch or file cannot be read (wrong shape, columns, encoding, size)."""

    code = "bad_readings"

    def __init__(self, message: Any, *, field: str) -> None:
        super().__init__(message, field_errors={field: [message]})


@dataclass(frozen=True, slots=True)
class Reading:
    logger_id: str
    at: datetime  # timezone-aware UTC
    celsius_tenths: int  # tenths of a degree Celsius: -18.5 °C is -185

    @property
    def celsius(self) -> Decimal:
        return Decimal(self.celsius_tenths) / 10


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int  # the item's 0-based index in the batch
    message: Any


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # the row number as the spreadsheet shows it (the first line is row 1)
    message: Any


E = TypeVar("E", ItemError, RowError)


@dataclass
class Parsed(Generic[E]):
    """The good readings (input order) and the errors: the first MAX_REPORTED_ERRORS of `error_count`."""

    readings: list[Reading] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # each reading's item index or row number
    errors: list[E] = field(default_factory=list)
    error_count: int = 0
    duplicates: int = 0  # identical re-sent readings dropped


class _Bad(Exception):
    """One item's or row's problem (internal: becomes an ItemError or a RowError)."""

    def __init__(self, message: Any) -> None:
        self.message = message


# --- Values ----------------------------------------------------------------------------------


def _logger_id(raw: Any) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _Bad(_("The logger is missing."))
    if (
        isinstance(raw, bool)
        or not isinstance(raw, str | int)
        or (isinstance(raw, int) and raw.bit_length() > 200)
    ):
        raise _Bad(_("Enter the logger's ID (at most %(max)s characters).", max=MAX_LOGGER_LEN))
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if not 0 < len(text) <= MAX_LOGGER_LEN or not text.isprintable():
        raise _Bad(_("Enter the logger's ID (at most %(max)s characters).", max=MAX_LOGGER_LEN))
    return text


def logger_key(raw: Any) -> str | None:
    """A logger ID as the readings carry it (NFKC, trimmed), or None when it is no ID: for a
    caller matching a batch's items to its readings."""
    try:
        return _logger_id(raw)
    except _Bad:
        return None


def _tenths(raw: Any) -> int:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _Bad(_("The temperature is missing."))
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _Bad(_("The temperature is not a number."))
    if isinstance(raw, str):
        text = unicodedata.normalize("NFKC", raw).strip().lower().replace("\u2212", "-")
        text = text.removesuffix("°c").removesuffix("℃").strip()
        if len(text) > 32:
            raise _Bad(_("The temperature is not a number."))
    elif isinstance(raw, int) and abs(raw) >= 1000:  # before str(): a huge int has no str in 3.11
        text = "-999…" if raw < 0 else "999…"
    else:
        text = repr(raw) if isinstance(raw, float) else str(raw)  # a float's shortest spelling
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(_("The temperature is not a number.")) from None
    if not value.is_finite():
        raise _Bad(_("The temperature is not a number."))
    shown = text if len(text) <= 16 else text[:15] + "…"
    if abs(value) >= 1000:
        raise _Bad(_("The temperature %(value)s ℃ is outside -60 … 80 ℃.", value=shown))
    tenths = int((value * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if not MIN_TENTHS <= tenths <= MAX_TENTHS:
        raise _Bad(_("The temperature %(value)s ℃ is outside -60 … 80 ℃.", value=shown))
    return tenths


def _check_when(at: datetime, now: datetime) -> datetime:
    at = at.astimezone(UTC)
    if at > now + MAX_FUTURE:
        raise _Bad(_("The time is in the future; check the logger's clock."))
    if at < now - MAX_AGE:
        raise _Bad(_("The time is more than a year ago; check the logger's clock."))
    return at


def _iso_with_offset(raw: Any) -> datetime:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _Bad(_("The time is missing."))
    if not isinstance(raw, str) or len(raw) > 40:
        raise _Bad(_("The time needs a UTC offset, such as 2026-11-26T14:30:00+08:00."))
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _Bad(_("The time needs a UTC offset, such as 2026-11-26T14:30:00+08:00.")) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise _Bad(_("The time needs a UTC offset, such as 2026-11-26T14:30:00+08:00."))
    return at


_DATE = r"(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
_TIME = r"(?P<h>\d{1,2})[:时](?P<mi>\d{1,2})(?:[:分](?P<s>\d{1,2})(?:\.(?P<f>\d{1,6}))?秒?|分)?"
_OFFSET = r"(?P<tz>z|[+-]\d{2}(?::?\d{2})?)?"
_DATETIME_RE = re.compile(rf"{_DATE}(?:\s*t\s*|\s+){_TIME}\s*{_OFFSET}")
_DATE_RE = re.compile(_DATE)
_TIME_RE = re.compile(rf"{_TIME}\s*{_OFFSET}")


def _offset(tz: str | None) -> timezone | None:
    if not tz:
        return None
    if tz == "z":
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))


def _clock_time(m: re.Match[str]) -> tuple[time, timezone | None]:
    micro = int((m["f"] or "0").ljust(6, "0"))
    return time(int(m["h"]), int(m["mi"]), int(m["s"] or 0), micro), _offset(m["tz"])


def _local_to_utc(day: date, at: time, tz: timezone | None) -> datetime:
    return datetime.combine(day, at, tzinfo=tz or clock.CHINA).astimezone(UTC)


def _spreadsheet_time(raw: str, date_cell: str | None) -> datetime:
    """A CSV cell's time (with the date column's day when the cell holds only a time of day)."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    if not text:
        raise _Bad(_("The time is missing."))
    bad = _("The time is not a date and time, such as 2026-11-26 14:30:00.")
    if len(text) > 40:
        raise _Bad(bad)
    try:
        if m := _DATETIME_RE.fullmatch(text):
            day = date(int(m["y"]), int(m["mo"]), int(m["d"]))
            return _local_to_utc(day, *_clock_time(m))
        if date_cell is not None and (m := _TIME_RE.fullmatch(text)):
            d = _DATE_RE.fullmatch(unicodedata.normalize("NFKC", date_cell).strip())
            if d is None:
                raise _Bad(bad)
            day = date(int(d["y"]), int(d["mo"]), int(d["d"]))
            return _local_to_utc(day, *_clock_time(m))
    except (ValueError, OverflowError):  # 2026-02-30, 25:00, an offset of 99 hours
        raise _Bad(bad) from None
    raise _Bad(bad)


class _Collector(Generic[E]):
    """Keeps the good readings, drops identical repeats, and collects errors up to the cap."""

    def __init__(self, make_error: type[E], now: datetime | None) -> None:
        self.result: Parsed[E] = Parsed()
        self.make_error: type[E] = make_error
        self.now = (now or clock.now()).astimezone(UTC)
        self.seen: dict[tuple[str, datetime], tuple[int, int]] = {}

    def error(self, position: int, message: Any) -> None:
        self.result.error_count += 1
        if len(self.result.errors) < MAX_REPORTED_ERRORS:
            self.result.errors.append(self.make_error(position, message))

    def add(self, position: int, logger_id: str, at: datetime, tenths: int) -> None:
        at = _check_when(at, self.now)
        key = (logger_id, at)
        if (first := self.seen.get(key)) is not None:
            if first[1] == tenths:
                self.result.duplicates += 1
                return
            if self.make_error is ItemError:
                raise _Bad(
                    _("Same logger and time as item %(first)s, with another temperature.", first=first[0])
                )
            raise _Bad(_("Same logger and time as row %(first)s, with another temperature.", first=first[0]))
        self.seen[key] = (position, tenths)
        self.result.readings.append(Reading(logger_id, at, tenths))
        self.result.positions.append(position)


# --- JSON batches ----------------------------------------------------------------------------


def parse_batch(payload: Any, *, now: datetime | None = None) -> Parsed[ItemError]:
    """Readings from an API batch (the decoded JSON body); bad items are reported by index."""
    if not isinstance(payload, list):
        raise BadReadings(_("Send the readings as a list of objects."), field="readings")
    if not payload:
        raise BadReadings(_("Send at least one reading."), field="readings")
    if len(payload) > MAX_BATCH_ITEMS:
        raise BadReadings(
            _("Send at most %(max)s readings in one batch.", max=MAX_BATCH_ITEMS), field="readings"
        )
    out = _Collector(ItemError, now)
    for index, item in enumerate(payload):
        try:
            if not isinstance(item, Mapping):
                raise _Bad(_("Each reading is an object with logger, at and celsius."))
            logger_id = _logger_id(item.get("logger"))
            at = _iso_with_offset(item.get("at"))
            tenths = _tenths(item.get("celsius"))
            out.add(index, logger_id, at, tenths)
        except _Bad as bad:
            out.error(index, bad.message)
    return out.result


# --- CSV uploads -----------------------------------------------------------------------------

_ALIASES = {
    "logger": {
        "记录仪编号",
        "记录仪",
        "记录仪号",
        "设备编号",
        "设备号",
        "设备id",
        "探头编号",
        "传感器编号",
        "logger",
        "loggerid",
        "device",
        "deviceid",
        "sensor",
        "sensorid",
        "serial",
        "sn",
    },
    "time": {"时间", "记录时间", "采集时间", "日期时间", "time", "datetime", "timestamp", "recordedat", "at"},
    "temperature": {"温度", "温度值", "temperature", "temp", "celsius"},
    "date": {"日期", "date"},
}
_REQUIRED = ("logger", "time", "temperature")
_UNIT_RE = re.compile(r"\(.*?\)|\[.*?\]")
_PUNCT_RE = re.compile(r"[\s_\-/.:：·]+")
_FAHRENHEIT_RE = re.compile(r"°f|\(f\)|\[f\]|fahrenheit|华氏")


def _header_name(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).strip().lower().lstrip("\ufeff")
    text = _UNIT_RE.sub("", text)
    text = text.replace("°c", "").replace("℃", "")
    return _PUNCT_RE.sub("", text)


def _columns(row: Sequence[str]) -> dict[str, int] | None:
    """The columns a header row names, or None when it is not the header."""
    found: dict[str, int] = {}
    for i, cell in enumerate(row):
        name = _header_name(cell)
        for role, names in _ALIASES.items():
            if name in names:
                if role in found:
                    raise BadReadings(
                        _(
                            "The columns %(a)s and %(b)s say the same thing; keep one.",
                            a=row[found[role]].strip(),
                            b=cell.strip(),
                        ),
                        field="file",
                    )
                found[role] = i
                if role == "temperature" and _FAHRENHEIT_RE.search(
                    unicodedata.normalize("NFKC", cell).lower()
                ):
                    raise BadReadings(_("Temperatures must be in degrees Celsius (℃)."), field="file")
    return found if all(role in found for role in _REQUIRED) else None


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise BadReadings(
        _("The file is not a CSV text file. Save the spreadsheet as CSV and upload that."), field="file"
    )


def _rows(text: str) -> Iterator[list[str]]:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error:
        raise BadReadings(
            _("The file is not a CSV text file. Save the spreadsheet as CSV and upload that."), field="file"
        ) from None


def _cell(row: Sequence[str], index: int | None) -> str | None:
    if index is None:
        return None
    return row[index] if index < len(row) else ""


def parse_csv(data: bytes, *, now: datetime | None = None) -> Parsed[RowError]:
    """Readings from an uploaded CSV (Chinese Excel's GBK too); bad rows are reported by number."""
    if not data or not data.strip():
        raise BadReadings(_("The file is empty."), field="file")
    if len(data) > MAX_CSV_BYTES:
        raise BadReadings(
            _("The file is larger than %(max)s MB; split it.", max=MAX_CSV_BYTES // (1024 * 1024)),
            field="file",
        )
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise BadReadings(
            _("This is an Excel workbook. Save it as CSV (逗号分隔) and upload the CSV file."), field="file"
        )
    rows = _rows(_decode(data))
    columns: dict[str, int] | None = None
    first_row: list[str] | None = None
    header_row = 0
    for number, row in enumerate(rows, start=1):
        header_row = number
        if not any(cell.strip() for cell in row):
            continue
        if first_row is None:
            first_row = row
        columns = _columns(row)
        if columns is not None or number >= HEADER_SEARCH_ROWS:
            break
    if columns is None:
        found = ", ".join(c.strip() for c in (first_row or []) if c.strip())[:200]
        raise BadReadings(
            _(
                "The columns were not recognised (found: %(found)s). The file needs a header row "
                "with the columns 记录仪编号 (logger), 时间 (time) and 温度 (temperature).",
                found=found or "-",
            ),
            field="file",
        )
    out = _Collector(RowError, now)
    data_rows = 0
    for number, row in enumerate(rows, start=header_row + 1):
        if not any(cell.strip() for cell in row):
            continue
        data_rows += 1
        if data_rows > MAX_CSV_ROWS:
            raise BadReadings(
                _("The file has more than %(max)s rows; split it.", max=MAX_CSV_ROWS), field="file"
            )
        try:
            logger_id = _logger_id(_cell(row, columns["logger"]))
            at = _spreadsheet_time(_cell(row, columns["time"]) or "", _cell(row, columns.get("date")))
            tenths = _tenths(_cell(row, columns["temperature"]))
            out.add(number, logger_id, at, tenths)
        except _Bad as bad:
            out.error(number, bad.message)
    return out.result


# --- Excursions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """A storage class's range in tenths of a degree, both ends inside; None: no limit that side."""

    low_tenths: int | None
    high_tenths: int | None

    def outside_by(self, tenths: int) -> int:
        """How far (tenths) a temperature is outside the range; 0 inside."""
        if self.low_tenths is not None and tenths < self.low_tenths:
            return self.low_tenths - tenths
        if self.high_tenths is not None and tenths > self.high_tenths:
            return tenths - self.high_tenths
        return 0


STORAGE_LIMITS: dict[StorageClass, Limits] = {
    StorageClass.CHILLED: Limits(0, 40),
    StorageClass.FROZEN: Limits(None, -180),
    StorageClass.AMBIENT: Limits(None, None),
}


@dataclass(frozen=True, slots=True)
class Excursion:
    logger_id: str
    start: datetime
    end: datetime
    worst_tenths: int  # the reading farthest outside the range
    minutes: int  # end - start in whole minutes, rounded up
    readings: int  # out-of-range readings in the run
    open_ended: bool  # a gap or the end of the data follows: it may have lasted longer


@dataclass(frozen=True, slots=True)
class Gap:
    logger_id: str
    start: datetime  # the last reading before the gap
    end: datetime  # the first reading after it


def _by_logger(readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    groups: dict[str, list[Reading]] = {}
    for r in readings:
        groups.setdefault(r.logger_id, []).append(r)
    for rs in groups.values():
        rs.sort(key=lambda r: r.at)
    return dict(sorted(groups.items()))


def _excursion(
    logger_id: str, run: list[Reading], end: datetime, open_ended: bool, limits: Limits
) -> Excursion:
    worst = max(run, key=lambda r: limits.outside_by(r.celsius_tenths))
    return Excursion(
        logger_id=logger_id,
        start=run[0].at,
        end=end,
        worst_tenths=worst.celsius_tenths,
        minutes=math.ceil((end - run[0].at).total_seconds() / 60),
        readings=len(run),
        open_ended=open_ended,
    )


def _runs(
    rs: list[Reading], limits: Limits, max_gap: timedelta
) -> Iterator[tuple[list[Reading], datetime, bool]]:
    """One logger's runs of out-of-range readings (time order): (readings, end, open_ended)."""
    run: list[Reading] = []
    for i, r in enumerate(rs):
        out = limits.outside_by(r.celsius_tenths) > 0
        if run:
            if r.at - rs[i - 1].at > max_gap:  # a gap ends the run where the data stopped
                yield run, rs[i - 1].at, True
                run = []
            elif not out:  # back in range: the out-of-range value held until now
                yield run, r.at, False
                run = []
            else:
                run.append(r)
                continue
        if out:
            run = [r]
    if run:
        yield run, rs[-1].at, True


def find_excursions(
    readings: Iterable[Reading],
    storage_class: StorageClass | str,
    grace: timedelta = DEFAULT_GRACE,
    *,
    max_gap: timedelta = DEFAULT_MAX_GAP,
    limits: Limits | None = None,
) -> list[Excursion]:
    """The excursions in `readings` (any order, any loggers), per logger then by start."""
    if grace < timedelta(0) or max_gap <= timedelta(0):
        raise ValueError("grace must be >= 0 and max_gap > 0")
    limits = limits or STORAGE_LIMITS[StorageClass(storage_class)]
    return [
        _excursion(logger_id, run, end, open_ended, limits)
        for logger_id, rs in _by_logger(readings).items()
        for run, end, open_ended in _runs(rs, limits, max_gap)
        if end - run[0].at > grace
    ]


def find_gaps(readings: Iterable[Reading], max_gap: timedelta = DEFAULT_MAX_GAP) -> list[Gap]:
    """The stretches longer than `max_gap` without a reading, per logger then in time order."""
    gaps: list[Gap] = []
    for logger_id, rs in _by_logger(readings).items():
        gaps.extend(Gap(logger_id, a.at, b.at) for a, b in itertools.pairwise(rs) if b.at - a.at > max_gap)
    return gaps
