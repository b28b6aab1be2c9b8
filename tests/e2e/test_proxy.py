"""Behind the proxy of docs/deploy.md (issue 9, finding 5): with PROXY_HOPS=1 the login and SMS
budgets are kept per visitor, by the address the proxy saw; a client cannot choose its own
address with an extra X-Forwarded-For entry; with PROXY_HOPS=0 (the default) the header is ignored.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain import SmsCode
from marketplace.config import TestingConfig
from tests.conftest import reset_limiter

PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # every request arrives from the proxy's own address
LIMIT = 3


@pytest.fixture()
def app_with_hops(build_app, database_url):  # type: ignore[no-untyped-def]
    """app_with_hops(n) → an app trusting n proxies, serving the test's session."""

    def make(hops: int):  # type: ignore[no-untyped-def]
        config = TestingConfig()
        config.DATABASE_URL = database_url
        config.PROXY_HOPS = hops
        config.LOGIN_RATE_LIMIT = f"{LIMIT} per minute"
        config.SMS_RATE_LIMIT = f"{LIMIT} per minute"
        app = build_app(config)
        reset_limiter()
        return app

    return make


def log_in(client, forwarded_for: str | None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return client.post(
        "/auth/login",
        data={"phone": "13800000999", "password": "wrong-password"},
        headers=headers,
        environ_base=PROXY,
    )


def spend_login_budget(client, forwarded_for: str | None) -> None:  # type: ignore[no-untyped-def]
    for _ in range(LIMIT):
        assert log_in(client, forwarded_for).status_code != 429


class TestOneTrustedProxy:
    def test_two_visitors_have_two_login_budgets(self, app_with_hops):
        client = app_with_hops(1).test_client()
        spend_login_budget(client, "203.0.113.10")
        assert log_in(client, "203.0.113.10").status_code == 429
        # Another visitor behind the same proxy still logs in.
        assert log_in(client, "203.0.113.20").status_code != 429

    def test_an_extra_forwarded_entry_does_not_choose_the_address(self, app_with_hops):
        client = app_with_hops(1).test_client()
        # The proxy appends the address it saw; what the client wrote before it is not trusted.
        for n in range(LIMIT):
            assert log_in(client, f"198.51.100.{n}, 203.0.113.10").status_code != 429
        assert log_in(client, "198.51.100.77, 203.0.113.10").status_code == 429
        assert log_in(client, "203.0.113.10").status_code == 429

    def test_the_sms_code_records_the_visitors_address(self, app_with_hops, session):
        client = app_with_hops(1).test_client()
        resp = client.post(
            "/api/v1/auth/sms-codes",
            json={"phone": "13800000998", "purpose": "register"},
            headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.30"},
            environ_base=PROXY,
        )
        assert resp.status_code < 500, resp.get_data(as_text=True)
        ips = session.scalars(select(SmsCode.requester_ip).where(SmsCode.phone == "13800000998")).all()
        assert ips == ["203.0.113.30"]

    def test_the_forwarded_scheme_and_address_are_the_visitors(self, app_with_hops):
        app = app_with_hops(1)
        seen = {}

        @app.get("/_test/scheme")
        def scheme():  # type: ignore[no-untyped-def]
            from flask import request

            seen.update(secure=request.is_secure, ip=request.remote_addr)
            return ""

        app.test_client().get(
            "/_test/scheme",
            headers={"X-Forwarded-For": "203.0.113.10", "X-Forwarded-Proto": "https"},
            environ_base=PROXY,
        )
        assert seen == {"secure": True, "ip": "203.0.113.10"}


class TestNoTrustedProxy:
    def test_the_header_is_ignored_by_default(self, app_with_hops):
        client = app_with_hops(0).test_client()
        for n in range(LIMIT):
            assert log_in(client, f"203.0.113.{n}").status_code != 429
        # Every "visitor" was the same connecting address: the budget is spent.
        assert log_in(client, "203.0.113.99").status_code == 429
