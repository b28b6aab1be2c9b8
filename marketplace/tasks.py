"""Queue entry points. Celery on Redis in production; eager (inline) in the embedded default.

Each task opens its own session and calls one service.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery, Task
from flask import Flask, has_app_context


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
        beat_schedule={
            "purge-expired-sms-codes": {
                "task": "marketplace.tasks.purge_expired_sms_codes",
                "schedule": timedelta(hours=1),
            },
            # Ended login sessions, forgotten login failures, devices unused for half a year.
            "purge-expired-logins": {
                "task": "marketplace.tasks.purge_expired_logins",
                "schedule": timedelta(hours=1),
            },
            # The safety net under webhooks: stuck payments are asked about, unpaid orders
            # past their time are cancelled at the gateway and their stock released.
            "reconcile-payments": {
                "task": "marketplace.tasks.reconcile_payments",
                "schedule": timedelta(minutes=1),
            },
            "reconcile-reserved-stock": {
                "task": "marketplace.tasks.reconcile_reserved_stock",
                "schedule": timedelta(hours=1),
            },
        },
    )
    celery_app.conf.flask_app = app
    app.extensions["celery"] = celery_app
    return celery_app


@celery_app.task(name="marketplace.tasks.purge_expired_sms_codes")
def purge_expired_sms_codes() -> int:
    from marketplace.db import get_db
    from services.accounts import purge_expired_codes

    with get_db().sessionmaker() as session:
        return purge_expired_codes(session)


@celery_app.task(name="marketplace.tasks.purge_expired_logins")
def purge_expired_logins() -> int:
    from marketplace.auth import auth_policy
    from marketplace.db import get_db
    from services.accounts import purge_expired_logins as purge

    with get_db().sessionmaker() as session:
        return purge(session, auth_policy())


@celery_app.task(name="marketplace.tasks.process_payment_event", bind=True, max_retries=5)
def process_payment_event(self, event_id: str) -> None:  # type: ignore[no-untyped-def]
    """Apply one verified gateway event (queued by the webhook)."""
    from marketplace.db import get_session
    from marketplace.gateways import payment_gateway
    from services.payments import service as payments
    from services.payments.gateway import GatewayUnavailable

    # The app context's session (closed at its teardown), as a request would have.
    try:
        payments.process_event(get_session(), payment_gateway(), event_id)
    except GatewayUnavailable as exc:
        if self.request.is_eager:
            raise
        raise self.retry(exc=exc, countdown=30) from exc


@celery_app.task(name="marketplace.tasks.reconcile_payments")
def reconcile_payments() -> dict[str, int]:
    from dataclasses import asdict
    from datetime import timedelta

    from flask import current_app

    from marketplace.db import get_session
    from marketplace.gateways import payment_gateway
    from services.payments import service as payments

    stale = timedelta(minutes=current_app.config["RECONCILE_AFTER_MINUTES"])
    return asdict(payments.reconcile(get_session(), payment_gateway(), stale_after=stale))


@celery_app.task(name="marketplace.tasks.reconcile_reserved_stock")
def reconcile_reserved_stock() -> int:
    from marketplace.db import get_session
    from services.orders.reservations import reconcile_reserved

    return len(reconcile_reserved(get_session()))
