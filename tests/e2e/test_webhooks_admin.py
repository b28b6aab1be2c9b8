"""The admins' payment events page over HTTP: webhook events whose processing failed past the
last try are listed with their type, tries, error and time received; "process again" processes
one at once and shows the result; nobody else gets in. Linked from the admin's workspace."""

from __future__ import annotations

import pytest

from domain import PaymentStatus, Role, WebhookEvent
from services.payments import events
from services.payments import service as payments
from tests.integration.test_webhook_retries import (
    fail_until_given_up,
    locked_payments,
    paid_at_the_gateway,
    paid_postings,
)

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


@pytest.fixture()
def given_up(session, market, gateway, clock):  # type: ignore[no-untyped-def]
    """A payment_intent.succeeded event whose processing failed on every try: given up."""
    order, event = paid_at_the_gateway(session, market, gateway)
    event_id = events.record_event(session, event)
    assert event_id is not None
    fail_until_given_up(session, gateway, clock, event_id, max_attempts=events.DEFAULT_MAX_ATTEMPTS)
    return order, event_id


class TestAdmin:
    def test_the_page_lists_the_given_up_event_with_its_error(self, make_user, as_user, given_up):
        _order, event_id = given_up
        client = as_user(make_user(Role.ADMIN))
        resp = client.get("/admin/webhooks", headers=ZH)
        assert resp.status_code == 200
        page = html(resp)
        assert f'data-event="{event_id}"' in page
        assert "payment_intent.succeeded" in page
        assert "database is locked" in page
        assert "6 / 6" in page
        assert "已放弃重试" in page and "重新处理" in page
        # Received at NOW (04:00 UTC), shown in China's time.
        assert "2026-11-26 12:00:00" in page

    def test_process_again_processes_it_and_the_page_says_so(
        self, session, make_user, as_user, given_up, gateway
    ):
        order, event_id = given_up
        client = as_user(make_user(Role.ADMIN))
        resp = client.post(f"/admin/webhooks/{event_id}/retry", headers=EN)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/webhooks")
        session.expire_all()
        row = session.get(WebhookEvent, event_id)
        assert row is not None and (row.state, row.attempts, row.error) == ("processed", 7, "")
        assert payments.payment_of(session, order).status == PaymentStatus.SUCCEEDED
        assert paid_postings(session) == 1
        page = html(client.get("/admin/webhooks", headers=EN))
        assert f"The event {event_id} has been processed." in page
        assert f'data-event="{event_id}"' not in page
        # Again: nothing to do, nothing posted twice.
        client.post(f"/admin/webhooks/{event_id}/retry", headers=EN)
        assert "This event was processed already." in html(client.get("/admin/webhooks", headers=EN))
        assert paid_postings(session) == 1

    def test_a_failure_again_is_shown_and_it_stays_listed(self, session, make_user, as_user, given_up):
        _order, event_id = given_up
        client = as_user(make_user(Role.ADMIN))
        with locked_payments(session.connection(), times=1):
            client.post(f"/admin/webhooks/{event_id}/retry", headers=EN)
        page = html(client.get("/admin/webhooks", headers=EN))
        assert "Processing the event failed again: OperationalError" in page
        assert f'data-event="{event_id}"' in page and "7 / 6" in page
        session.expire_all()
        assert session.get(WebhookEvent, event_id).state == "given_up"

    def test_an_unknown_event_is_not_found(self, make_user, as_user):
        client = as_user(make_user(Role.ADMIN))
        assert client.post("/admin/webhooks/evt_nope/retry").status_code == 404
        assert client.post(f"/admin/webhooks/{'x' * 80}/retry").status_code == 404

    def test_process_again_needs_its_csrf_token(
        self, session, make_user, as_user, app, given_up, monkeypatch
    ):
        _order, event_id = given_up
        client = as_user(make_user(Role.ADMIN))
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        assert client.post(f"/admin/webhooks/{event_id}/retry").status_code == 400
        session.expire_all()
        assert session.get(WebhookEvent, event_id).state == "given_up"

    def test_the_admins_workspace_links_to_the_page(self, make_user, as_user):
        client = as_user(make_user(Role.ADMIN))
        page = html(client.get("/", headers=ZH))
        assert 'href="/admin/webhooks"' in page and "支付事件" in page


class TestOthersStayOut:
    @pytest.mark.parametrize("role", [Role.BUYER, Role.COUNTY_STAFF])
    def test_non_admins_get_403_and_nothing_is_processed(self, session, make_user, as_user, role, given_up):
        order, event_id = given_up
        kwargs = {"county_code": "441403"} if role == Role.COUNTY_STAFF else {}
        client = as_user(make_user(role, **kwargs))
        assert client.get("/admin/webhooks").status_code == 403
        assert client.post(f"/admin/webhooks/{event_id}/retry").status_code == 403
        session.expire_all()
        assert session.get(WebhookEvent, event_id).state == "given_up"
        assert payments.payment_of(session, order).status != PaymentStatus.SUCCEEDED

    def test_anonymous_is_sent_to_log_in(self, client, given_up):
        _order, event_id = given_up
        assert client.get("/admin/webhooks").status_code == 302
        resp = client.post(f"/admin/webhooks/{event_id}/retry")
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
