"""Admission to a flash sale before its rows: a crowd must not queue on one row lock.

When hundreds of buyers press "buy" on one flash-sale product in the same second, every checkout
would take the product's row (stock) and the sign-up's row (quota) with a conditional UPDATE and
hold them until it commits: they queue one behind the other, and the last waits seconds. The gate
lets through only as many units as the quota has left, counted in Redis with one atomic script per
checkout (no lock, microseconds); the others are told at once that the campaign price has sold
out, without touching the database. A checkout that says which flash-sale prices it buys at
(`CheckoutInput.flash_items`, the cart's `flash_item_id`s) is refused before anything else once
their counters are at 0 (`sold_out`: one MGET): the crowd after the last unit costs the app a
token check, a lock of the buyer's own row and an idempotency lookup each, not a priced cart.
Those let through still take the rows (the database stays the authority: its conditional UPDATEs
and CHECK constraints decide, so nothing is ever oversold even if the counter is wrong); there are
at most as many of them as units.

The counter is a cache of `quota - quota_used`, read from the database when missing, and it
expires after COUNTER_TTL_SECONDS, so any drift (a process that died between the gate and its
commit, a release by a job in a process without the gate) heals by itself within that time. A
checkout that fails after it was let through gives its units back at once. Without Redis
(REDIS_URL unset, SQLite development, tests that do not install one) `NoGate` lets everyone
through and the database alone decides, as before.

In front of the API, `door` does the same before the app is even reached (marketplace/
flash_door.py): one unit of each claimed item for a new checkout, which then holds it
(`CheckoutInput.flash_tickets`), or a refusal from Redis alone once a counter is at 0. The crowd
after the last unit then costs neither a token read nor a lock nor a lookup. A counter the door
finds missing is read from the database once per process (`warm`), the rest of the crowd waiting
for that one read, so a crowd that arrives at a cold counter is still answered at the door.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import CampaignItem

COUNTER_TTL_SECONDS = 30
# KEYS[1] the counter. ARGV[1] units wanted. Returns 1 let through (taken), 0 not enough left,
# -1 no counter (the caller reads the database and sets it, then asks again).
_ADMIT = """
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
if tonumber(left) >= tonumber(ARGV[1]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# The door (marketplace/flash_door.py), before the app: KEYS[1] the checkout's pass (its buyer's
# token and idempotency key), KEYS[2..] the counters of the flash-sale items it claims; ARGV[1] the
# pass's lifetime. Returns 2 when the pass is known (a repeat of a checkout let in before: it goes
# on, taking nothing), -1 when a counter is missing (the app reads the database), 0 when one is at
# 0 (sold out), else 1: one unit of each counter taken, the pass recorded.
_DOOR = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
for i = 2, #KEYS do
  local left = redis.call('GET', KEYS[i])
  if not left then return -1 end
  if tonumber(left) < 1 then return 0 end
end
for i = 2, #KEYS do redis.call('DECRBY', KEYS[i], 1) end
redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
return 1
"""

_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 0
"""


class Gate(Protocol):
    def admit(self, session: Session, item_id: int, units: int) -> bool: ...

    def sold_out(self, session: Session, item_ids: Sequence[int]) -> bool: ...

    def give_back(self, item_id: int, units: int) -> None: ...


# What the door answers (RedisGate.door).
LET_IN, REPEAT, SOLD_OUT, UNKNOWN = 1, 2, 0, -1
PASS_TTL_SECONDS = 24 * 3600  # a repeat of a checkout this long after it was let in still goes on


class NoGate:
    """Everyone through: the database's conditional UPDATEs alone decide."""

    def admit(self, session: Session, item_id: int, units: int) -> bool:
        return True

    def sold_out(self, session: Session, item_ids: Sequence[int]) -> bool:
        return False

    def give_back(self, item_id: int, units: int) -> None:
        return None


class RedisGate:
    def __init__(self, client: Any, prefix: str = "gdm:flash:") -> None:
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._give_back = client.register_script(_GIVE_BACK)
        self._door = client.register_script(_DOOR)
        # One reader of missing counters at a time in this process (`warm`); a gevent lock once
        # gunicorn's gevent worker has patched the standard library.
        self._loading = threading.Lock()

    def _key(self, item_id: int) -> str:
        return f"{self.prefix}{item_id}"

    def admit(self, session: Session, item_id: int, units: int) -> bool:
        key = self._key(item_id)
        result = int(self._admit(keys=[key], args=[units]))
        if result == -1:
            if not self._load(session, item_id):
                return True
            result = int(self._admit(keys=[key], args=[units]))
        return result == 1

    def _load(self, session: Session, item_id: int) -> bool:
        """Set a missing counter from the database (False: the item has no quota)."""
        row = session.execute(
            select(CampaignItem.quota, CampaignItem.quota_used).where(CampaignItem.id == item_id)
        ).first()
        if row is None or row[0] is None:
            return False
        self.client.set(self._key(item_id), max(0, row[0] - row[1]), ex=COUNTER_TTL_SECONDS, nx=True)
        return True

    def sold_out(self, session: Session, item_ids: Sequence[int]) -> bool:
        """Whether the counter of one of these items says every unit is let through (one MGET; a
        missing counter is read from the database first, through `warm`)."""
        if not item_ids:
            return False
        keys = [self._key(i) for i in item_ids]
        values = self.client.mget(keys)
        if any(v is None for v in values):
            self.warm(lambda: nullcontext(session), item_ids)
            values = self.client.mget(keys)
        return any(v is not None and int(v) <= 0 for v in values)

    def door(self, item_ids: Sequence[int], pass_id: str) -> int:
        """Before the app: one unit of each item's counter for a new checkout (LET_IN; the
        checkout then holds that ticket, `CheckoutInput.flash_tickets`), SOLD_OUT when one is
        at 0, REPEAT for a checkout let in before (`pass_id`: its token and key, hashed), UNKNOWN
        when a counter is missing. One script, one round trip, no database."""
        keys = [f"{self.prefix}pass:{pass_id}", *(self._key(i) for i in item_ids)]
        return int(self._door(keys=keys, args=[PASS_TTL_SECONDS]))

    def warm(
        self, open_session: Callable[[], AbstractContextManager[Session]], item_ids: Sequence[int]
    ) -> None:
        """Set the missing counters of these items from the database (the door, which has no
        session of its own, opens one only if a counter is still missing). A flash sale's crowd
        arrives all at once, usually at a counter that is not there yet (none is set before the
        first checkout, and one expires COUNTER_TTL_SECONDS after it was set): the first request
        of the process reads the database while the others wait for it here and then find the
        counter, so the crowd is answered at the door instead of hundreds of requests going on to
        the app to read it each."""
        keys = [self._key(i) for i in item_ids]
        with self._loading:
            missing = [i for i, value in zip(item_ids, self.client.mget(keys), strict=True) if value is None]
            if missing:
                with open_session() as session:
                    for item_id in missing:
                        self._load(session, item_id)

    def give_back(self, item_id: int, units: int) -> None:
        key = self._key(item_id)
        # Only onto a live counter: a missing one is read again from the database.
        self._give_back(keys=[key], args=[units])

    def forget(self, item_id: int) -> None:
        """Drop the counter (a quota changed): the next checkout reads the database."""
        self.client.delete(self._key(item_id))


_gate: Gate = NoGate()


def install(gate: Gate | None) -> Gate:
    """The gate every checkout of this process uses (the app factory installs a RedisGate when
    REDIS_URL is set); returns the previous one."""
    global _gate
    previous, _gate = _gate, gate or NoGate()
    return previous


def current() -> Gate:
    return _gate
