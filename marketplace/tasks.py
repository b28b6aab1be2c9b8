"""Queue entry points. Celery on Redis in production; eager (inline) in the embedded default.

Each task opens its own session and calls one service.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask, current_app, has_app_context

from services import jobs


class FlaskTask(Task):
    """Runs every task inside the app context of the app Celery was bound to."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if has_app_context():
            # Run inline (eager) from a request or command: its app, not whichever app was
            # bound to Celery last (tests build several).
            return self.run(*args, **kwargs)
        flask_app = self.app.conf.get("flask_app")
        if flask_app is None:
            raise RuntimeError("init_celery(app) was not called")
        with flask_app.app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("marketplace", task_cls=FlaskTask)

RUN_JOB_TASK = "marketplace.tasks.run_job"


def beat_schedule(registry: Any = None) -> dict[str, dict[str, Any]]:
    """Celery beat's schedule, generated from the job registry (services/jobs.py): each job runs
    every its period through `run_job`, which takes the job's lease and records the run."""
    registry = jobs.REGISTRY if registry is None else registry
    return {
        spec.name: {"task": RUN_JOB_TASK, "schedule": spec.every, "args": (spec.name,)}
        for spec in registry.values()
    }


def init_celery(app: Flask) -> Celery:
    """Bind Celery to the app: tasks run inside its app context; eager when no broker is set."""
    broker = app.config.get("CELERY_BROKER_URL") or ""
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or None,
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        timezone="Asia/Shanghai",
        beat_schedule=beat_schedule(),
    )
    celery_app.conf.flask_app = app
    app.extensions["celery"] = celery_app
    return celery_app


def _run(name: str, *, only_if_due: bool = False) -> Any:
    """Run a registered job in this app (its own sessions, its lease); the job's result, or None
    when another runner held it."""
    from marketplace.db import get_db
    from marketplace.scheduler import job_context

    outcome = jobs.run_job(
        get_db().session_scope, name, context=job_context(current_app), only_if_due=only_if_due
    )
    return outcome.result if outcome.ran else None


@celery_app.task(name=RUN_JOB_TASK)
def run_job(name: str) -> Any:
    """The task beat sends for every registered job (not run if another runner holds it)."""
    return _run(name)


# The periodic jobs by name, as before the registry (a queued one still finds its task).


@celery_app.task(name="marketplace.tasks.purge_expired_sms_codes")
def purge_expired_sms_codes() -> int | None:
    return _run("purge-expired-sms-codes")


@celery_app.task(name="marketplace.tasks.purge_expired_logins")
def purge_expired_logins() -> int | None:
    return _run("purge-expired-logins")


@celery_app.task(name="marketplace.tasks.process_payment_event")
def process_payment_event(event_id: str) -> bool | None:
    """Apply one verified gateway event (queued by the webhook). A failure is recorded on the
    event and retried by the retry-webhook-events job with backoff, not by Celery."""
    from marketplace.db import get_session
    from marketplace.gateways import payment_gateway
    from services.payments import events

    # The app context's session (closed at its teardown), as a request would have.
    outcome = events.process_event(
        get_session(),
        payment_gateway(),
        event_id,
        max_attempts=int(current_app.config.get("WEBHOOK_MAX_ATTEMPTS") or events.DEFAULT_MAX_ATTEMPTS),
    )
    return outcome.ok


@celery_app.task(name="marketplace.tasks.reconcile_payments")
def reconcile_payments() -> dict[str, int] | None:
    return _run("reconcile-payments")


@celery_app.task(name="marketplace.tasks.reconcile_reserved_stock")
def reconcile_reserved_stock() -> int | None:
    return _run("reconcile-reserved-stock")
