"""The admins' jobs page over HTTP: every registered job with its last run and result, a "run
now" button that runs it; nobody else gets in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from domain import JobRun, OrderStatus, Role, SubOrder
from services import jobs
from services.orders.pricing import CheckoutSettings

EN = {"Accept-Language": "en"}
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


@pytest.fixture()
def picked_up_long_ago(session, market, clock):  # type: ignore[no-untyped-def]
    """A sub-order waiting at the point for 10 days: the auto-completion job's work."""
    order = market.place({"梅县金柚": 1}, SETTINGS)
    sub = order.sub_orders[0]
    session.execute(
        update(SubOrder)
        .where(SubOrder.id == sub.id)
        .values(status=OrderStatus.READY_FOR_PICKUP, status_changed_at=clock.now() - timedelta(days=10))
    )
    session.commit()
    return sub.id


class TestAdmin:
    def test_the_page_lists_every_job(self, make_user, as_user):
        client = as_user(make_user(Role.ADMIN))
        resp = client.get("/admin/jobs", headers={"Accept-Language": "zh-CN"})
        assert resp.status_code == 200
        page = html(resp)
        for name in jobs.REGISTRY:
            assert f'data-job="{name}"' in page
        assert "定时任务" in page and "立即运行" in page
        # Each period as it is: half a minute, a minute, an hour (never "every 0 hours").
        assert "每 30 秒" in page and "每 1 分钟" in page and "每 1 小时" in page
        assert "每 0 " not in page

    def test_run_now_runs_the_job_and_the_page_shows_the_result(
        self, session, make_user, as_user, picked_up_long_ago
    ):
        client = as_user(make_user(Role.ADMIN))
        resp = client.post("/admin/jobs/complete-delivered/run", headers=EN)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/jobs")
        session.expire_all()
        assert session.get(SubOrder, picked_up_long_ago).status == OrderStatus.COMPLETED
        run = session.get(JobRun, "complete-delivered")
        assert run is not None and (run.ok, run.result, run.runs) == (True, 1, 1)
        page = html(client.get("/admin/jobs", headers=EN))
        assert "The job has run." in page
        # Run again: nothing left to complete, recorded again.
        client.post("/admin/jobs/complete-delivered/run")
        session.expire_all()
        run = session.get(JobRun, "complete-delivered")
        assert (run.result, run.runs) == (0, 2)

    def test_a_job_held_by_another_runner_is_not_started_again(self, session, make_user, as_user, clock):
        spec = jobs.REGISTRY["complete-delivered"]
        assert jobs.acquire(session, spec, "another-process", clock.now())
        client = as_user(make_user(Role.ADMIN))
        client.post("/admin/jobs/complete-delivered/run", headers=EN)
        page = html(client.get("/admin/jobs", headers=EN))
        assert "This job is running already" in page
        session.expire_all()
        assert session.get(JobRun, "complete-delivered").runs == 0

    def test_an_unknown_job_is_not_found(self, make_user, as_user):
        client = as_user(make_user(Role.ADMIN))
        assert client.post("/admin/jobs/no-such-job/run").status_code == 404

    def test_run_now_needs_its_csrf_token(self, session, make_user, as_user, app, monkeypatch):
        client = as_user(make_user(Role.ADMIN))
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        assert client.post("/admin/jobs/complete-delivered/run").status_code == 400
        assert session.get(JobRun, "complete-delivered") is None


class TestOthersStayOut:
    @pytest.mark.parametrize("role", [Role.BUYER, Role.FARMER])
    def test_non_admins_get_403_and_nothing_runs(self, session, make_user, as_user, role, picked_up_long_ago):
        client = as_user(make_user(role))
        assert client.get("/admin/jobs").status_code == 403
        assert client.post("/admin/jobs/complete-delivered/run").status_code == 403
        session.expire_all()
        assert session.get(SubOrder, picked_up_long_ago).status == OrderStatus.READY_FOR_PICKUP
        assert session.get(JobRun, "complete-delivered") is None

    def test_anonymous_visitors_are_sent_to_log_in(self, client):
        for resp in (client.get("/admin/jobs"), client.post("/admin/jobs/complete-delivered/run")):
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
