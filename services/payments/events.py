"""Webhook events from the payment gateway: kept once, processed once, retried with backoff when
processing fails, and handed to the admins after the last try.

The webhook view verifies a delivery (the gateway's `parse_webhook`) and calls `record_event`,
which keeps the event once by its id and makes it due a minute later, in case the queue loses
it; the queue (inline in the embedded default) then calls `process_event`. Every way an event is
processed (the queue, the "retry-webhook-events" job's `retry_due`, an admin's `process_again`)
goes through `process_event`, which

- claims the event with one conditional UPDATE (not processed, not held by a live lease, not
  given up unless an admin asks), so two runners never process one event at once, and counts
  the attempt;
- applies it with the payment use cases (`apply_intent`, `settle_refund`), which apply anything
  exactly once however often they run;
- on success marks it processed; on failure records the error and, by `BACKOFF`, when to try
  again, or, after `max_attempts` tries, gives it up: the admins' webhooks page
  (/admin/webhooks) lists it with its error and a "process again" button.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import Refund, User, WebhookEvent, clock
from services import authz
from services.errors import NotFound, ServiceError
from services.i18n import _

from .gateway import PaymentGateway
from .service import REFUND_KEY, _payment_for_intent, apply_intent, settle_refund
from .stripe import intent_from_json, refund_from_json

log = logging.getLogger(__name__)

# How long after the n-th failed attempt the next one is made; past the end, the last again.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
# The first try and one retry per step of BACKOFF (WEBHOOK_MAX_ATTEMPTS changes it).
DEFAULT_MAX_ATTEMPTS = len(BACKOFF) + 1
# How long a runner holds an event it processes: longer than any processing takes (a gateway
# call with its retries); a runner that crashed leaves a lease that runs out.
LEASE = timedelta(minutes=5)
RETRY_BATCH = 50
MAX_ERROR_CHARS = 4000
MAX_LISTED = 200


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after `attempts` failed attempts before the next."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


# --- receiving ----------------------------------------------------------------------------------


def record_event(session: Session, event: Mapping[str, Any], *, now: datetime | None = None) -> str | None:
    """Keep a verified event once, by its id. Returns the id to process, or None when there is
    nothing to do: already processed (a replay or a duplicate delivery), or given up (it waits
    for an admin)."""
    event_id = event.get("id")
    event_type = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, Mapping):
        raise ServiceError(_("Not a payment event."))
    if len(event_id) > 64:
        raise ServiceError(_("Not a payment event."))
    existing = session.get(WebhookEvent, event_id)
    if existing is not None:
        return event_id if existing.state in ("new", "retrying") else None
    now = now or clock.now()
    session.add(
        WebhookEvent(
            id=event_id,
            type=event_type[:64],
            payload=dict(event),
            received_at=now,
            # Processed on the queue at once; if the queue loses it, the retry job takes it.
            next_attempt_at=now + BACKOFF[0],
        )
    )
    try:
        session.commit()
    except IntegrityError:  # the same event delivered twice at once
        session.rollback()
        return None
    return event_id


# --- processing ---------------------------------------------------------------------------------


@dataclass
class EventOutcome:
    """What `process_event` did. `ran` is False when it did not process the event: processed
    already, given up (only an admin processes it again) or held by another runner."""

    event_id: str
    ran: bool
    ok: bool | None = None
    state: str = ""
    attempts: int = 0
    error: str = ""


def process_event(
    session: Session,
    gateway: PaymentGateway,
    event_id: str,
    *,
    now: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    runner: str | None = None,
    force: bool = False,
) -> EventOutcome:
    """Process one received event unless another runner holds it; never raises for the
    processing's own failure (it is recorded and the next attempt scheduled). `force` (an
    admin's "process again") processes a given-up event too."""
    now = now or clock.now()
    runner = runner or uuid.uuid4().hex
    conditions = [
        WebhookEvent.id == event_id,
        WebhookEvent.processed_at.is_(None),
        or_(WebhookEvent.locked_until.is_(None), WebhookEvent.locked_until <= now),
    ]
    if not force:
        conditions.append(WebhookEvent.gave_up_at.is_(None))
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(WebhookEvent)
        .where(*conditions)
        .values(locked_until=now + LEASE, locked_by=runner, attempts=WebhookEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    event = session.get(WebhookEvent, event_id, populate_existing=True)
    if event is None:
        raise NotFound(_("There is no such event."))
    if claimed.rowcount != 1:
        return EventOutcome(
            event_id, ran=False, state=event.state, attempts=event.attempts, error=event.error
        )
    attempts = event.attempts
    try:
        _apply_event(session, gateway, event.type, event.payload)
    except Exception as exc:  # recorded and retried; the runner must keep going
        session.rollback()
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        failed_at = max(now, clock.now())
        given_up = attempts >= max_attempts
        log.warning(
            "webhook event %s (%s) failed, attempt %d of %d%s",
            event_id,
            event.type,
            attempts,
            max_attempts,
            "; given up" if given_up else "",
            exc_info=True,
        )
        _finish(
            session,
            event_id,
            runner,
            error=error,
            next_attempt_at=None if given_up else failed_at + retry_delay(attempts),
            gave_up_at=failed_at if given_up else None,
        )
        state = "given_up" if given_up else "retrying"
        return EventOutcome(event_id, ran=True, ok=False, state=state, attempts=attempts, error=error)
    _finish(
        session,
        event_id,
        runner,
        processed_at=max(now, clock.now()),
        error="",
        next_attempt_at=None,
        gave_up_at=None,
    )
    return EventOutcome(event_id, ran=True, ok=True, state="processed", attempts=attempts)


def _finish(session: Session, event_id: str, runner: str, **values: Any) -> None:
    # Only while still the holder: a runner whose lease ran out and was taken over writes nothing.
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.locked_by == runner)
        .values(locked_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _apply_event(
    session: Session, gateway: PaymentGateway, event_type: str, payload: Mapping[str, Any]
) -> None:
    """What an event means for our payments and refunds; idempotent (the use cases are)."""
    obj = payload["data"]["object"]
    if event_type.startswith("payment_intent."):
        intent = intent_from_json(obj)
        if _payment_for_intent(session, intent) is not None:
            apply_intent(session, gateway, intent)
    elif event_type.startswith(("charge.refund", "refund.")):
        for raw in _refunds_in(event_type, obj):
            result = refund_from_json(raw)
            refund = session.scalar(select(Refund).where(Refund.gateway_refund_id == result.id))
            if refund is None and result.metadata.get(REFUND_KEY):
                refund = session.scalar(
                    select(Refund).where(Refund.idempotency_key == result.metadata[REFUND_KEY])
                )
            if refund is not None:
                settle_refund(session, refund.id, result.id, result.status)


def _refunds_in(event_type: str, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if event_type.startswith("refund."):
        return [obj]
    refunds = obj.get("refunds")
    if isinstance(refunds, Mapping):
        return [r for r in refunds.get("data") or [] if isinstance(r, Mapping)]
    return []


# --- the retry job ------------------------------------------------------------------------------


def retry_due(
    session: Session,
    gateway: PaymentGateway,
    *,
    now: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    batch: int = RETRY_BATCH,
    runner: str | None = None,
) -> dict[str, int]:
    """Process the events due again (failed, or never processed because the queue lost them),
    oldest due first, at most `batch` a run. Each is claimed on its own, so another runner (the
    queue, a second job runner, an admin) never processes the same one beside it."""
    now = now or clock.now()
    runner = runner or uuid.uuid4().hex
    due = session.scalars(
        select(WebhookEvent.id)
        .where(
            WebhookEvent.processed_at.is_(None),
            WebhookEvent.gave_up_at.is_(None),
            WebhookEvent.next_attempt_at <= now,
            or_(WebhookEvent.locked_until.is_(None), WebhookEvent.locked_until <= now),
        )
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
        .limit(batch)
    ).all()
    session.commit()
    report = {"processed": 0, "failed": 0, "given_up": 0, "skipped": 0}
    for event_id in due:
        outcome = process_event(session, gateway, event_id, now=now, max_attempts=max_attempts, runner=runner)
        if not outcome.ran:
            report["skipped"] += 1
        elif outcome.ok:
            report["processed"] += 1
        elif outcome.state == "given_up":
            report["given_up"] += 1
        else:
            report["failed"] += 1
    return report


# --- the admins' webhooks page ------------------------------------------------------------------


def failed_events(session: Session, user: User | None, *, limit: int = MAX_LISTED) -> list[WebhookEvent]:
    """The events not processed after at least one attempt: given up first, then those waiting
    for their next try; newest first within each. Admins only."""
    authz.require_admin(user)
    return list(
        session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts > 0)
            .order_by(WebhookEvent.gave_up_at.is_(None), WebhookEvent.received_at.desc(), WebhookEvent.id)
            .limit(limit)
        )
    )


def process_again(
    session: Session,
    gateway: PaymentGateway,
    user: User | None,
    event_id: str,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> EventOutcome:
    """An admin processes an event at once, given up or not (never beside another runner)."""
    authz.require_admin(user)
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= 64
        or session.get(WebhookEvent, event_id) is None
    ):
        raise NotFound(_("There is no such event."))
    return process_event(session, gateway, event_id, max_attempts=max_attempts, force=True)
