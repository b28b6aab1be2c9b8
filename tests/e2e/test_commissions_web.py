"""Issue 11, item 6 over HTTP: county staff set their county's commission rates on the page and
through the API; an agent reads their earnings per month; refusals in Chinese."""

from __future__ import annotations

import pytest

from domain import CommissionRate, Role
from tests.conftest import count


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


class TestRatesPage:
    def test_staff_set_a_rate_and_see_it(self, session, as_user, staff, point):
        page = as_user(staff)
        start = page.get("/county/commission-rates")
        assert start.status_code == 302 and point.county_code in start.headers["Location"]
        url = f"/county/{point.county_code}/commission-rates"
        html = page.get(url).get_data(as_text=True)
        assert "佣金费率" in html and "代购订单" in html and "农产品交货" in html
        saved = page.post(url, data={"kind": "proxy", "category_id": "", "rate": "2.5"})
        assert saved.status_code == 302
        assert "2.5%" in page.get(url).get_data(as_text=True)
        bad = page.post(url, data={"kind": "proxy", "category_id": "", "rate": "45"})
        assert bad.status_code == 422
        assert "0 到 30" in bad.get_data(as_text=True)
        assert count(session, CommissionRate) == 1

    def test_an_agent_cannot_set_rates(self, as_user, agent, point):
        page = as_user(agent)
        url = f"/county/{point.county_code}/commission-rates"
        assert page.get(url).status_code == 403
        assert page.post(url, data={"kind": "proxy", "rate": "30"}).status_code == 403
        assert page.get("/county/commission-rates").status_code == 403


class TestApi:
    def test_rates_and_earnings(self, client, bearer, staff, agent, point):
        url = f"/api/v1/county/{point.county_code}/commission-rates"
        put = client.put(
            url, json={"kind": "intake", "category_id": None, "rate_percent": "1"}, headers=bearer(staff)
        )
        assert put.status_code == 200, put.get_json()
        rows = put.get_json()["rows"]
        assert {(r["kind"], r["category_id"], r["rate_bp"]) for r in rows} >= {("intake", None, 100)}
        refused = client.put(url, json={"kind": "intake", "rate_percent": "1"}, headers=bearer(agent))
        assert refused.status_code == 403
        bad = client.put(url, json={"kind": "intake", "rate_percent": "x"}, headers=bearer(staff))
        assert bad.status_code == 422 and "0 到 30" in bad.get_json()["message"]
        assert client.get("/api/v1/county/999999/commission-rates", headers=bearer(staff)).status_code == 404

        mine = client.get("/api/v1/agent/earnings?month=2026-11", headers=bearer(agent))
        assert mine.status_code == 200
        assert mine.get_json()["month"] == "2026-11" and mine.get_json()["rows"] == []
        assert client.get("/api/v1/agent/earnings", headers=bearer(staff)).status_code == 403
        assert client.get("/api/v1/agent/earnings?month=2026-13", headers=bearer(agent)).status_code == 422

    def test_the_earnings_page(self, as_user, agent):
        html = as_user(agent).get("/agent/earnings").get_data(as_text=True)
        assert "我的佣金" in html
        assert as_user(agent).get("/agent/earnings?month=bad").status_code == 200
