"""Standing orders over HTTP (issue 11, item 8): the agent sets one up from the villager's page
(goods found through the proxy search), the job prepares the cycle, the agent confirms it on its
page (one proxy order, paid in cash) or skips it, pauses, resumes and cancels; the same through
the API; refusals in Chinese as pages or 4xx JSON, nothing written twice; the OpenAPI document."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import CycleStatus, Order, PaymentStatus, Role, StandingCycle, StandingOrder, StandingStatus
from services import cash, standing, villagers
from services.villagers import VillagerInput
from tests.conftest import YINGDE, count

FERTILIZER = "复合肥"
SATURDAY = 5


def page_of(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def form_key(page: str) -> str:
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="key"', page
    )
    assert key, "no key in the page"
    return key.group(1)


def china(y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def register(session, agent, point, name="陈阿婆", phone="13912340000"):  # type: ignore[no-untyped-def]
    return villagers.register_villager(
        session,
        agent,
        VillagerInput(name=name, village_code=point.division_code, phone=phone),
        idempotency_key=f"web-{name}",
    )


@pytest.fixture()
def villager(session, agent, point):  # type: ignore[no-untyped-def]
    return register(session, agent, point)


@pytest.fixture()
def elsewhere(session, make_user, village_point):  # type: ignore[no-untyped-def]
    """Another point's agent and villager."""
    node = village_point(YINGDE)
    their_agent = make_user(Role.AGENT, node_id=node.id)
    return their_agent, register(session, their_agent, node, name="黄婆婆")


def cycles(session, so_id: int) -> list[StandingCycle]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(
        session.scalars(
            select(StandingCycle)
            .where(StandingCycle.standing_order_id == so_id)
            .order_by(StandingCycle.due_date)
        )
    )


def set_up_on_the_page(client, market, villager) -> int:  # type: ignore[no-untyped-def]
    url = f"/agent/standing/villagers/{villager.id}/new"
    page = page_of(client.get(url))
    assert "陈阿婆的定期代购" in page
    key = form_key(page)
    product = market.product(FERTILIZER).id
    found = client.post(url, data={"key": key, "action": "search", "q": FERTILIZER})
    assert found.status_code == 200
    assert f'name="qty-{product}"' in page_of(found) and FERTILIZER in page_of(found)
    form = {
        "key": key,
        "action": "create",
        f"qty-{product}": "2",
        "cadence": "weekly",
        "weekday": str(SATURDAY),
        "day_of_month": "1",
        "repeat_every": "1",
        "start_date": "2026-11-26",
        "payment_method": "cash",
    }
    made = client.post(url, data=form)
    assert made.status_code == 302, page_of(made)
    again = client.post(url, data=form)  # a double tap: the one standing order
    assert again.headers["Location"] == made.headers["Location"]
    return int(made.headers["Location"].rstrip("/").rsplit("/", 1)[1])


class TestPages:
    def test_set_up_from_the_villagers_page_then_confirm_one_cash_order(
        self, session, market, agent, villager, as_user, clock
    ):
        client = as_user(agent)
        assert "/agent/standing/" in page_of(client.get("/workspace"))
        profile = page_of(client.get(f"/agent/villagers/{villager.id}"))
        assert f"/agent/standing/villagers/{villager.id}/new" in profile and "设置定期代购" in profile
        so_id = set_up_on_the_page(client, market, villager)
        assert count(session, StandingOrder) == 1
        shown = page_of(client.get(f"/agent/standing/{so_id}"))
        assert "每周星期六" in shown and "复合肥 × 2" in shown and "2026-11-28" in shown

        standing.prepare_cycles(session)
        (cycle,) = cycles(session, so_id)
        listing = page_of(client.get("/agent/standing/"))
        assert "陈阿婆" in listing and "复合肥 × 2" in listing and "现金" in listing
        assert f"/agent/standing/cycles/{cycle.id}" in listing and "11-27 22:00" in listing

        page = page_of(client.get(f"/agent/standing/cycles/{cycle.id}"))
        assert "确认并下单" in page
        key = form_key(page)
        product = market.product(FERTILIZER).id
        bad = client.post(
            f"/agent/standing/cycles/{cycle.id}/confirm", data={"key": key, f"qty-{product}": "0"}
        )
        assert bad.status_code == 422 and "请至少为一种商品填写数量" in page_of(bad)
        done = client.post(
            f"/agent/standing/cycles/{cycle.id}/confirm", data={"key": key, f"qty-{product}": "1"}
        )
        assert done.status_code == 302, page_of(done)
        again = client.post(
            f"/agent/standing/cycles/{cycle.id}/confirm", data={"key": key, f"qty-{product}": "1"}
        )
        assert again.headers["Location"] == done.headers["Location"]
        # Confirmed offline (the form is in the agent's queue), sent again when the answer was lost.
        assert "data-offline" in page
        replay = client.post(
            f"/agent/standing/cycles/{cycle.id}/confirm",
            data={"key": key, f"qty-{product}": "1"},
            headers={"X-Offline-Submit": "replay"},
        )
        assert replay.status_code == 200 and replay.get_json()["location"] == done.headers["Location"]
        (order,) = session.scalars(select(Order).where(Order.villager_id == villager.id)).all()
        assert done.headers["Location"].endswith(f"/agent/proxy/orders/{order.number}")
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert cash.cash_held(session, agent.id) == order.total_fen
        assert order.number in page_of(client.get(f"/agent/standing/{so_id}"))
        assert "目前没有需要确认的" in page_of(client.get("/agent/standing/"))

    def test_bad_input_re_renders_the_form_with_the_message(self, session, market, agent, villager, as_user):
        client = as_user(agent)
        url = f"/agent/standing/villagers/{villager.id}/new"
        key = form_key(page_of(client.get(url)))
        base = {"key": key, "action": "create", "cadence": "weekly", "weekday": "2", "repeat_every": "1"}
        product = market.product(FERTILIZER).id
        for data, message in (
            ({}, "请至少选择一种商品"),
            ({f"qty-{product}": "1000"}, "999"),
            ({f"qty-{product}": "-1"}, "数量"),
            ({f"qty-{product}": "1", "weekday": "9"}, "0到6"),
            ({f"qty-{product}": "1", "cadence": "monthly", "day_of_month": "31"}, "1到28"),
            ({f"qty-{product}": "1", "repeat_every": "13"}, "1到12"),
            ({f"qty-{product}": "1", "start_date": "2020-01-01"}, "开始日期不能早于今天"),
            ({f"qty-{product}": "1", "payment_method": "card"}, "请选择"),
        ):
            resp = client.post(url, data={**base, "payment_method": "cash", **data})
            assert resp.status_code == 422, (data, page_of(resp))
            assert message in page_of(resp), (data, message)
        assert count(session, StandingOrder) == 0

    def test_skip_pause_resume_cancel_and_the_cut_off(self, session, market, agent, villager, as_user, clock):
        client = as_user(agent)
        so_id = set_up_on_the_page(client, market, villager)
        standing.prepare_cycles(session)
        (cycle,) = cycles(session, so_id)
        assert client.post(f"/agent/standing/{so_id}/pause").status_code == 302
        assert cycles(session, so_id)[0].status == CycleStatus.SKIPPED
        assert "恢复" in page_of(client.get(f"/agent/standing/{so_id}"))
        assert client.post(f"/agent/standing/{so_id}/resume").status_code == 302
        assert cycles(session, so_id)[0].status == CycleStatus.PREPARED
        skipped = client.post(f"/agent/standing/cycles/{cycle.id}/skip")
        assert skipped.status_code == 302
        assert cycles(session, so_id)[0].status == CycleStatus.SKIPPED
        refused = client.post(
            f"/agent/standing/cycles/{cycle.id}/confirm", data={"key": "confirm-page-key-01"}
        )
        assert refused.status_code == 409 and "这一期已跳过" in page_of(refused)

        clock.set(china(2026, 12, 2, 23))
        standing.prepare_cycles(session)
        nxt = cycles(session, so_id)[1]
        clock.set(china(2026, 12, 4, 22, 1))  # past its cut-off
        client = as_user(agent)  # days later: a new login
        late = client.post(f"/agent/standing/cycles/{nxt.id}/confirm", data={"key": "confirm-page-key-02"})
        assert late.status_code == 409 and "截单时间（2026-12-04 22:00）已过" in page_of(late)
        assert "截单时间已过" in page_of(client.get(f"/agent/standing/cycles/{nxt.id}"))
        assert client.post(f"/agent/standing/{so_id}/cancel").status_code == 302
        session.expire_all()
        assert session.get(StandingOrder, so_id).status == StandingStatus.CANCELLED
        flashed = client.post(f"/agent/standing/{so_id}/resume", follow_redirects=True)
        assert "已取消" in page_of(flashed)
        assert count(session, Order) == 0

    def test_another_points_standing_orders_and_villagers_are_refused(
        self, session, market, agent, villager, as_user, elsewhere
    ):
        their_agent, theirs = elsewhere
        client = as_user(agent)
        assert client.get(f"/agent/standing/villagers/{theirs.id}/new").status_code == 403
        so = standing.create(
            session,
            their_agent,
            standing.StandingInput(
                villager_id=theirs.id,
                items={market.product(FERTILIZER).id: 1},
                payment_method="cash",
                cadence="weekly",
                weekday=SATURDAY,
            ),
            "their-standing-key-1",
        )
        standing.prepare_cycles(session)
        (cycle,) = cycles(session, so.id)
        for url in (f"/agent/standing/{so.id}", f"/agent/standing/cycles/{cycle.id}"):
            assert client.get(url).status_code == 404
        for url in (f"/agent/standing/{so.id}/cancel", f"/agent/standing/cycles/{cycle.id}/skip"):
            assert client.post(url).status_code == 404
        resp = client.post(f"/agent/standing/cycles/{cycle.id}/confirm", data={"key": "confirm-page-key-01"})
        assert resp.status_code == 404
        assert "黄婆婆" not in page_of(client.get("/agent/standing/"))
        assert cycles(session, so.id)[0].status == CycleStatus.PREPARED and count(session, Order) == 0

    def test_only_agents(self, make_user, as_user):
        client = as_user(make_user(Role.BUYER))
        assert client.get("/agent/standing/").status_code == 403


class TestApi:
    def body(self, market, villager, **extra):  # type: ignore[no-untyped-def]
        return {
            "villager_id": villager.id,
            "items": [{"product_id": market.product(FERTILIZER).id, "quantity": 2}],
            "payment_method": "cash",
            "cadence": "weekly",
            "weekday": SATURDAY,
            **extra,
        }

    def test_set_up_list_confirm_skip_pause_cancel(
        self, session, client, bearer, market, agent, villager, clock
    ):
        auth = bearer(agent)
        headers = {**auth, "Idempotency-Key": "standing-api-key-01"}
        made = client.post("/api/v1/agent/standing-orders", json=self.body(market, villager), headers=headers)
        assert made.status_code == 201, made.get_json()
        got = made.get_json()
        assert (got["villager_name"], got["cadence"], got["weekday"], got["status"]) == (
            "陈阿婆",
            "weekly",
            SATURDAY,
            "active",
        )
        assert got["next_due"][0] == "2026-11-28" and got["lines"][0]["quantity"] == 2
        again = client.post(
            "/api/v1/agent/standing-orders", json=self.body(market, villager), headers=headers
        )
        assert again.get_json()["id"] == got["id"] and count(session, StandingOrder) == 1
        listed = client.get("/api/v1/agent/standing-orders", headers=auth).get_json()
        assert [s["id"] for s in listed] == [got["id"]]

        assert client.get("/api/v1/agent/standing-orders/cycles", headers=auth).get_json() == []
        standing.prepare_cycles(session)
        (cycle,) = client.get("/api/v1/agent/standing-orders/cycles", headers=auth).get_json()
        assert (cycle["due_date"], cycle["state"], cycle["payment_method"]) == (
            "2026-11-28",
            "to_confirm",
            "cash",
        )
        product = market.product(FERTILIZER).id
        url = f"/api/v1/agent/standing-orders/cycles/{cycle['id']}/confirm"
        bad = client.post(
            url,
            json={"quantities": [{"product_id": product + 1000, "quantity": 1}]},
            headers={**auth, "Idempotency-Key": "confirm-api-key-1"},
        )
        assert bad.status_code == 422
        assert client.post(url, json={}, headers=auth).status_code == 422  # no key
        body = {
            "quantities": [{"product_id": product, "quantity": 3}],
            "idempotency_key": "confirm-api-key-1",
        }
        done = client.post(url, json=body, headers=auth)
        assert done.status_code == 200, done.get_json()
        number = done.get_json()["order_number"]
        assert done.get_json()["state"] == "confirmed" and number
        replay = client.post(url, json={**body, "idempotency_key": "confirm-api-key-2"}, headers=auth)
        assert replay.get_json()["order_number"] == number
        (order,) = session.scalars(select(Order).where(Order.villager_id == villager.id)).all()
        assert order.number == number and order.payment.status == PaymentStatus.SUCCEEDED
        assert [line.quantity for sub in order.sub_orders for line in sub.lines] == [3]
        skip = client.post(f"/api/v1/agent/standing-orders/cycles/{cycle['id']}/skip", headers=auth)
        assert skip.status_code == 409

        detail = client.get(f"/api/v1/agent/standing-orders/{got['id']}", headers=auth).get_json()
        assert detail["standing_order"]["id"] == got["id"]
        assert [c["order_number"] for c in detail["cycles"]] == [number]
        base = f"/api/v1/agent/standing-orders/{got['id']}"
        assert client.post(f"{base}/pause", headers=auth).get_json()["status"] == "paused"
        assert client.post(f"{base}/resume", headers=auth).get_json()["status"] == "active"
        assert client.post(f"{base}/cancel", headers=auth).get_json()["status"] == "cancelled"
        assert client.post(f"{base}/resume", headers=auth).status_code == 409
        assert client.get("/api/v1/agent/standing-orders", headers=auth).get_json() == []
        assert (
            len(client.get("/api/v1/agent/standing-orders?include_cancelled=true", headers=auth).get_json())
            == 1
        )

    def test_after_the_cut_off_confirming_is_refused(
        self, session, client, bearer, market, agent, villager, clock
    ):
        auth = bearer(agent)
        made = client.post(
            "/api/v1/agent/standing-orders",
            json={**self.body(market, villager), "idempotency_key": "standing-api-key-02"},
            headers=auth,
        )
        standing.prepare_cycles(session)
        (cycle,) = cycles(session, made.get_json()["id"])
        clock.set(china(2026, 11, 27, 22))
        late = client.post(
            f"/api/v1/agent/standing-orders/cycles/{cycle.id}/confirm",
            json={"idempotency_key": "confirm-api-key-3"},
            headers=auth,
        )
        assert late.status_code == 409 and late.get_json()["code"] == "cutoff_passed"
        assert "截单时间" in late.get_json()["message"]
        skip = client.post(f"/api/v1/agent/standing-orders/cycles/{cycle.id}/skip", headers=auth)
        assert skip.status_code == 409
        assert count(session, Order) == 0

    @pytest.mark.parametrize(
        "change",
        [
            {"weekday": 7},
            {"weekday": -1},
            {"cadence": "monthly", "weekday": None, "day_of_month": 29},
            {"cadence": "monthly", "weekday": None, "day_of_month": 0},
            {"cadence": "monthly", "weekday": None},
            {"repeat_every": 0},
            {"repeat_every": 13},
            {"cadence": "daily"},
            {"items": []},
            {"items": [{"product_id": 1, "quantity": 0}]},
            {"items": [{"product_id": 1, "quantity": 1000}]},
            {"items": [{"product_id": 1, "quantity": 10**20}]},
            {"payment_method": "card"},
            {"start_date": "2020-01-01"},
            {"start_date": "someday"},
            {"villager_id": 0},
            {"note": "x" * 201},
            {"idempotency_key": "short"},
        ],
    )
    def test_bad_input_is_a_422_and_nothing_written(
        self, session, client, bearer, market, agent, villager, change
    ):
        body = {**self.body(market, villager), "idempotency_key": "standing-api-key-03", **change}
        resp = client.post("/api/v1/agent/standing-orders", json=body, headers=bearer(agent))
        assert resp.status_code == 422, resp.get_json()
        assert count(session, StandingOrder) == 0

    def test_duplicate_products_and_a_product_not_on_sale(
        self, session, client, bearer, market, agent, villager
    ):
        product = market.product(FERTILIZER).id
        twice = {"items": [{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 2}]}
        paused = {"items": [{"product_id": market.product("暂停的柚子").id, "quantity": 1}]}
        for change in (twice, paused):
            body = {**self.body(market, villager), "idempotency_key": "standing-api-key-04", **change}
            resp = client.post("/api/v1/agent/standing-orders", json=body, headers=bearer(agent))
            assert resp.status_code == 422, resp.get_json()
        assert count(session, StandingOrder) == 0

    def test_another_points_villager_and_standing_order(
        self, session, client, bearer, market, agent, villager, elsewhere, make_user
    ):
        their_agent, theirs = elsewhere
        mine = bearer(agent)
        body = {**self.body(market, theirs), "idempotency_key": "standing-api-key-05"}
        assert client.post("/api/v1/agent/standing-orders", json=body, headers=mine).status_code == 403
        body = {
            **self.body(market, villager),
            "villager_id": 2**31 - 2,
            "idempotency_key": "standing-api-key-06",
        }
        assert client.post("/api/v1/agent/standing-orders", json=body, headers=mine).status_code == 404
        theirs_made = client.post(
            "/api/v1/agent/standing-orders",
            json={**self.body(market, theirs), "idempotency_key": "standing-api-key-07"},
            headers=bearer(their_agent),
        ).get_json()
        standing.prepare_cycles(session)
        (cycle,) = cycles(session, theirs_made["id"])
        for method, url in (
            ("get", f"/api/v1/agent/standing-orders/{theirs_made['id']}"),
            ("post", f"/api/v1/agent/standing-orders/{theirs_made['id']}/pause"),
            ("get", f"/api/v1/agent/standing-orders/cycles/{cycle.id}"),
            ("post", f"/api/v1/agent/standing-orders/cycles/{cycle.id}/skip"),
        ):
            assert getattr(client, method)(url, headers=mine).status_code == 404, url
        confirm = client.post(
            f"/api/v1/agent/standing-orders/cycles/{cycle.id}/confirm",
            json={"idempotency_key": "confirm-api-key-4"},
            headers=mine,
        )
        assert confirm.status_code == 404
        assert (
            client.get("/api/v1/agent/standing-orders", headers=bearer(make_user(Role.BUYER))).status_code
            == 403
        )
        assert client.get("/api/v1/agent/standing-orders").status_code == 401
        assert count(session, Order) == 0

    def test_the_openapi_document_lists_them(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        for path in (
            "/api/v1/agent/standing-orders",
            "/api/v1/agent/standing-orders/{standing_id}",
            "/api/v1/agent/standing-orders/{standing_id}/pause",
            "/api/v1/agent/standing-orders/{standing_id}/resume",
            "/api/v1/agent/standing-orders/{standing_id}/cancel",
            "/api/v1/agent/standing-orders/cycles",
            "/api/v1/agent/standing-orders/cycles/{cycle_id}",
            "/api/v1/agent/standing-orders/cycles/{cycle_id}/confirm",
            "/api/v1/agent/standing-orders/cycles/{cycle_id}/skip",
        ):
            assert path in paths, path
        create = paths["/api/v1/agent/standing-orders"]["post"]
        assert {"201", "403", "409", "422"} <= set(create["responses"])
