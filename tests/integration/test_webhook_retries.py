"""No webhook event is left behind (issue 10, item 6).

An event whose processing fails is tried again by the retry-webhook-events job with backoff
(1 min, 5 min, 30 min, 2 h, 12 h), and after the last try it is given up (the admins' page lists
it). Faults are made at the database's edge: the statements that read payments fail with
"database is locked" for a while, as SQLite answers a writer that waited too long. Two runners at
once (the queue and the job, or two job runners) never process one event twice.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from domain import Base, LedgerTransaction, Order, PaymentStatus, WebhookEvent
from marketplace.db import make_engine
from services import jobs, ledger
from services.orders.pricing import CheckoutSettings
from services.payments import events
from services.payments import service as payments
from tests.conftest import NOW, count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
PAYMENTS_SQL = re.compile(r"\bpayments\b")


@contextmanager
def locked_payments(connection: Any, times: int) -> Iterator[dict[str, int]]:
    """The next `times` statements that read or write payments fail as a locked SQLite
    database does; counts them in ["failed"]."""
    state = {"failed": 0}

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if PAYMENTS_SQL.search(statement) and state["failed"] < times:
            state["failed"] += 1
            raise OperationalError(statement, parameters, sqlite3.OperationalError("database is locked"))

    sa_event.listen(connection, "before_cursor_execute", before)
    try:
        yield state
    finally:
        sa_event.remove(connection, "before_cursor_execute", before)


def paid_at_the_gateway(session, market, gateway) -> tuple[Order, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """An order whose card the gateway charged, and the payment_intent.succeeded event saying
    so (its news has not reached us otherwise)."""
    order = market.place({"梅县金柚": 1}, SETTINGS)
    payment = payments.ensure_intent(session, gateway, order)
    intent = gateway.confirm_payment_intent(
        payment.intent_id, payment_method="pm_card_visa", idempotency_key=f"confirm-{order.number}"
    )
    assert intent.status == "succeeded"
    event = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": intent.raw},
    }
    return order, event


def paid_postings(session) -> int:  # type: ignore[no-untyped-def]
    return count(session, LedgerTransaction, LedgerTransaction.kind == "sub_order_paid")


def event_row(session: Session, event_id: str) -> WebhookEvent:
    session.expire_all()
    row = session.get(WebhookEvent, event_id)
    assert row is not None
    return row


def fail_until_given_up(session, gateway, clock, event_id: str, max_attempts: int) -> None:  # type: ignore[no-untyped-def]
    """Fail the event's processing on the queue and on every retry until it is given up."""
    with locked_payments(session.connection(), times=10_000):
        outcome = events.process_event(session, gateway, event_id, max_attempts=max_attempts)
        while outcome.state != "given_up":
            clock.advance(events.retry_delay(outcome.attempts))
            report = events.retry_due(session, gateway, max_attempts=max_attempts)
            assert report["failed"] + report["given_up"] == 1, report
            outcome = events.EventOutcome(event_id, ran=True, **_state(session, event_id))


def _state(session: Session, event_id: str) -> dict[str, Any]:
    row = event_row(session, event_id)
    return {"state": row.state, "attempts": row.attempts}


class TestRetries:
    def test_failing_twice_then_processed_by_the_retry_job(self, session, market, gateway, clock):
        order, event = paid_at_the_gateway(session, market, gateway)
        event_id = events.record_event(session, event)
        assert event_id == event["id"]
        assert event_row(session, event_id).next_attempt_at == NOW + timedelta(minutes=1)
        with locked_payments(session.connection(), times=2) as fault:
            first = events.process_event(session, gateway, event_id)  # the queue, at once
            assert (first.ran, first.ok, first.state, first.attempts) == (True, False, "retrying", 1)
            row = event_row(session, event_id)
            assert "database is locked" in row.error
            assert row.next_attempt_at == NOW + timedelta(minutes=1) and row.locked_until is None
            # Not due yet: the job leaves it.
            assert events.retry_due(session, gateway)["failed"] == 0
            clock.advance(timedelta(minutes=1))
            assert events.retry_due(session, gateway) == {
                "processed": 0,
                "failed": 1,
                "given_up": 0,
                "skipped": 0,
            }
            assert event_row(session, event_id).next_attempt_at == clock.now() + timedelta(minutes=5)
            clock.advance(timedelta(minutes=4))
            assert events.retry_due(session, gateway)["processed"] == 0  # 5 min, not 4
            clock.advance(timedelta(minutes=1))
            assert events.retry_due(session, gateway) == {
                "processed": 1,
                "failed": 0,
                "given_up": 0,
                "skipped": 0,
            }
            assert fault["failed"] == 2
        row = event_row(session, event_id)
        assert (row.state, row.attempts, row.error, row.next_attempt_at) == ("processed", 3, "", None)
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        assert paid_postings(session) == 1
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        # A late duplicate delivery changes nothing.
        assert events.record_event(session, event) is None
        assert not events.process_event(session, gateway, event_id).ran
        assert paid_postings(session) == 1

    def test_past_the_last_try_it_is_given_up_and_listed_for_admins(
        self, session, market, gateway, clock, admin
    ):
        order, event = paid_at_the_gateway(session, market, gateway)
        event_id = events.record_event(session, event)
        fail_until_given_up(session, gateway, clock, event_id, max_attempts=events.DEFAULT_MAX_ATTEMPTS)
        row = event_row(session, event_id)
        assert (row.state, row.attempts, row.next_attempt_at) == ("given_up", 6, None)
        assert row.gave_up_at == NOW + sum(events.BACKOFF, timedelta())
        assert [e.id for e in events.failed_events(session, admin)] == [event_id]
        # Nobody retries it by itself any more, a redelivery included.
        clock.advance(timedelta(days=2))
        assert events.retry_due(session, gateway)["given_up"] == 0
        assert events.record_event(session, event) is None
        assert not events.process_event(session, gateway, event_id).ran
        assert payments.payment_of(session, order).status != PaymentStatus.SUCCEEDED
        # An admin processes it again.
        outcome = events.process_again(session, gateway, admin, event_id)
        assert (outcome.ok, outcome.state, outcome.attempts) == (True, "processed", 7)
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        assert events.failed_events(session, admin) == []
        assert paid_postings(session) == 1

    def test_the_number_of_tries_is_a_setting_of_the_job(self, session, market, gateway, clock):
        _order, event = paid_at_the_gateway(session, market, gateway)
        event_id = events.record_event(session, event)
        ctx = jobs.JobContext(settings={"WEBHOOK_MAX_ATTEMPTS": 2}, payment_gateway=lambda: gateway)
        spec = jobs.REGISTRY["retry-webhook-events"]
        with locked_payments(session.connection(), times=10):
            events.process_event(session, gateway, event_id, max_attempts=2)
            clock.advance(timedelta(minutes=1))
            assert spec.function(session, ctx)["given_up"] == 1
        assert event_row(session, event_id).state == "given_up"

    def test_an_event_the_queue_lost_is_processed_by_the_job(self, session, market, gateway, clock):
        order, event = paid_at_the_gateway(session, market, gateway)
        event_id = events.record_event(session, event)  # and the queue never ran it
        clock.advance(timedelta(minutes=1))
        assert events.retry_due(session, gateway)["processed"] == 1
        assert event_row(session, event_id).attempts == 1
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED

    def test_a_crashed_runners_lease_runs_out(self, session, market, gateway, clock):
        order, event = paid_at_the_gateway(session, market, gateway)
        event_id = events.record_event(session, event)
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(locked_until=clock.now() + events.LEASE, locked_by="crashed")
        )
        session.commit()
        clock.advance(timedelta(minutes=1))
        assert not events.process_event(session, gateway, event_id).ran  # held
        assert events.retry_due(session, gateway)["processed"] == 0
        clock.advance(events.LEASE)
        assert events.retry_due(session, gateway)["processed"] == 1
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED


@pytest.fixture(params=["sqlite-file", "test-backend"])
def race_engine(request, tmp_path, new_database):  # type: ignore[no-untyped-def]
    """A database of its own, committed for real: a SQLite file (what `make run` uses) and the
    run's backend (PostgreSQL under TEST_DATABASE=postgresql)."""
    url = f"sqlite:///{tmp_path / 'events.db'}" if request.param == "sqlite-file" else new_database("events")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


class TestTwoRunnersAtOnce:
    RUNNERS = 8

    def test_an_event_is_processed_once(self, race_engine, gateway):
        # An event about a PaymentIntent of no payment of ours: processing reads payments and
        # applies nothing. Each processing's read of payments is counted and made slow, so the
        # other runners try meanwhile. (On PostgreSQL the claim is what stops them; SQLite's
        # BEGIN IMMEDIATE serialises whole transactions, and the file database shows that
        # `make run`'s setting holds too.)
        guard = threading.Lock()
        reads = {"n": 0}

        def slow_read(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if PAYMENTS_SQL.search(statement) and statement.lstrip().upper().startswith("SELECT"):
                with guard:
                    reads["n"] += 1
                time.sleep(0.2)

        with Session(race_engine) as s:
            event_id = events.record_event(
                s,
                {
                    "id": "evt_race",
                    "type": "payment_intent.succeeded",
                    "data": {"object": _intent("pi_race")},
                },
                now=NOW,
            )
        assert event_id == "evt_race"
        sa_event.listen(race_engine, "before_cursor_execute", slow_read)
        start = threading.Barrier(self.RUNNERS)
        later = NOW + timedelta(minutes=2)  # due for the job too

        def runner(n: int) -> tuple[str, bool]:
            with Session(race_engine) as s:
                start.wait()
                if n % 2:  # the job
                    report = events.retry_due(s, gateway, now=later, runner=f"job-{n}")
                    return "job", report["processed"] == 1
                outcome = events.process_event(s, gateway, "evt_race", now=later, runner=f"queue-{n}")
                return "queue", bool(outcome.ran)

        try:
            with ThreadPoolExecutor(self.RUNNERS) as pool:
                results = list(pool.map(runner, range(self.RUNNERS)))
        finally:
            sa_event.remove(race_engine, "before_cursor_execute", slow_read)
        assert sum(ran for _who, ran in results) == 1
        assert reads["n"] == 1
        with Session(race_engine) as s:
            row = s.get(WebhookEvent, "evt_race")
            assert row is not None
            assert (row.state, row.attempts, row.locked_until) == ("processed", 1, None)


def _intent(intent_id: str) -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 100,
        "amount_received": 100,
        "currency": "cny",
        "metadata": {},
    }
