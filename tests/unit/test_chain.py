"""The SM3 hash chain over a lot's events (services/logistics/chain.py): no database."""

from __future__ import annotations

import enum
import hashlib
import sys
import types
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.logistics import chain
from services.logistics.chain import Break, ChainRecord, NotCanonical

LOT = "ABCDEFGHJKMNPQRS"
AT = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def events(n: int) -> list[dict]:
    return [
        {
            "kind": "arrived" if i % 2 else "departed",
            "node": f"440104-VP-{i:04d}",
            "at": AT + timedelta(minutes=17 * i),
            "weight_g": 12_500 + i,
            "note": "荔枝 到达县服务中心",
        }
        for i in range(n)
    ]


class TestSm3:
    def test_the_standards_vector_abc(self):
        # GB/T 32905-2016, example 1
        assert chain.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"

    def test_the_standards_vector_of_64_bytes(self):
        # GB/T 32905-2016, example 2: "abcd" sixteen times
        assert (
            chain.sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        )

    def test_hashlib_backend_agrees_with_a_fresh_hashlib_object(self):
        data = "荔枝".encode() * 100
        assert chain.sm3_hex(data) == hashlib.new("sm3", data).hexdigest()

    def test_without_sm3_anywhere_says_what_to_install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "gmssl", None)  # importing it raises ImportError
        with pytest.raises(RuntimeError, match="gmssl"):
            chain._gmssl_backend()

    def test_the_gmssl_fallback_is_called_with_the_bytes(self, monkeypatch):
        # gmssl's pure-Python API: sm3.sm3_hash(list of byte values) -> hex
        fake = types.ModuleType("gmssl")
        fake_sm3 = types.ModuleType("gmssl.sm3")
        fake_sm3.sm3_hash = lambda values: hashlib.new("sm3", bytes(values)).hexdigest().upper()  # type: ignore[attr-defined]
        fake.sm3 = fake_sm3  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "gmssl", fake)
        monkeypatch.setitem(sys.modules, "gmssl.sm3", fake_sm3)
        assert chain._gmssl_backend()(b"abc") == chain.sm3_hex(b"abc")

    def test_the_gmssl_python_fallback_uses_its_sm3_class(self, monkeypatch):
        # gmssl-python (GmSSL 3 through ctypes) installs a module of the same name with a class Sm3
        class Sm3:
            def __init__(self) -> None:
                self.h = hashlib.new("sm3")

            def update(self, data: bytes) -> None:
                self.h.update(data)

            def digest(self) -> bytes:
                return self.h.digest()

        fake = types.ModuleType("gmssl")
        fake.Sm3 = Sm3  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "gmssl", fake)
        assert chain._gmssl_backend()(b"abc") == chain.sm3_hex(b"abc")


class TestCanonical:
    def test_keys_sorted_compact_utf8(self):
        assert chain.canonical({"b": 1, "a": "荔枝", "c": None, "d": True}) == (
            '{"a":"荔枝","b":1,"c":null,"d":true}'.encode()
        )

    def test_same_bytes_whatever_the_key_order(self):
        a = {"x": 1, "y": {"q": [1, 2], "p": "从化"}}
        b = {"y": {"p": "从化", "q": [1, 2]}, "x": 1}
        assert chain.canonical(a) == chain.canonical(b)

    def test_nested_mappings_and_lists_keep_list_order(self):
        assert (
            chain.canonical({"z": [{"b": 2, "a": 1}, (3, "三")]})
            == b'{"z":[{"a":1,"b":2},[3,"\xe4\xb8\x89"]]}'
        )

    def test_chinese_is_utf8_not_escaped_and_quotes_and_controls_are(self):
        assert chain.canonical({"t": '农户"李"\n'}) == '{"t":"农户\\"李\\"\\n"}'.encode()

    def test_keys_in_utf16_order_as_rfc8785(self):
        # U+FF61 sorts before U+1F600 in code points too, but after it in UTF-16 (surrogates D83D…)
        event = {"\uff61": 1, "\U0001f600": 2}
        assert chain.canonical(event) == '{"\U0001f600":2,"\uff61":1}'.encode()

    def test_datetimes_are_utc_with_z_and_six_fraction_digits(self):
        cst = timezone(timedelta(hours=8))
        at = datetime(2026, 11, 26, 12, 0, 5, 7, tzinfo=cst)
        assert chain.canonical({"at": at}) == b'{"at":"2026-11-26T04:00:05.000007Z"}'
        assert chain.canonical({"at": AT}) == b'{"at":"2026-11-26T04:00:00.000000Z"}'

    def test_a_datetime_hashes_as_its_string_so_events_stored_as_json_still_verify(self):
        assert chain.canonical({"at": AT}) == chain.canonical({"at": "2026-11-26T04:00:00.000000Z"})

    def test_dates_and_str_enums(self):
        class Kind(enum.StrEnum):
            ARRIVED = "arrived"

        class Old(str, enum.Enum):
            A = "a"

        assert chain.canonical({"d": date(2026, 7, 1), "k": Kind.ARRIVED, "o": Old.A}) == (
            b'{"d":"2026-07-01","k":"arrived","o":"a"}'
        )

    @pytest.mark.parametrize(
        "value",
        [
            1.5,
            float("nan"),
            datetime(2026, 1, 1),  # naive
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))),  # before year 1 in UTC
            2**53,
            -(2**53),
            b"bytes",
            {1: "int key"},
            {"\ud800": 1},
            "\udc00",
            {1, 2},
            object(),
        ],
    )
    def test_refuses_what_has_no_single_spelling(self, value):
        with pytest.raises(NotCanonical):
            chain.canonical({"v": value})

    def test_a_refusal_says_where_in_the_event(self):
        with pytest.raises(NotCanonical, match=r"^event\.lines\[1\]\.kg: float is not allowed"):
            chain.canonical({"lines": [{"kg": 1}, {"kg": 1.5}]})

    def test_the_largest_safe_integers_pass(self):
        assert chain.canonical({"v": 2**53 - 1, "w": -(2**53 - 1)}) == (
            b'{"v":9007199254740991,"w":-9007199254740991}'
        )

    def test_an_event_is_a_mapping(self):
        with pytest.raises(NotCanonical):
            chain.canonical([1, 2])  # type: ignore[arg-type]


class TestLink:
    def test_genesis_is_sm3_of_the_prefixed_lot_code(self):
        assert chain.genesis(LOT) == chain.sm3_hex(b"nongye-trace/v1:" + LOT.encode())
        assert chain.genesis(LOT) != chain.genesis("ABCDEFGHJKMNPQRT")

    def test_link_is_sm3_of_prev_hex_then_canonical_event(self):
        prev = chain.genesis(LOT)
        event = {"kind": "collected", "at": AT}
        assert chain.link(prev, event) == chain.sm3_hex(prev.encode("ascii") + chain.canonical(event))

    def test_link_refuses_a_prev_that_is_not_a_hash(self):
        with pytest.raises(ValueError, match="prev_hash"):
            chain.link("ABC", {})
        with pytest.raises(ValueError, match="prev_hash"):
            chain.link(chain.genesis(LOT).upper(), {})

    def test_build_links_each_to_the_one_before(self):
        records = chain.build(LOT, events(3))
        assert records[0].prev_hash == chain.genesis(LOT)
        assert records[1].prev_hash == records[0].hash
        assert records[2].prev_hash == records[1].hash


class TestVerify:
    def test_an_intact_chain_verifies(self):
        records = chain.build(LOT, events(10))
        result = chain.verify(LOT, records)
        assert result.ok and result.count == 10 and result.broken_at is None
        assert result.head == records[-1].hash
        assert str(result.message) == "Chain verified: 10 events."

    def test_an_empty_chain_verifies_at_the_genesis(self):
        result = chain.verify(LOT, [])
        assert result.ok and result.head == chain.genesis(LOT)

    def test_rows_with_the_attributes_verify_too(self):
        class Row:
            def __init__(self, r: ChainRecord) -> None:
                self.event, self.prev_hash, self.hash = dict(r.event), r.prev_hash, r.hash

        assert chain.verify(LOT, [Row(r) for r in chain.build(LOT, events(3))]).ok

    @pytest.mark.parametrize("field", ["kind", "node", "at", "weight_g", "note"])
    def test_changing_any_field_breaks_at_that_event(self, field):
        records = chain.build(LOT, events(10))
        event = dict(records[6].event)
        event[field] = "altered" if field != "weight_g" else event[field] + 1
        records[6] = replace(records[6], event=event)
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (6, Break.HASH_MISMATCH)
        assert (
            str(result.message)
            == "The chain is broken at event 7: the event was changed after it was recorded."
        )

    def test_adding_a_field_breaks(self):
        records = chain.build(LOT, events(4))
        records[2] = replace(records[2], event={**records[2].event, "extra": 1})
        assert chain.verify(LOT, records).broken_at == 2

    def test_changing_a_stored_hash_breaks_at_that_event(self):
        records = chain.build(LOT, events(5))
        records[3] = replace(records[3], hash="0" * 64)
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            3,
            Break.HASH_MISMATCH,
        )

    def test_deleting_an_event_breaks_where_it_was(self):
        records = chain.build(LOT, events(10))
        del records[4]
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (4, Break.PREV_MISMATCH)

    def test_deleting_the_first_event_breaks_at_the_start(self):
        records = chain.build(LOT, events(5))[1:]
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            0,
            Break.PREV_MISMATCH,
        )

    def test_deleting_the_last_events_is_caught_by_the_head_kept_elsewhere(self):
        records = chain.build(LOT, events(6))
        head = records[-1].hash
        assert chain.verify(LOT, records[:-2]).ok  # nothing inside the chain can tell
        result = chain.verify(LOT, records[:-2], head=head)
        assert (result.broken_at, result.reason) == (4, Break.HEAD_MISMATCH)
        assert chain.verify(LOT, records, head=head).ok

    def test_rewriting_an_event_and_its_hash_breaks_at_the_next(self):
        records = chain.build(LOT, events(6))
        forged = {**records[2].event, "weight_g": 1}
        records[2] = ChainRecord(forged, records[2].prev_hash, chain.link(records[2].prev_hash, forged))
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (3, Break.PREV_MISMATCH)

    def test_swapping_two_events_breaks_at_the_first_of_them(self):
        records = chain.build(LOT, events(10))
        records[3], records[4] = records[4], records[3]
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (3, Break.REORDERED)

    def test_moving_an_event_earlier_breaks_where_it_now_is(self):
        records = chain.build(LOT, events(10))
        records.insert(2, records.pop(7))
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            2,
            Break.REORDERED,
        )

    def test_inserting_a_well_linked_event_breaks_at_the_inserted_one(self):
        records = chain.build(LOT, events(10))
        intruder = {"kind": "arrived", "node": "elsewhere"}
        records.insert(5, ChainRecord(intruder, records[4].hash, chain.link(records[4].hash, intruder)))
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (5, Break.INSERTED)

    def test_inserting_an_unlinked_event_breaks_at_it(self):
        records = chain.build(LOT, events(10))
        intruder = {"kind": "arrived"}
        records.insert(5, ChainRecord(intruder, "1" * 64, chain.link("1" * 64, intruder)))
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            5,
            Break.PREV_MISMATCH,
        )

    def test_inserting_before_the_first_event_breaks_at_the_start(self):
        records = chain.build(LOT, events(3))
        intruder = {"kind": "collected"}
        records.insert(0, ChainRecord(intruder, chain.genesis(LOT), chain.link(chain.genesis(LOT), intruder)))
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            0,
            Break.INSERTED,
        )

    def test_a_repeated_event_breaks_at_the_copy(self):
        records = chain.build(LOT, events(5))
        records.insert(3, records[2])
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            3,
            Break.DUPLICATE,
        )

    def test_another_lots_chain_does_not_verify(self):
        records = chain.build("ZZZZZZZZZZZZZZZZ", events(3))
        assert (chain.verify(LOT, records).broken_at, chain.verify(LOT, records).reason) == (
            0,
            Break.PREV_MISMATCH,
        )

    def test_a_stored_event_that_no_longer_reads_is_reported_not_raised(self):
        records = chain.build(LOT, events(3))
        records[1] = replace(records[1], event={"weight_g": 1.5})
        result = chain.verify(LOT, records)
        assert (result.broken_at, result.reason) == (1, Break.INVALID_EVENT)
        garbage = [*records[:1], types.SimpleNamespace(event=None, prev_hash=None, hash=None)]
        assert chain.verify(LOT, garbage).broken_at == 1  # type: ignore[arg-type]


# --- Properties --------------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.text(max_size=20)
    | st.datetimes(
        min_value=datetime(2000, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))])
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
event_st = st.dictionaries(keys, values, min_size=1, max_size=5)
event_lists = st.lists(event_st, min_size=1, max_size=12)


def _other(value):
    """A value canonically different from `value`."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value + 1 if value < 2**53 - 1 else value - 1
    return [value]


class TestChainProperties:
    @given(event_lists)
    @settings(max_examples=60)
    def test_any_list_of_events_verifies(self, evs):
        records = chain.build(LOT, evs)
        result = chain.verify(LOT, records, head=records[-1].hash)
        assert result.ok and result.count == len(evs)

    @given(event_lists, st.data())
    @settings(max_examples=100)
    def test_any_single_change_fails_at_or_before_the_changed_event(self, evs, data):
        records = chain.build(LOT, evs)
        head = records[-1].hash
        mutation = data.draw(st.sampled_from(["value", "delete", "swap", "insert", "hash", "prev"]))
        i = data.draw(st.integers(0, len(records) - 1))
        expected_at: int | None = i
        if mutation == "value":
            event = dict(records[i].event)
            key = data.draw(st.sampled_from(sorted(event)))
            event[key] = _other(event[key])
            records[i] = replace(records[i], event=event)
        elif mutation == "delete":
            del records[i]
            expected_at = None if i == len(records) else i  # the last one: caught by the head
        elif mutation == "swap":
            if len(records) < 2:
                return
            j = data.draw(st.integers(0, len(records) - 1).filter(lambda j: j != i))
            records[i], records[j] = records[j], records[i]
            expected_at = min(i, j)
        elif mutation == "insert":
            extra = data.draw(
                event_st.filter(lambda e: chain.canonical(e) != chain.canonical(records[i].event))
            )
            prev = records[i - 1].hash if i else chain.genesis(LOT)
            records.insert(i, ChainRecord(extra, prev, chain.link(prev, extra)))
        elif mutation == "hash":
            records[i] = replace(records[i], hash=chain.sm3_hex(records[i].hash.encode()))
        else:
            records[i] = replace(records[i], prev_hash=chain.sm3_hex(b"x"))
        result = chain.verify(LOT, records, head=head)
        assert not result.ok
        if expected_at is not None:
            assert result.broken_at == expected_at
        else:
            assert result.reason == Break.HEAD_MISMATCH

    @given(event_st)
    def test_canonical_form_ignores_key_order(self, event):
        reversed_event = dict(reversed(list(event.items())))
        assert chain.canonical(event) == chain.canonical(reversed_event)
