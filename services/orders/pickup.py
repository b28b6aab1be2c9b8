"""Pickup codes: the 6 digits a buyer tells the village agent to collect a pickup order.

Stored hashed, yet shown to the buyer: the code is derived, never stored. One code per order
(every parcel of the order is collected with it):

    code = HMAC-SHA256(secret, "pickup-code:<order id>:<salt>") → 6 digits
    code_hash = HMAC-SHA256(secret, "pickup-code-hash:<order id>:<salt>:<code>")

The row (`domain.PickupCode`) holds a random salt and the keyed hash; the buyer's order page and
the ready-for-pickup SMS recompute the code from the secret, and the hand-over compares the hash
of what was typed in constant time. Without the secret, a copy of the database tells nothing
(the hash is keyed, so 10⁶ guesses offline do not find it either).

Wrong codes are counted with the limit SMS codes have (`AuthPolicy.code_max_attempts`, 5): at the
limit the code is locked, and only the buyer can unlock it, by having a new code issued (new
salt, count back to zero, sent by SMS). So an agent guessing gets at most 5 tries per code the
buyer chose to issue: a chance of 5 in a million. A right code puts the count back to zero.

The secret comes from the app (PICKUP_CODE_SECRET, by default the app's SECRET_KEY): changing it
changes every code, and the codes issued before no longer check (the buyer issues a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import DeliveryMethod, Order, OrderStatus, PickupCode, clock
from services.accounts import AuthPolicy
from services.errors import Conflict, ValidationError
from services.i18n import _

S = OrderStatus
DIGITS = 6
# While one of its parcels is in these states, an order's code is shown and can be used.
WAITING = (S.PAID, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.READY_FOR_PICKUP)


@dataclass(frozen=True)
class PickupCodeKeys:
    """The server secret codes are derived from, and how many wrong codes lock one."""

    secret: str = field(repr=False)
    max_attempts: int = AuthPolicy.code_max_attempts

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PickupCodeKeys:
        secret = str(settings.get("PICKUP_CODE_SECRET") or settings.get("SECRET_KEY") or "")
        if not secret:
            raise RuntimeError("pickup codes need PICKUP_CODE_SECRET or SECRET_KEY")
        attempts = settings.get("SMS_CODE_MAX_ATTEMPTS") or AuthPolicy.code_max_attempts
        return cls(secret=secret, max_attempts=int(attempts))


class WrongPickupCode(ValidationError):
    code = "wrong_pickup_code"


class PickupCodeLocked(Conflict):
    code = "pickup_code_locked"

    @classmethod
    def default_message(cls) -> Any:
        return _(
            "Too many wrong pickup codes: this code is locked. The buyer can have a new code sent"
            " from their order page."
        )


def is_pickup(order: Order) -> bool:
    return order.delivery_method == DeliveryMethod.PICKUP


def waiting(order: Order) -> bool:
    """Whether a parcel of this pickup order is still to be collected (its code is in use)."""
    return is_pickup(order) and any(sub.status in WAITING for sub in order.sub_orders)


def _mac(keys: PickupCodeKeys, text: str) -> bytes:
    return hmac.new(keys.secret.encode(), text.encode(), hashlib.sha256).digest()


def derive(keys: PickupCodeKeys, order_id: int, salt: str) -> str:
    """The code of this order and salt (64 bits of the MAC modulo 10⁶: no visible bias)."""
    number = int.from_bytes(_mac(keys, f"pickup-code:{order_id}:{salt}")[:8], "big")
    return f"{number % 10**DIGITS:0{DIGITS}d}"


def code_hash(keys: PickupCodeKeys, order_id: int, salt: str, code: str) -> str:
    return _mac(keys, f"pickup-code-hash:{order_id}:{salt}:{code}").hex()


def code_of(keys: PickupCodeKeys, row: PickupCode) -> str:
    """The code a row stands for (the buyer's page, the SMS)."""
    return derive(keys, row.order_id, row.salt)


def _fill(keys: PickupCodeKeys, row: PickupCode) -> None:
    row.salt = secrets.token_hex(16)
    row.code_hash = code_hash(keys, row.order_id, row.salt, derive(keys, row.order_id, row.salt))


def ensure_code(session: Session, order: Order, keys: PickupCodeKeys, *, lock: bool = False) -> PickupCode:
    """The order's code, made on first need (the caller commits). Two makers at once: the
    second finds the first's row."""
    stmt = select(PickupCode).where(PickupCode.order_id == order.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(stmt)
    if row is not None:
        return row
    row = PickupCode(order_id=order.id, attempts=0, issue=1, created_at=clock.now())
    _fill(keys, row)
    session.flush()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = session.scalar(stmt)
        assert found is not None
        return found
    return row


def reissue(
    session: Session, order: Order, keys: PickupCodeKeys, *, now: datetime | None = None
) -> PickupCode:
    """A new code for the order: new salt, count back to zero; the old code stops working."""
    row = ensure_code(session, order, keys, lock=True)
    _fill(keys, row)
    row.attempts = 0
    row.issue += 1
    row.created_at = now or clock.now()
    row.last_failed_at = None
    return row


def attempts_left(keys: PickupCodeKeys, row: PickupCode) -> int:
    return max(keys.max_attempts - row.attempts, 0)


def check(
    session: Session, order: Order, typed: str | None, keys: PickupCodeKeys, *, now: datetime | None = None
) -> None:
    """Check the code typed at hand-over. Right: the count goes back to zero (the caller commits
    with the hand-over). Wrong: counted and committed, then WrongPickupCode (with the tries left)
    or, at the limit, PickupCodeLocked. Locked: PickupCodeLocked, nothing counted. An empty code
    is asked for again and not counted."""
    typed = (typed or "").strip()
    if not typed:
        msg = _("Enter the buyer's pickup code.")
        raise ValidationError(msg, field_errors={"pickup_code": [msg]})
    row = ensure_code(session, order, keys, lock=True)
    if row.attempts >= keys.max_attempts:
        raise PickupCodeLocked()
    # Compared as hashes, in constant time; a code of the wrong shape is simply wrong.
    if not hmac.compare_digest(row.code_hash, code_hash(keys, order.id, row.salt, typed[:16])):
        row.attempts += 1
        row.last_failed_at = now or clock.now()
        session.commit()
        left = attempts_left(keys, row)
        if left <= 0:
            raise PickupCodeLocked()
        msg = _("The pickup code is wrong. Tries left: %(n)d.", n=left)
        raise WrongPickupCode(msg, field_errors={"pickup_code": [msg]})
    row.attempts = 0
