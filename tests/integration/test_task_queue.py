"""The production task path: a task sent through the real Redis broker, run by a Celery worker."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain import SmsCode, SmsPurpose, clock
from marketplace import create_app
from marketplace.config import TestingConfig
from marketplace.tasks import celery_app, purge_expired_sms_codes
from tests.conftest import reachable_redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _forget_connections() -> None:
    """Celery keeps the result backend and broker pool it first built; an eager task run earlier
    in the session built them for the in-memory set-up."""
    for backend in (celery_app._backend_cache, vars(celery_app._local).pop("backend", None)):
        client = getattr(backend, "client", None)
        if client is not None:
            client.connection_pool.disconnect()
    celery_app._backend_cache = None
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    vars(celery_app.amqp).pop("_producer_pool", None)


@pytest.fixture(scope="module")
def worker(database_url):  # type: ignore[no-untyped-def]
    """One Celery worker on the real Redis broker for the module's tests (a second worker in one
    process would meet the connection pools the first one closed)."""
    from celery.contrib.testing.worker import start_worker

    reachable_redis(REDIS_URL)
    config = TestingConfig()
    config.DATABASE_URL = database_url
    config.CELERY_BROKER_URL = REDIS_URL
    config.CELERY_RESULT_BACKEND = REDIS_URL
    # Celery is one object per process: what this app binds (the Redis broker, not eager) is
    # put back afterwards, or the next modules' tasks would be queued for a worker that is gone.
    saved = dict(celery_app.conf)
    app = create_app(config)
    celery_app.conf.update(task_ignore_result=False)
    _forget_connections()
    with start_worker(celery_app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield app
    celery_app.conf.update(saved)
    app.extensions["database"].engine.dispose()


class TestTaskQueue:
    def test_a_queued_task_runs_in_a_worker_and_commits(self, worker, engine):
        old, fresh = clock.now() - timedelta(days=2), clock.now()
        with Session(engine) as s:
            for created in (old, fresh):
                s.add(
                    SmsCode(
                        phone="13700000001",
                        purpose=SmsPurpose.REGISTER,
                        code_hash="x",
                        created_at=created,
                        expires_at=created + timedelta(minutes=5),
                    )
                )
            s.commit()
        try:
            assert celery_app.conf.task_always_eager is False
            result = purge_expired_sms_codes.delay()
            assert result.get(timeout=20) >= 1
            with Session(engine) as s:
                left = s.scalars(select(SmsCode.created_at).where(SmsCode.phone == "13700000001")).all()
            assert [t.replace(microsecond=0) for t in left] == [fresh.replace(microsecond=0)]
        finally:
            with Session(engine) as s:
                s.execute(delete(SmsCode).where(SmsCode.phone == "13700000001"))
                s.commit()

    def test_ended_login_sessions_are_purged_by_the_hourly_task(self, worker, engine):
        from domain import LoginSession, User
        from marketplace.tasks import purge_expired_logins, run_job

        # Beat's schedule comes from the job registry: every entry runs through `run_job`.
        entry = celery_app.conf.beat_schedule["purge-expired-logins"]
        assert (entry["task"], tuple(entry["args"])) == (run_job.name, ("purge-expired-logins",))
        now = clock.now()
        with Session(engine) as s:
            user = User(phone="13700000002", password_hash="!")
            s.add(user)
            s.flush()
            user_id = user.id
            for ended in (True, False):
                s.add(
                    LoginSession(
                        token_hash=("ended" if ended else "live").ljust(64, "0"),
                        user_id=user_id,
                        created_at=now,
                        last_seen_at=now,
                        expires_at=now + timedelta(hours=12),
                        revoked_at=now if ended else None,
                    )
                )
            s.commit()
        try:
            assert purge_expired_logins.delay().get(timeout=20) >= 1
            with Session(engine) as s:
                left = s.scalars(select(LoginSession.token_hash).where(LoginSession.user_id == user_id)).all()
            assert [t[:4] for t in left] == ["live"]
        finally:
            with Session(engine) as s:
                s.execute(delete(User).where(User.phone == "13700000002"))
                s.commit()
