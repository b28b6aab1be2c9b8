"""The one clock: every "now" and "today" of the product comes from here.

Times are stored as timezone-aware UTC; calendar days, cut-offs and what a person reads are in
Asia/Shanghai (China has one zone and no daylight saving). Code asks `clock.now()` or
`clock.today()`, never `datetime.now()`, so a test, a replay or a what-if run can move time for
the whole product by installing another clock (`install`, `installed`, `frozen`, `TickingClock`).

Left on the machine's clock on purpose: wall-time checks against another party's clock (a
webhook signature's timestamp tolerance) and elapsed-time measurements (`time.monotonic`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from time import monotonic
from typing import Protocol
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The machine's clock: what production runs on."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until moved: for tests and replays that step through time."""

    def __init__(self, at: datetime) -> None:
        self.at = _aware(at)

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = _aware(at)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self.at += delta if delta is not None else timedelta(**kwargs)
        return self.at


class TickingClock:
    """A clock that starts at a chosen instant and runs at real speed from there."""

    def __init__(self, start: datetime) -> None:
        self.start = _aware(start)
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=monotonic() - self._origin)


_current: Clock = SystemClock()


def now() -> datetime:
    """The current instant (UTC) from the installed clock."""
    return _current.now()


def today() -> date:
    """Today's date in China (Asia/Shanghai), the calendar every cut-off and day count uses."""
    return local(now()).date()


def local(at: datetime) -> datetime:
    """An instant as China's wall-clock time."""
    return at.astimezone(CHINA)


def start_of_day(day: date) -> datetime:
    """The instant (UTC) a day of China's calendar begins: for "earned in December" ranges."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(UTC)


def install(clock: Clock) -> Clock:
    """Make `clock` the product's clock; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


@contextmanager
def installed(clock: Clock) -> Iterator[Clock]:
    """Run a block on `clock`, then put the previous clock back."""
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)


@contextmanager
def frozen(at: datetime) -> Iterator[FrozenClock]:
    """Run a block with time standing at `at` (move it with .advance or .set)."""
    clock = FrozenClock(at)
    with installed(clock):
        yield clock


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given; use a timezone-aware one")
    return at.astimezone(UTC)
