"""The embedded scheduler: `make run` runs the periodic jobs without Redis or Celery beat.

A daemon thread, started by the app factory when EMBEDDED_JOBS is on, wakes every
JOBS_TICK_SECONDS and runs the registered jobs that are due (services/jobs.py REGISTRY) through
`run_job`, whose lease in `job_runs` keeps two app processes (or a Celery beat beside it) from
running one job at once. A job's exception is recorded and logged; the thread keeps going.
Production runs the same jobs under Celery beat (marketplace/tasks.py) and leaves this off.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Any

from flask import Flask

from services import jobs

log = logging.getLogger(__name__)

EXTENSION = "job_scheduler"


def job_context(app: Flask) -> jobs.JobContext:
    """What the jobs need from the app: its settings, payment gateway, login policy and
    notification channel. Call inside an app context (the gateway is looked up lazily, when a
    job asks)."""
    from marketplace.auth import auth_policy
    from marketplace.gateways import notification_channel, payment_gateway

    return jobs.JobContext(
        settings=app.config,
        payment_gateway=payment_gateway,
        auth_policy=auth_policy,
        notification_channel=notification_channel,
    )


class EmbeddedScheduler:
    def __init__(self, app: Flask, tick_seconds: float) -> None:
        self.app = app
        self.tick_seconds = max(float(tick_seconds), 0.05)
        # One runner name per process: the lease shows which process holds a job.
        self.runner = f"embedded-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.ticks = 0
        self.last_outcomes: list[jobs.Outcome] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="embedded-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the job it is running, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> list[jobs.Outcome]:
        """Run the due jobs once (the thread's loop body)."""
        db: Any = self.app.extensions["database"]
        with self.app.app_context():
            outcomes = jobs.run_due(db.session_scope, context=job_context(self.app), runner=self.runner)
        self.ticks += 1
        self.last_outcomes = outcomes
        return outcomes

    def _loop(self) -> None:
        # The first tick comes one interval after the start: the app is fully built by then.
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # never die: the next tick tries again
                log.exception("embedded scheduler tick failed")


def init_app(app: Flask) -> EmbeddedScheduler | None:
    """Start the embedded scheduler if EMBEDDED_JOBS is on (make run); None otherwise."""
    if not app.config.get("EMBEDDED_JOBS"):
        return None
    scheduler = EmbeddedScheduler(app, app.config.get("JOBS_TICK_SECONDS") or 5)
    app.extensions[EXTENSION] = scheduler
    scheduler.start()
    return scheduler
