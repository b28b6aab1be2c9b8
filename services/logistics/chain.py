"""The SM3 hash chain over a lot's events: tamper evidence for the public trace page.

Each event of a lot (intake, scans, readings summaries, …) is stored with two hashes: the hash of
the event before it (`prev_hash`) and its own (`hash`):

    hash = SM3(prev_hash || canonical(event))        (see `link`)

where `prev_hash` enters as its 64 lowercase hex characters in ASCII and `canonical(event)` is
the event's canonical JSON in UTF-8 (see `canonical`). The first event's `prev_hash` is the lot's
genesis value, `genesis(lot_code)` = SM3("nongye-trace/v1:" || lot_code), so every chain starts
from its own lot: an event copied from another lot's chain does not fit. Changing an event, its
hashes, its place, or removing or inserting one breaks the chain where it happened, and
`verify` names that event and why. Removing the newest events, or rewriting every hash from some
event on, leaves a chain that still holds together: `verify(..., head=)` takes the newest hash
kept elsewhere (on the lot row, a printed label, a partner's copy) and catches those too.

The canonical form (`canonical`) is RFC 8785 (JSON Canonicalization Scheme) restricted to values
whose serialisation is unambiguous, so a verifier in any language can rebuild it:
* an event is a JSON object: a Mapping with str keys; values are None, bool, int, str, a Mapping
  (str keys), a list or tuple (kept in order), a timezone-aware datetime or a date;
* integers only, within ±(2**53 − 1) (the integers every JSON reader holds exactly): money is fen,
  weights are grams, temperatures are tenths of a degree, coordinates micro-degrees or strings.
  Floats and Decimals are refused (a float has several spellings; that is how chains break);
* a datetime is converted to UTC and written "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always six fraction
  digits); a date "YYYY-MM-DD". They become plain strings: an event stored as JSON (where the
  datetime came back as that string) hashes the same as the original;
* keys sorted by their UTF-16 code units (RFC 8785; the same as code-point order unless a key
  holds characters beyond U+FFFF); no whitespace (separators "," and ":"); strings written as
  they are (Chinese as UTF-8, not \\u escapes; only '"', '\\' and control characters escaped, as
  json.dumps and JavaScript's JSON.stringify both do), never Unicode-normalised: the hash covers
  exactly the text stored; a string that is not valid Unicode (a lone surrogate) is refused.
A value outside these rules raises NotCanonical (a programming error of the caller, not user
input); `verify` reports such a stored event as a broken link instead of raising.

SM3 (GB/T 32905-2016) comes from OpenSSL through `hashlib.new('sm3')`; where OpenSSL lacks it
the `gmssl` package is the fallback. It is not a dependency of the project (OpenSSL 1.1.1+ and 3.x
ship SM3, though some builds, FIPS ones among them, leave it out): a machine without SM3 in
OpenSSL needs `pip install gmssl` (or gmssl-python), else `sm3_hex` raises a RuntimeError saying so.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Protocol, TypeGuard

from services.i18n import _

GENESIS_PREFIX = b"nongye-trace/v1:"
MAX_SAFE_INTEGER = 2**53 - 1
HASH_HEX_LEN = 64
_HEX = frozenset("0123456789abcdef")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class NotCanonical(ValueError):
    """An event holds a value the canonical form does not allow (a float, a naive datetime, …)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []  # filled on the way out: where in the event
        super().__init__(reason)

    def __str__(self) -> str:
        return f"event{''.join(self.path)}: {self.reason}"


# --- SM3 ----------------------------------------------------------------------------------------


@cache
def _sm3_backend() -> Callable[[bytes], str]:
    try:
        proto = hashlib.new("sm3")
    except ValueError:
        return _gmssl_backend()

    # Copying a ready hash object skips OpenSSL's algorithm lookup: about a third faster per call.
    def hashlib_sm3(data: bytes) -> str:
        h = proto.copy()
        h.update(data)
        return h.hexdigest()

    return hashlib_sm3


def _gmssl_backend() -> Callable[[bytes], str]:
    try:
        import gmssl  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise RuntimeError(
            "SM3 is not available: this Python's OpenSSL has no 'sm3' digest and the fallback "
            "package gmssl is not installed (pip install gmssl)."
        ) from None
    try:  # gmssl (pure Python): gmssl.sm3.sm3_hash(list of byte values) -> hex
        from gmssl import sm3 as gm_sm3  # type: ignore[import-not-found, unused-ignore]

        def gmssl_sm3(data: bytes) -> str:
            return str(gm_sm3.sm3_hash(list(data))).lower()

        return gmssl_sm3
    except ImportError:
        pass
    if hasattr(gmssl, "Sm3"):  # gmssl-python (GmSSL 3 through ctypes) installs the same module name

        def gmssl_python_sm3(data: bytes) -> str:
            h = gmssl.Sm3()
            h.update(data)
            return bytes(h.digest()).hex()

        return gmssl_python_sm3
    raise RuntimeError("SM3 is not available: the installed gmssl package has neither sm3.sm3_hash nor Sm3.")


def sm3_hex(data: bytes) -> str:
    """SM3 of `data` as 64 lowercase hex characters."""
    return _sm3_backend()(bytes(data))


# --- The canonical form ----------------------------------------------------------------------


def _text(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise NotCanonical("the text is not valid Unicode") from None
    return str.__str__(value)  # a StrEnum member is its value, not the enum's str()


def _plain(value: Any) -> Any:
    """`value` as plain JSON types, checked (exact types first: this runs for every field)."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _text(value)
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        raise NotCanonical(f"integer {value} is outside ±(2**53 − 1)")
    if value is None or kind is bool:
        return value
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"key {key!r} is not a string")
            try:
                out[_text(key)] = _plain(item)
            except NotCanonical as e:
                e.path.insert(0, f".{key}")
                raise
        # RFC 8785 orders keys by UTF-16 code units (code points, unless beyond U+FFFF);
        # json.dumps keeps this insertion order.
        if all(key.isascii() for key in out):
            return dict(sorted(out.items()))
        return dict(sorted(out.items(), key=lambda kv: kv[0].encode("utf-16-be")))
    if kind is list or kind is tuple:
        items = []
        for i, item in enumerate(value):
            try:
                items.append(_plain(item))
            except NotCanonical as e:
                e.path.insert(0, f"[{i}]")
                raise
        return items
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # an IntEnum member
        return _plain(int.__index__(value))
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise NotCanonical("a datetime must be timezone-aware")
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
            raise NotCanonical("the datetime is out of range in UTC") from None
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return _plain(list(value))
    raise NotCanonical(
        f"{type(value).__name__} is not allowed (use int, str, bool, None, a list, a mapping, "
        "an aware datetime or a date)"
    )


def canonical(event: Mapping[str, Any]) -> bytes:
    """The event's canonical JSON in UTF-8 (the module docstring defines it)."""
    if not isinstance(event, Mapping):
        raise NotCanonical(f"an event is a mapping, not {type(event).__name__}")
    return _ENCODER.encode(_plain(event)).encode("utf-8")


# --- The chain ---------------------------------------------------------------------------------


def _is_hash(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == HASH_HEX_LEN and set(value) <= _HEX


def genesis(lot_code: str) -> str:
    """The `prev_hash` of a lot's first event: SM3("nongye-trace/v1:" || lot code in UTF-8)."""
    if not isinstance(lot_code, str) or not lot_code:
        raise ValueError("a lot code is a non-empty string")
    return sm3_hex(GENESIS_PREFIX + lot_code.encode("utf-8"))


def link(prev_hash: str, event: Mapping[str, Any]) -> str:
    """The hash of `event` following `prev_hash`: SM3(prev_hash as ASCII hex || canonical(event))."""
    if not _is_hash(prev_hash):
        raise ValueError("prev_hash is 64 lowercase hex characters")
    return sm3_hex(prev_hash.encode("ascii") + canonical(event))


class Chained(Protocol):
    """What `verify` reads of a stored event (a ChainRecord, or a row with these attributes)."""

    @property
    def event(self) -> Mapping[str, Any]: ...

    @property
    def prev_hash(self) -> str: ...

    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ChainRecord:
    event: Mapping[str, Any]
    prev_hash: str
    hash: str


def append(records: Sequence[Chained], event: Mapping[str, Any], *, lot_code: str) -> ChainRecord:
    """The record that puts `event` after `records` (the lot's chain so far, oldest first)."""
    prev = records[-1].hash if records else genesis(lot_code)
    return ChainRecord(event=event, prev_hash=prev, hash=link(prev, event))


def build(lot_code: str, events: Sequence[Mapping[str, Any]]) -> list[ChainRecord]:
    """A whole chain for `events`, oldest first."""
    records: list[ChainRecord] = []
    for event in events:
        records.append(append(records, event, lot_code=lot_code))
    return records


class Break(enum.StrEnum):
    """Why a chain does not verify at an event."""

    HASH_MISMATCH = "hash_mismatch"  # the event (or its stored hashes) changed after it was chained
    INVALID_EVENT = "invalid_event"  # the stored event cannot be put in canonical form any more
    REORDERED = "reordered"  # it follows an event that comes later in the list
    INSERTED = "inserted"  # it was put between two events that follow each other
    DUPLICATE = "duplicate"  # the same event appears twice
    PREV_MISMATCH = "prev_mismatch"  # it follows no event in the list: one is missing before it,
    # the one before it was rewritten with a new hash, or the chain starts from another lot
    HEAD_MISMATCH = "head_mismatch"  # the newest event is not the one recorded elsewhere


_BREAK_TEXT = {
    Break.HASH_MISMATCH: lambda: _("the event was changed after it was recorded"),
    Break.INVALID_EVENT: lambda: _("the event can no longer be read"),
    Break.REORDERED: lambda: _("the events are out of order"),
    Break.INSERTED: lambda: _("an event was inserted"),
    Break.DUPLICATE: lambda: _("the event appears twice"),
    Break.PREV_MISMATCH: lambda: _("an event before it is missing or was rewritten"),
    Break.HEAD_MISMATCH: lambda: _("the latest events are missing or were rewritten"),
}


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer of `verify`: `ok`, or the first broken event (`broken_at`, 0-based) and `reason`.

    `broken_at` == `count` with HEAD_MISMATCH means the events all link but the chain does not end
    at the expected head (events missing at the end, or rewritten).
    """

    count: int
    broken_at: int | None = None
    reason: Break | None = None
    head: str | None = None  # the newest hash when the chain verifies (the genesis when empty)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def message(self) -> Any:
        """What a page says: "chain verified" or where and why it breaks (1-based event number)."""
        if self.reason is None:
            return _("Chain verified: %(count)s events.", count=self.count)
        return _(
            "The chain is broken at event %(number)s: %(why)s.",
            number=(self.broken_at or 0) + 1,
            why=_BREAK_TEXT[self.reason](),
        )


def verify(lot_code: str, records: Sequence[Chained], *, head: str | None = None) -> Verification:
    """Check a lot's stored events (oldest first) link from the lot's genesis; never raises on them.

    `head`, when given, is the newest hash as recorded elsewhere: the chain must end there.
    """
    count = len(records)
    hashes: list[Any] = [getattr(r, "hash", None) for r in records]
    expected_prev = genesis(lot_code)
    position: dict[Any, int] = {expected_prev: -1}  # the genesis stands before the first event
    for i, h in enumerate(hashes):
        position.setdefault(h, i)
    for i, record in enumerate(records):
        prev = getattr(record, "prev_hash", None)
        try:
            recomputed = link(prev, record.event) if _is_hash(prev) else None
        except (NotCanonical, TypeError, ValueError, AttributeError):
            return Verification(count, i, Break.INVALID_EVENT)
        if recomputed is None or recomputed != hashes[i]:
            return Verification(count, i, Break.HASH_MISMATCH)
        if position[hashes[i]] < i:
            return Verification(count, i, Break.DUPLICATE)
        if prev != expected_prev:
            j = position.get(prev)
            if j is not None and j > i:
                return Verification(count, i, Break.REORDERED)
            if j is not None and j < i - 1:
                # It follows event j directly: those after j before it do not belong there.
                return Verification(count, j + 1, Break.INSERTED)
            return Verification(count, i, Break.PREV_MISMATCH)
        expected_prev = hashes[i]
    if head is not None and head != expected_prev:
        return Verification(count, count, Break.HEAD_MISMATCH)
    return Verification(count, head=expected_prev)
