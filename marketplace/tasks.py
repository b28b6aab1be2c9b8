"""Queue entry points. Celery on Redis in production; eager (inline) in the embedded default.

Each task opens its own session and calls one service.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery, Task
from flask import Flask


class FlaskTask(Task):
    """Runs every task inside the app context of the app Celery was bound to."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
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
            }
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
