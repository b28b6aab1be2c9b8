"""Periodic jobs: one registry, one way to run a job, whoever runs it.

Every periodic job of the product is a `JobSpec` in `REGISTRY` (below, the one place a job is
registered). Celery beat's schedule in production is generated from it (marketplace/tasks.py) and
the embedded scheduler of `make run` reads the same registry (marketplace/scheduler.py); both call
`run_job`, which:

- takes the job's lease in `job_runs` by one atomic conditional UPDATE (free or expired lease,
  and, for a scheduled run, not run within its period), so two app processes, two threads or a
  scheduler and a "run now" click never run one job at once, and a crashed runner's lease runs out;
- runs it in its own session (each job is idempotent: a run that is repeated or cut short does no
  harm), rolls back and records the error if it raises, never lets the exception out;
- records the run: start, finish, ok, result, error (the admins' jobs page shows them).

A job is a plain function `(session, JobContext) -> result` (an int, a dict or a dataclass);
what it needs from outside (the payment gateway, settings) comes in the context, built by the
app (marketplace/scheduler.py `job_context`). Times come from `domain.clock` only.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session, lazyload

from domain import DeliveryMethod, JobRun, Order, OrderStatus, Shipment, SubOrder, User, clock
from services import authz
from services.errors import NotFound
from services.i18n import _

if TYPE_CHECKING:
    from services.accounts import AuthPolicy
    from services.notify import NotificationChannel
    from services.payments.gateway import PaymentGateway

log = logging.getLogger(__name__)

SessionScope = Callable[[], AbstractContextManager[Session]]

# How long a runner holds a job unless the spec says otherwise: longer than any run takes.
DEFAULT_LEASE = timedelta(minutes=15)
AUTO_COMPLETE_DAYS = 7
AUTO_COMPLETE_BATCH = 100
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class JobContext:
    """What a job may use from outside the database; the app builds it (services know no Flask)."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    payment_gateway: Callable[[], PaymentGateway] | None = None
    auth_policy: Callable[[], AuthPolicy] | None = None
    notification_channel: Callable[[], NotificationChannel] | None = None
    now: datetime | None = None

    def setting(self, key: str, default: Any) -> Any:
        value = self.settings.get(key)
        return default if value is None else value


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: Callable[[Session, JobContext], Any]
    every: timedelta
    description: Any  # a lazy message (services.i18n._)
    lease: timedelta = DEFAULT_LEASE


@dataclass
class Outcome:
    """What `run_job` did: `ran` is False when another runner held the job (or it was not due)."""

    name: str
    ran: bool
    ok: bool | None = None
    result: Any = None
    error: str = ""


class JobFailed(Exception):
    """Raised by a job that ran to its end and found something wrong (e.g. the ledger checks'
    breaches): the run is recorded as failed, with this message as its error and `result`."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


# --- the jobs ---------------------------------------------------------------------------------


def _purge_expired_sms_codes(session: Session, ctx: JobContext) -> int:
    from services.accounts import purge_expired_codes

    return purge_expired_codes(session, now=ctx.now)


def _purge_expired_logins(session: Session, ctx: JobContext) -> int:
    from services.accounts import AuthPolicy, purge_expired_logins

    policy = ctx.auth_policy() if ctx.auth_policy is not None else AuthPolicy()
    return purge_expired_logins(session, policy, now=ctx.now)


def _reconcile_payments(session: Session, ctx: JobContext) -> dict[str, int]:
    from services.payments import service as payments

    if ctx.payment_gateway is None:
        raise RuntimeError("reconcile-payments needs the payment gateway in its JobContext")
    from services import intake

    stale = timedelta(minutes=int(ctx.setting("RECONCILE_AFTER_MINUTES", 5)))
    gateway = ctx.payment_gateway()
    report = payments.reconcile(session, gateway, now=ctx.now, stale_after=stale)
    session.commit()
    settled = intake.settle_stale(session, gateway, stale_after=stale, now=ctx.now)
    return {**dataclasses.asdict(report), "intakes_settled": settled}


def _retry_webhook_events(session: Session, ctx: JobContext) -> dict[str, int]:
    from services.payments import events

    if ctx.payment_gateway is None:
        raise RuntimeError("retry-webhook-events needs the payment gateway in its JobContext")
    attempts = int(ctx.setting("WEBHOOK_MAX_ATTEMPTS", events.DEFAULT_MAX_ATTEMPTS))
    return events.retry_due(session, ctx.payment_gateway(), now=ctx.now, max_attempts=attempts)


def _reconcile_reserved_stock(session: Session, ctx: JobContext) -> int:
    from services.orders.reservations import reconcile_reserved

    return len(reconcile_reserved(session))


# Delivered (brought to the door) or arrived for a home delivery: the goods reached the buyer.
# A parcel waiting at a pickup point (a pickup order READY_FOR_PICKUP) has not: it leaves the
# point when collected (services/parcels.py hand_over) or returned (flag-uncollected-parcels).
DELIVERED = (OrderStatus.READY_FOR_PICKUP, OrderStatus.OUT_FOR_DELIVERY)


def _waiting_at_pickup_point() -> Any:
    pickup_orders = select(Order.id).where(Order.delivery_method == DeliveryMethod.PICKUP)
    return (SubOrder.status == OrderStatus.READY_FOR_PICKUP) & SubOrder.order_id.in_(pickup_orders)


def complete_delivered(
    session: Session,
    *,
    days: int = AUTO_COMPLETE_DAYS,
    now: datetime | None = None,
    batch: int = AUTO_COMPLETE_BATCH,
) -> int:
    """Complete the sub-orders delivered for at least `days` days: delivered at the door by a
    scan that long ago, or (moved by the staff's buttons, no shipment) out for delivery, or ready
    for pickup when the order is a home delivery, that long. A pickup order's parcel waiting at its point is
    never completed here: nobody collected it yet (services/parcels.py returns it after
    PARCEL_RETURN_DAYS).

    A buyer who opened an after-sale request moved the sub-order to REFUND_REQUESTED, which is
    not one of these states, so it waits for the admins. Batches of `batch` rows, each locked
    (PostgreSQL skips rows another runner holds) and committed; running it again changes nothing.
    Returns how many were completed.
    """
    from services.authz import Party
    from services.orders import states

    now = now or clock.now()
    # China has one zone and no daylight saving: `days` days are as many times 24 hours.
    cutoff = now - timedelta(days=max(int(days), 0))
    done = 0
    while True:
        subs = session.scalars(
            select(SubOrder)
            .where(
                SubOrder.status.in_(DELIVERED),
                ~_waiting_at_pickup_point(),
                # A parcel with a shipment counts from its delivered scan; one without (moved by
                # the staff's buttons) from the move that brought it to the buyer.
                or_(
                    SubOrder.delivered_at <= cutoff,
                    (SubOrder.delivered_at.is_(None))
                    & (SubOrder.status_changed_at <= cutoff)
                    & ~SubOrder.id.in_(select(Shipment.sub_order_id)),
                ),
            )
            .order_by(SubOrder.id)
            .limit(batch)
            .options(lazyload("*"))
            .with_for_update(skip_locked=True, of=SubOrder)
        ).all()
        for sub in subs:
            states.apply(
                session,
                sub,
                OrderStatus.COMPLETED,
                party=Party.SYSTEM,
                note="completed automatically",
                details={"auto_complete_days": int(days)},
                now=now,
            )
        session.commit()
        done += len(subs)
        if len(subs) < batch:
            return done


def _complete_delivered(session: Session, ctx: JobContext) -> int:
    days = int(ctx.setting("AUTO_COMPLETE_DAYS", AUTO_COMPLETE_DAYS))
    return complete_delivered(session, days=days, now=ctx.now)


def _flag_uncollected_parcels(session: Session, ctx: JobContext) -> dict[str, int]:
    from services import parcels

    if ctx.payment_gateway is None:
        raise RuntimeError("flag-uncollected-parcels needs the payment gateway in its JobContext")
    report = parcels.flag_uncollected(
        session,
        ctx.payment_gateway(),
        remind_days=int(ctx.setting("PARCEL_REMIND_DAYS", parcels.REMIND_DAYS)),
        return_days=int(ctx.setting("PARCEL_RETURN_DAYS", parcels.RETURN_DAYS)),
        now=ctx.now,
    )
    return dataclasses.asdict(report)


def _send_notifications(session: Session, ctx: JobContext) -> dict[str, int]:
    from services import notify
    from services.orders.pickup import PickupCodeKeys

    if ctx.notification_channel is None:
        raise RuntimeError("send-notifications needs the notification channel in its JobContext")
    keys = PickupCodeKeys.from_settings(ctx.settings)
    report = notify.send_pending(session, ctx.notification_channel(), keys, now=ctx.now)
    return dataclasses.asdict(report)


def _check_ledger(session: Session, ctx: JobContext) -> dict[str, Any]:
    from services import ledger_checks

    return ledger_checks.check_ledger(session)


def _prepare_standing_orders(session: Session, ctx: JobContext) -> dict[str, int]:
    from services import standing

    report = standing.prepare_cycles(
        session,
        cutoff_hour=int(ctx.setting("STANDING_ORDER_CUTOFF_HOUR", standing.CUTOFF_HOUR)),
        prepare_days=int(ctx.setting("STANDING_ORDER_PREPARE_DAYS", standing.PREPARE_DAYS)),
        now=ctx.now,
    )
    return dataclasses.asdict(report)


def _flag_silent_loggers(session: Session, ctx: JobContext) -> dict[str, int]:
    from services.logistics import coldchain

    hours = float(ctx.setting("COLD_CHAIN_SILENT_HOURS", 2))
    return coldchain.flag_silent_loggers(session, after=timedelta(hours=hours), now=ctx.now)


def _flag_stuck_parcels(session: Session, ctx: JobContext) -> dict[str, int]:
    from services.logistics import exceptions

    return exceptions.flag_stuck(
        session,
        stuck_after=timedelta(hours=float(ctx.setting("STUCK_PARCEL_HOURS", 24))),
        late_grace=timedelta(hours=float(ctx.setting("LATE_LEG_GRACE_HOURS", 2))),
        now=ctx.now,
    )


def _registry(*specs: JobSpec) -> dict[str, JobSpec]:
    return {spec.name: spec for spec in specs}


# The one place a periodic job is registered. Its name is its beat schedule entry's name too.
REGISTRY: Mapping[str, JobSpec] = _registry(
    JobSpec(
        "check-ledger",
        _check_ledger,
        timedelta(hours=1),
        _(
            "Checks the books: balanced postings, payments, refunds and payouts as the ledger has"
            " them, no seller owed less than nothing, agents' cash. Fails, listing what is wrong."
        ),
    ),
    JobSpec(
        "purge-expired-sms-codes",
        _purge_expired_sms_codes,
        timedelta(hours=1),
        _("Deletes SMS codes older than a day."),
    ),
    JobSpec(
        "purge-expired-logins",
        _purge_expired_logins,
        timedelta(hours=1),
        _("Deletes ended login sessions, forgotten login failures and devices unused for half a year."),
    ),
    JobSpec(
        "reconcile-payments",
        _reconcile_payments,
        timedelta(minutes=1),
        _(
            "Asks the payment gateway about stuck payments, cancels unpaid orders past their time"
            " (their stock goes back), sends again the refunds the gateway never confirmed and"
            " captures the pre-sales weighed at intake whose capture the gateway missed."
        ),
    ),
    JobSpec(
        "retry-webhook-events",
        _retry_webhook_events,
        timedelta(minutes=1),
        _(
            "Processes again the payment gateway's events whose processing failed (after 1 min,"
            " 5 min, 30 min, 2 h, 12 h); after the last try they wait on the webhooks page."
        ),
    ),
    JobSpec(
        "reconcile-reserved-stock",
        _reconcile_reserved_stock,
        timedelta(hours=1),
        _("Recomputes the stock held for unpaid orders from their reservations."),
    ),
    JobSpec(
        "complete-delivered",
        _complete_delivered,
        timedelta(hours=1),
        _(
            "Completes orders delivered to the door for the set number of days (parcels waiting at"
            " a pickup point wait to be collected or returned)."
        ),
    ),
    JobSpec(
        "send-notifications",
        _send_notifications,
        timedelta(seconds=30),
        _(
            "Sends buyers the messages about their orders (paid, on the way, pickup code, refunded),"
            " again if a send failed."
        ),
    ),
    JobSpec(
        "flag-uncollected-parcels",
        _flag_uncollected_parcels,
        timedelta(hours=1),
        _(
            "Reminds the recipient once of a parcel waiting at a pickup point for the set number of"
            " days, and returns the parcels nobody collected in time, refunded in full."
        ),
    ),
    JobSpec(
        "prepare-standing-orders",
        _prepare_standing_orders,
        timedelta(hours=1),
        _(
            "Prepares the villagers' standing orders for the agent to confirm before each cut-off"
            " (the day before the due date), and marks the cycles nobody confirmed in time expired."
        ),
    ),
    JobSpec(
        "flag-silent-loggers",
        _flag_silent_loggers,
        timedelta(minutes=30),
        _(
            "Tells the staff of a node when one of its temperature loggers has sent nothing for the"
            " set number of hours (once per silence)."
        ),
    ),
    JobSpec(
        "flag-stuck-parcels",
        _flag_stuck_parcels,
        timedelta(hours=1),
        _(
            "Flags the parcels waiting at a node the set number of hours past their next leg's"
            " departure, and those late on a leg under way, and tells the node's staff once."
        ),
    ),
)


# --- running a job ----------------------------------------------------------------------------


def _ensure_row(session: Session, name: str) -> None:
    if session.get(JobRun, name) is not None:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(JobRun).values(name=name).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(JobRun).values(name=name).on_conflict_do_nothing())
    else:  # pragma: no cover - the product runs on PostgreSQL and SQLite only
        session.add(JobRun(name=name))
        session.flush()


def acquire(
    session: Session, spec: JobSpec, runner: str, now: datetime, *, only_if_due: bool = False
) -> bool:
    """Take the job's lease for `runner` if it is free or expired (and due, if asked); commits.

    One conditional UPDATE decides: on PostgreSQL a second updater waits for the first's commit
    and then finds the condition false; SQLite has one writer at a time.
    """
    if session.get(JobRun, spec.name) is None:
        _ensure_row(session, spec.name)
    conditions = [
        JobRun.name == spec.name,
        or_(JobRun.locked_until.is_(None), JobRun.locked_until <= now),
    ]
    if only_if_due:
        conditions.append(or_(JobRun.started_at.is_(None), JobRun.started_at <= now - spec.every))
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(JobRun)
        .where(*conditions)
        .values(locked_until=now + spec.lease, locked_by=runner, started_at=now)
        .execution_options(synchronize_session=False)
    )
    taken = result.rowcount
    session.commit()
    return taken == 1


def _plain(value: Any) -> Any:
    """A job's result as JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def run_job(
    sessions: SessionScope,
    name: str,
    now: datetime | None = None,
    *,
    context: JobContext | None = None,
    registry: Mapping[str, JobSpec] | None = None,
    only_if_due: bool = False,
    runner: str | None = None,
) -> Outcome:
    """Run one registered job unless another runner holds it; record the run. Never raises for
    the job's own failure (it is logged and recorded); raises NotFound for an unknown name.

    `sessions()` opens a session as a context manager (marketplace.db's session_scope, or
    `lambda: Session(engine)`). `only_if_due` (the schedulers): skip the job if it started less
    than its period ago, so two schedulers do not run it twice in one period.
    """
    spec = (REGISTRY if registry is None else registry).get(name)
    if spec is None:
        raise NotFound(_("There is no such job."))
    now = now or clock.now()
    runner = runner or uuid.uuid4().hex
    with sessions() as session:
        if not acquire(session, spec, runner, now, only_if_due=only_if_due):
            return Outcome(name, ran=False)
    ctx = dataclasses.replace(context or JobContext(), now=now)
    result: Any = None
    error = ""
    with sessions() as session:
        try:
            result = _plain(spec.function(session, ctx))
            session.commit()
        except JobFailed as exc:  # ran to its end and found something wrong: failed, with its result
            session.rollback()
            log.error("job %s failed: %s", name, exc)
            result = _plain(exc.result)
            error = str(exc)[:MAX_ERROR_CHARS] or type(exc).__name__
        except Exception as exc:  # recorded; the scheduler must keep going
            session.rollback()
            log.exception("job %s failed", name)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    ok = not error
    finished = max(now, clock.now())
    with sessions() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.name == name, JobRun.locked_by == runner)
            .values(
                finished_at=finished,
                ok=ok,
                result=result,
                error=error,
                locked_until=None,
                runs=JobRun.runs + 1,
                failures=JobRun.failures + (0 if ok else 1),
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return Outcome(name, ran=True, ok=ok, result=result, error=error)


def run_due(
    sessions: SessionScope,
    now: datetime | None = None,
    *,
    context: JobContext | None = None,
    registry: Mapping[str, JobSpec] | None = None,
    runner: str | None = None,
) -> list[Outcome]:
    """Run every registered job that is due (the embedded scheduler's tick); the ones that ran."""
    now = now or clock.now()
    ran = []
    for name in REGISTRY if registry is None else registry:
        try:
            outcome = run_job(
                sessions, name, now, context=context, registry=registry, only_if_due=True, runner=runner
            )
        except Exception:  # the lease itself failed (database away): the next tick tries again
            log.exception("could not start job %s", name)
            continue
        if outcome.ran:
            ran.append(outcome)
    return ran


# --- the admins' jobs page --------------------------------------------------------------------


@dataclass
class JobStatus:
    spec: JobSpec
    run: JobRun | None
    next_due: datetime
    running: bool


def job_statuses(
    session: Session, user: User | None, *, registry: Mapping[str, JobSpec] | None = None
) -> list[JobStatus]:
    """Every registered job with its last run and when it is due next. Admins only."""
    authz.require_admin(user)
    registry = REGISTRY if registry is None else registry
    now = clock.now()
    runs = {r.name: r for r in session.scalars(select(JobRun).where(JobRun.name.in_(list(registry))))}
    statuses = []
    for name, spec in registry.items():
        run = runs.get(name)
        started = run.started_at if run is not None else None
        next_due = max(started + spec.every, now) if started is not None else now
        running = bool(run is not None and run.locked_until is not None and run.locked_until > now)
        statuses.append(JobStatus(spec, run, next_due, running))
    return statuses


def run_now(
    session: Session,
    sessions: SessionScope,
    user: User | None,
    name: str,
    *,
    context: JobContext | None = None,
    registry: Mapping[str, JobSpec] | None = None,
) -> Outcome:
    """An admin runs a job at once (whether due or not); still never beside another runner.

    `session` is the caller's (the request's): its transaction is ended before the job starts in
    sessions of its own (SQLite has one writer at a time).
    """
    authz.require_admin(user)
    if name not in (REGISTRY if registry is None else registry):
        raise NotFound(_("There is no such job."))
    session.commit()
    return run_job(sessions, name, context=context, registry=registry)
