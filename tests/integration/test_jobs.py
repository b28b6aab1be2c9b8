"""Periodic jobs (issue 10, items 7 and 8): one registry that Celery beat's schedule is generated
from and the embedded scheduler of `make run` reads; `run_job` takes a lease so two runners never
run one job at once, records every run, and survives a failing job; a delivered sub-order
completes by itself after AUTO_COMPLETE_DAYS (a parcel waiting at a pickup point does not: it
is collected or returned); `make run`'s scheduler expires an unpaid order by itself."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain import DeliveryMethod, JobRun, Order, OrderEvent, OrderStatus, PaymentStatus, Product, SubOrder
from marketplace.config import TestingConfig
from marketplace.db import make_engine
from services import jobs
from services.authz import Party
from services.orders import states
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.conftest import NOW

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500, max_unpaid_orders=20)


def lent(session: Session):  # type: ignore[no-untyped-def]
    """A session scope that hands out the test's session (its commits are savepoints)."""
    return lambda: nullcontext(session)


def registry(*specs: jobs.JobSpec) -> dict[str, jobs.JobSpec]:
    return {spec.name: spec for spec in specs}


def job_row(session: Session, name: str) -> JobRun:
    session.expire_all()
    row = session.get(JobRun, name)
    assert row is not None
    return row


class TestRegistry:
    def test_beat_schedule_is_generated_from_the_registry_and_keeps_every_old_task(self, _app):
        from marketplace.tasks import RUN_JOB_TASK, celery_app

        schedule = celery_app.conf.beat_schedule
        assert set(schedule) == set(jobs.REGISTRY)
        before = {
            "purge-expired-sms-codes": timedelta(hours=1),
            "purge-expired-logins": timedelta(hours=1),
            "reconcile-payments": timedelta(minutes=1),
            "reconcile-reserved-stock": timedelta(hours=1),
        }
        for name, every in before.items():
            assert schedule[name]["schedule"] == every
        for name, entry in schedule.items():
            assert entry["task"] == RUN_JOB_TASK and tuple(entry["args"]) == (name,)
            assert entry["schedule"] == jobs.REGISTRY[name].every
        assert "complete-delivered" in schedule

    def test_every_job_has_a_description_and_a_period(self):
        for spec in jobs.REGISTRY.values():
            assert str(spec.description) and spec.every > timedelta(0)
            assert spec.lease > timedelta(0)


class TestRunJob:
    def test_a_run_is_recorded_with_its_result(self, session, clock):
        seen = []

        def count(s, ctx):  # type: ignore[no-untyped-def]
            seen.append(ctx.now)
            return {"done": 3}

        reg = registry(jobs.JobSpec("count", count, timedelta(minutes=5), "Counts"))
        outcome = jobs.run_job(lent(session), "count", registry=reg)
        assert (outcome.ran, outcome.ok, outcome.result) == (True, True, {"done": 3})
        assert seen == [NOW]
        row = job_row(session, "count")
        assert (row.ok, row.result, row.error, row.runs, row.failures) == (True, {"done": 3}, "", 1, 0)
        assert row.started_at == NOW and row.finished_at == NOW and row.locked_until is None
        # Run again: recorded again (the job itself is idempotent).
        clock.advance(minutes=1)
        assert jobs.run_job(lent(session), "count", registry=reg).ran
        row = job_row(session, "count")
        assert row.runs == 2 and row.started_at == NOW + timedelta(minutes=1)

    def test_a_failing_job_records_its_error_and_the_next_job_still_runs(self, session, clock):
        def boom(s, ctx):  # type: ignore[no-untyped-def]
            s.execute(update(Product).values(stock=0))  # rolled back with the failure
            raise RuntimeError("kaput")

        reg = registry(
            jobs.JobSpec("boom", boom, timedelta(minutes=1), "Fails"),
            jobs.JobSpec("fine", lambda s, ctx: 7, timedelta(minutes=1), "Works"),
        )
        outcomes = jobs.run_due(lent(session), registry=reg)
        assert [(o.name, o.ok) for o in outcomes] == [("boom", False), ("fine", True)]
        row = job_row(session, "boom")
        assert row.ok is False and row.error == "RuntimeError: kaput" and row.failures == 1
        assert row.locked_until is None  # the lease is given back: the next period runs it again
        assert job_row(session, "fine").result == 7

    def test_a_scheduled_run_waits_for_the_jobs_period(self, session, clock):
        reg = registry(jobs.JobSpec("tick", lambda s, ctx: 1, timedelta(minutes=10), "Ticks"))
        assert [o.name for o in jobs.run_due(lent(session), registry=reg)] == ["tick"]
        clock.advance(minutes=9)
        assert jobs.run_due(lent(session), registry=reg) == []
        clock.advance(minutes=1)
        assert [o.name for o in jobs.run_due(lent(session), registry=reg)] == ["tick"]
        assert job_row(session, "tick").runs == 2

    def test_a_crashed_runners_lease_expires(self, session, clock):
        spec = jobs.JobSpec(
            "lease", lambda s, ctx: "ran", timedelta(minutes=1), "Leased", lease=timedelta(minutes=15)
        )
        reg = registry(spec)
        # A runner took the job and died without giving it back.
        assert jobs.acquire(session, spec, "crashed-runner", clock.now())
        clock.advance(minutes=14)
        assert jobs.run_job(lent(session), "lease", registry=reg).ran is False
        assert job_row(session, "lease").runs == 0
        clock.advance(minutes=1, seconds=1)
        outcome = jobs.run_job(lent(session), "lease", registry=reg)
        assert (outcome.ran, outcome.result) == (True, "ran")
        row = job_row(session, "lease")
        assert row.runs == 1 and row.locked_until is None

    def test_an_unknown_job_is_not_found(self, session):
        from services.errors import NotFound

        with pytest.raises(NotFound):
            jobs.run_job(lent(session), "no-such-job")


@pytest.fixture(params=["sqlite-file", "test-backend"])
def job_engine(request, tmp_path, new_database):  # type: ignore[no-untyped-def]
    """A database of its own with the job_runs table, committed for real: a SQLite file (what
    `make run` uses) and the run's backend (PostgreSQL under TEST_DATABASE=postgresql)."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}" if request.param == "sqlite-file" else new_database("jobs")
    engine = make_engine(url)
    JobRun.__table__.create(engine)  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


class TestTwoRunnersAtOnce:
    RUNNERS = 8

    def _race(self, engine, only_if_due: bool):  # type: ignore[no-untyped-def]
        guard = threading.Lock()
        state = {"active": 0, "max_active": 0, "calls": 0}

        def slow(s, ctx):  # type: ignore[no-untyped-def]
            with guard:
                state["active"] += 1
                state["calls"] += 1
                state["max_active"] = max(state["max_active"], state["active"])
            time.sleep(0.2)  # long enough for the other runners to try meanwhile
            with guard:
                state["active"] -= 1
            return state["calls"]

        reg = registry(jobs.JobSpec("slow", slow, timedelta(hours=1), "Slow"))
        start = threading.Barrier(self.RUNNERS)

        def runner(n: int) -> jobs.Outcome:
            start.wait()
            return jobs.run_job(
                lambda: Session(engine), "slow", NOW, registry=reg, only_if_due=only_if_due, runner=f"r{n}"
            )

        with ThreadPoolExecutor(self.RUNNERS) as pool:
            outcomes = list(pool.map(runner, range(self.RUNNERS)))
        with Session(engine) as s:
            row = s.get(JobRun, "slow")
            assert row is not None
            return outcomes, state, row

    def test_scheduled_runners_run_a_job_once_per_period(self, job_engine):
        outcomes, state, row = self._race(job_engine, only_if_due=True)
        assert sum(o.ran for o in outcomes) == 1
        assert state["calls"] == 1 and row.runs == 1 and row.ok is True

    def test_forced_runners_never_overlap(self, job_engine):
        outcomes, state, row = self._race(job_engine, only_if_due=False)
        ran = sum(o.ran for o in outcomes)
        assert ran >= 1 and state["calls"] == ran == row.runs
        assert state["max_active"] == 1
        assert row.locked_until is None


class TestAutoCompletion:
    @pytest.fixture()
    def subs(self, session, market, clock):  # type: ignore[no-untyped-def]
        """One sub-order in each case, its status set directly (as the moves would leave it). The
        orders are home deliveries ("pickup_*": arrived for a home delivery) but one."""
        cases = {
            "pickup_8_days": (S.READY_FOR_PICKUP, timedelta(days=8)),
            "delivery_7_days": (S.OUT_FOR_DELIVERY, timedelta(days=7, minutes=1)),
            "pickup_6_days": (S.READY_FOR_PICKUP, timedelta(days=6)),
            "after_sale_30_days": (S.REFUND_REQUESTED, timedelta(days=30)),
            "in_transit_30_days": (S.IN_TRANSIT, timedelta(days=30)),
            # A pickup order's parcel waiting at its point has not reached the buyer: it is
            # collected (services/parcels.py) or returned by flag-uncollected-parcels, never
            # completed by this job.
            "at_pickup_point_30_days": (S.READY_FOR_PICKUP, timedelta(days=30)),
        }
        found = {}
        for name, (status, age) in cases.items():
            order = market.place({"梅县金柚": 1}, SETTINGS)
            sub = order.sub_orders[0]
            session.execute(
                update(SubOrder)
                .where(SubOrder.id == sub.id)
                .values(status=status, status_changed_at=clock.now() - age)
            )
            if name.startswith("at_pickup_point"):
                session.execute(
                    update(Order).where(Order.id == order.id).values(delivery_method=DeliveryMethod.PICKUP)
                )
            found[name] = sub.id
        session.commit()
        return found

    def status(self, session, sub_id):  # type: ignore[no-untyped-def]
        session.expire_all()
        return session.get(SubOrder, sub_id).status

    def test_only_old_enough_delivered_sub_orders_complete(self, session, subs, clock):
        assert jobs.complete_delivered(session, days=7) == 2
        got = {name: self.status(session, sub_id) for name, sub_id in subs.items()}
        assert got == {
            "pickup_8_days": S.COMPLETED,
            "delivery_7_days": S.COMPLETED,
            "pickup_6_days": S.READY_FOR_PICKUP,
            "after_sale_30_days": S.REFUND_REQUESTED,
            "in_transit_30_days": S.IN_TRANSIT,
            "at_pickup_point_30_days": S.READY_FOR_PICKUP,
        }
        done = session.get(SubOrder, subs["pickup_8_days"])
        assert done.completed_at == clock.now()
        event = session.scalars(
            select(OrderEvent).where(OrderEvent.sub_order_id == done.id, OrderEvent.to_status == S.COMPLETED)
        ).one()
        assert (event.from_status, event.actor_id) == (S.READY_FOR_PICKUP, None)
        assert event.created_at == clock.now()
        # Idempotent: nothing more to do, nothing written twice.
        assert jobs.complete_delivered(session, days=7) == 0
        assert len(session.scalars(select(OrderEvent).where(OrderEvent.to_status == S.COMPLETED)).all()) == 2
        # Two days later (on the clock) the 6-day-old one is due too; the after-sale one never.
        clock.advance(days=2)
        assert jobs.complete_delivered(session, days=7) == 1
        assert self.status(session, subs["pickup_6_days"]) == S.COMPLETED
        assert self.status(session, subs["after_sale_30_days"]) == S.REFUND_REQUESTED
        assert self.status(session, subs["at_pickup_point_30_days"]) == S.READY_FOR_PICKUP

    def test_small_batches_complete_them_all(self, session, subs):
        assert jobs.complete_delivered(session, days=7, batch=1) == 2

    def test_the_registered_job_reads_the_days_setting(self, session, subs):
        ctx = jobs.JobContext(settings={"AUTO_COMPLETE_DAYS": 5})
        outcome = jobs.run_job(lent(session), "complete-delivered", context=ctx)
        assert (outcome.ok, outcome.result) == (True, 3)
        assert self.status(session, subs["pickup_6_days"]) == S.COMPLETED

    def test_the_system_may_complete_only_delivered_sub_orders(self):
        system = {Party.SYSTEM}
        assert states.can_move(S.READY_FOR_PICKUP, S.COMPLETED, system)
        assert states.can_move(S.OUT_FOR_DELIVERY, S.COMPLETED, system)
        for status in (S.HANDED_IN, S.IN_TRANSIT, S.REFUND_REQUESTED, S.PARTIALLY_REFUNDED):
            assert not states.can_move(status, S.COMPLETED, system)
        # An after-sale request is decided by admins only.
        assert states.TRANSITIONS[S.REFUND_REQUESTED][S.COMPLETED] == frozenset({Party.ADMIN})


class TestEmbeddedScheduler:
    def _config(self, database_url, localstripe, **extra):  # type: ignore[no-untyped-def]
        config = TestingConfig()
        config.DATABASE_URL = database_url
        config.STRIPE_API_BASE = localstripe.url
        config.STRIPE_JS_URL = f"{localstripe.url}/js.stripe.com/v3/"
        for key, value in extra.items():
            setattr(config, key, value)
        return config

    def test_off_by_default_in_tests(self, _app):
        from marketplace.scheduler import EXTENSION

        assert EXTENSION not in _app.extensions

    def test_make_runs_scheduler_expires_an_unpaid_order_by_itself(
        self, session, market, gateway, clock, build_app, database_url, localstripe
    ):
        from marketplace.scheduler import EXTENSION

        order = market.place({"梅县金柚": 3}, SETTINGS)
        payments.ensure_intent(session, gateway, order)
        gold = market.product("梅县金柚")
        session.refresh(gold)
        assert gold.reserved == 3
        # Nobody pays; the payment window passes. No request, no command: only time goes by.
        clock.advance(SETTINGS.payment_window + timedelta(minutes=10))
        app = build_app(self._config(database_url, localstripe, EMBEDDED_JOBS=True, JOBS_TICK_SECONDS=0.5))
        scheduler = app.extensions[EXTENSION]
        try:
            assert scheduler.running
            deadline = time.monotonic() + 20
            expired = False
            while time.monotonic() < deadline and not expired:
                time.sleep(0.1)
                expired = any(
                    o.name == "reconcile-payments" and o.ok and o.result["expired"] >= 1
                    for o in scheduler.last_outcomes
                )
        finally:
            scheduler.stop()
        assert not scheduler.running  # stopped cleanly
        assert expired, f"the scheduler did not expire the order: {scheduler.last_outcomes}"
        session.expire_all()
        session.refresh(order)
        assert order.payment.status == PaymentStatus.CANCELED
        assert {s.status for s in order.sub_orders} == {S.CANCELLED}
        session.refresh(gold)
        assert gold.reserved == 0
        runs = {r.name: r for r in session.scalars(select(JobRun))}
        assert set(jobs.REGISTRY) <= set(runs)
        assert all(r.ok for name, r in runs.items() if name in jobs.REGISTRY)

    def test_a_tick_that_fails_does_not_stop_the_scheduler(self, app, session, clock, monkeypatch):
        from marketplace.scheduler import EmbeddedScheduler

        real = jobs.run_due
        calls = []

        def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database away")
            return real(*args, **kwargs)

        monkeypatch.setattr(jobs, "run_due", flaky)
        monkeypatch.setattr(
            jobs, "REGISTRY", registry(jobs.JobSpec("fine", lambda s, ctx: 1, timedelta(hours=1), "Works"))
        )
        scheduler = EmbeddedScheduler(app, 0.05)
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and scheduler.ticks < 2:
                time.sleep(0.05)
        finally:
            scheduler.stop()
        assert len(calls) >= 2 and scheduler.ticks >= 1
        assert job_row(session, "fine").ok is True
