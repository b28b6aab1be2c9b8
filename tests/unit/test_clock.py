"""The one clock: China's calendar day from a UTC instant, clocks that stand or tick from a chosen
instant, and installing one for a block puts the previous one back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain import clock


class TestCalendarDay:
    def test_today_is_chinas_date_not_utcs(self):
        # 16:30 UTC on 30 November is half past midnight on 1 December in Guangdong.
        with clock.frozen(datetime(2026, 11, 30, 16, 30, tzinfo=UTC)):
            assert clock.now().date() == date(2026, 11, 30)
            assert clock.today() == date(2026, 12, 1)
            assert clock.local(clock.now()).hour == 0

    def test_instants_are_kept_in_utc_whatever_zone_they_were_given_in(self):
        with clock.frozen(datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))):
            assert clock.now() == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
            assert clock.now().utcoffset() == timedelta(0)

    def test_a_naive_datetime_is_refused(self):
        with pytest.raises(ValueError, match="naive"):
            clock.FrozenClock(datetime(2026, 12, 1, 8, 0))


class TestInstallingAClock:
    def test_a_frozen_clock_moves_only_when_told(self):
        start = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
        with clock.frozen(start) as frozen:
            assert clock.now() == clock.now() == start
            frozen.advance(days=7)
            assert clock.now() == start + timedelta(days=7)
            frozen.set(start)
            assert clock.now() == start

    def test_a_ticking_clock_starts_where_asked_and_runs(self):
        start = datetime(2030, 1, 1, tzinfo=UTC)
        with clock.installed(clock.TickingClock(start)):
            first, second = clock.now(), clock.now()
        assert start <= first <= second < start + timedelta(seconds=5)

    def test_the_previous_clock_comes_back_after_the_block_even_on_error(self):
        before = clock.now()
        with pytest.raises(RuntimeError), clock.frozen(datetime(2000, 1, 1, tzinfo=UTC)):
            raise RuntimeError
        # The suite's own ticking clock (started at tests.conftest.NOW) is back.
        assert abs(clock.now() - before) < timedelta(seconds=5)
