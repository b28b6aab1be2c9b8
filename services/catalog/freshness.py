"""How fresh the shop's lists are: a version every process reads, and the time boundaries
(campaign starts and ends) that change what the lists show without any write.

The shop caches rendered list pages (marketplace/web/shop/cache.py). Its entries are keyed by
`Tracker.key()`: the catalog's version and the last boundary that has passed, so

- a change a list shows (a listing's price, status or stock state; a new or deleted listing; a
  campaign edited) calls `bump(session, reason)` in its own transaction. The version moves
  when that transaction commits, and every process reads it on its next request: a page
  rendered before the change is never served after it;
- a module whose prices change at given instants (campaigns) registers a function
  `fn(session, now) -> list[datetime]` with `register_boundaries(fn)`; the key changes when
  `clock.now()` reaches one of them (a campaign starting at 10:00:00 shows at 10:00:00).

What it costs a request: one primary-key read of the version. The boundary lists are read
again only when the version moves (whoever changes what a boundary function reads must bump),
when the registered functions change, and at least every BOUNDARY_REFRESH (for a function that
looks a limited time ahead).

Why the version moves at commit: `bump` only notes the reason on the session; the UPDATE of the
one version row is issued just before the transaction commits (a `before_commit` hook). The row
is then the last lock a writer takes and is held only while it commits, so two writers (two
checkouts selling out two products, an expiry job putting units back) never wait on each other
through it and cannot deadlock on it, and the version still moves in the change's transaction.
A bump in a transaction rolled back is forgotten with it.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from domain import clock
from domain.catalog import CatalogFreshness

BoundaryFn = Callable[[Session, datetime], Iterable[datetime]]
# A key: (the catalog's version, the last boundary passed or None).
Key = tuple[int, datetime | None]

ROW_ID = 1
BOUNDARY_REFRESH = timedelta(minutes=10)
_PENDING = "catalog_freshness_reasons"  # session.info: the reasons noted in this transaction

_boundary_fns: list[BoundaryFn] = []
_generation = 0  # moves when the registered functions change
_registry_lock = threading.Lock()


# --- the version --------------------------------------------------------------------------------


def bump(session: Session, reason: str) -> None:
    """The lists change with this transaction: the version moves when it commits (once, whatever
    the number of calls). Call it in the transaction that makes the change."""
    session.info.setdefault(_PENDING, []).append(reason)


_VERSION = select(CatalogFreshness.version).where(CatalogFreshness.id == ROW_ID)


def version(session: Session) -> int:
    """The catalog's version as committed (0 before the first change)."""
    return session.scalar(_VERSION) or 0


@event.listens_for(Session, "before_commit")
def _apply_bumps(session: Session) -> None:
    reasons = session.info.pop(_PENDING, None)
    if not reasons:
        return
    reason = ",".join(dict.fromkeys(reasons))[:40]
    moved = session.execute(
        update(CatalogFreshness)
        .where(CatalogFreshness.id == ROW_ID)
        .values(version=CatalogFreshness.version + 1, reason=reason, changed_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount == 0:  # type: ignore[attr-defined]  # a database made without the migration's row
        session.add(CatalogFreshness(id=ROW_ID, version=1, reason=reason, changed_at=clock.now()))
        session.flush()


@event.listens_for(Session, "after_rollback")
def _forget_bumps(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- time boundaries ----------------------------------------------------------------------------


def register_boundaries(fn: BoundaryFn) -> BoundaryFn:
    """Register `fn(session, now) -> [datetime, …]`: instants at which what the lists show
    changes by itself (a campaign's start and end). It must return every such instant still to
    come (past ones may be left out) for the catalog as committed; whoever changes what it reads
    must `bump`. Usable as a decorator; registering the same function twice keeps one."""
    global _generation
    with _registry_lock:
        if fn not in _boundary_fns:
            _boundary_fns.append(fn)
            _generation += 1
    return fn


def unregister_boundaries(fn: BoundaryFn) -> None:
    global _generation
    with _registry_lock:
        if fn in _boundary_fns:
            _boundary_fns.remove(fn)
            _generation += 1


def boundaries(session: Session, now: datetime) -> tuple[datetime, ...]:
    """Every registered function's boundaries, as aware UTC instants, sorted, without repeats."""
    with _registry_lock:
        fns = list(_boundary_fns)
    found: set[datetime] = set()
    for fn in fns:
        for instant in fn(session, now):
            if instant.tzinfo is None:
                raise ValueError(f"{fn!r} returned a naive datetime: {instant!r}")
            found.add(instant.astimezone(UTC))
    return tuple(sorted(found))


class Tracker:
    """A process's view of the freshness: reads the version on every `key()` and keeps the
    sorted boundary list of that version (one per app: it reads through the app's sessions)."""

    def __init__(self, refresh: timedelta = BOUNDARY_REFRESH) -> None:
        self.refresh = refresh
        self._lock = threading.Lock()
        # (version, registry generation, read at, boundaries)
        self._memo: tuple[int, int, datetime, tuple[datetime, ...]] | None = None

    def key(self, session: Session, now: datetime | None = None) -> Key:
        """(version, last boundary passed at `now`): equal keys show the same lists."""
        return self.key_for(version(session), lambda: session, now)

    def key_for(self, current: int, session: Callable[[], Session], now: datetime | None = None) -> Key:
        """key() for a version read elsewhere (`session()` is called only to read boundaries)."""
        now = now or clock.now()
        memo = self._memo
        if (
            memo is None
            or memo[0] != current
            or memo[1] != _generation
            or not memo[2] <= now < memo[2] + self.refresh
        ):
            generation = _generation
            memo = (current, generation, now, boundaries(session(), now) if _boundary_fns else ())
            with self._lock:
                self._memo = memo
        passed = bisect_right(memo[3], now)
        return current, memo[3][passed - 1] if passed else None

    def clear(self) -> None:
        with self._lock:
            self._memo = None
