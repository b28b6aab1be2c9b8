"""Nothing assumes one process: two app instances (two gunicorn workers, two machines) share
rate-limit counters through the real Redis, and a login made on one is honoured by the other."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from marketplace import create_app
from marketplace.config import TestingConfig
from marketplace.extensions import limiter
from tests.conftest import TEST_PASSWORD, reachable_redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture()
def twin_apps(database_url, session):  # type: ignore[no-untyped-def]
    reachable_redis(REDIS_URL)
    prefix = f"gdm-twins-{uuid.uuid4().hex[:8]}"
    # One Limiter object serves every app in a process; put back the test app's storage after.
    saved = {k: getattr(limiter, k) for k in ("_storage", "_limiter", "_key_prefix")}
    apps = []
    for _ in range(2):
        config = TestingConfig()
        config.DATABASE_URL = database_url
        config.SECRET_KEY = "shared-secret-for-both-processes"
        config.RATELIMIT_STORAGE_URI = REDIS_URL
        config.RATELIMIT_KEY_PREFIX = prefix
        config.LOGIN_RATE_LIMIT = "3 per minute"
        app = create_app(config)
        app.extensions["database"].lend_session(session)
        apps.append(app)
    limiter._key_prefix = prefix  # the Limiter keeps the first prefix it was given
    yield apps
    for key, value in saved.items():
        setattr(limiter, key, value)
    for app in apps:
        app.extensions["database"].engine.dispose()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)


class TestSharedState:
    def test_login_rate_limit_counts_requests_made_to_either_process(self, twin_apps):
        first, second = (app.test_client() for app in twin_apps)
        for _ in range(3):
            resp = first.post("/auth/login", data={"phone": "13800000999", "password": "wrong-password"})
            assert resp.status_code != 429
        resp = second.post("/auth/login", data={"phone": "13800000999", "password": "wrong-password"})
        assert resp.status_code == 429

    def test_a_session_cookie_from_one_process_is_valid_in_the_other(self, twin_apps, make_user):
        user = make_user()
        first, second = (app.test_client() for app in twin_apps)
        resp = first.post("/auth/login", data={"phone": user.phone, "password": TEST_PASSWORD})
        assert resp.status_code == 302
        cookie = first.get_cookie("session")
        assert cookie is not None
        assert second.get("/auth/me").status_code == 302  # not logged in there yet
        second.set_cookie("session", cookie.value)
        resp = second.get("/auth/me")
        assert resp.status_code == 200
        assert user.phone in resp.get_data(as_text=True)
