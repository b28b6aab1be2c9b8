"""Issue 11, items 1 and 9 over HTTP: the agent's day at a glance (each figure a tap from its
page) and county staff's view of their county's agents, with real orders behind the figures."""

from __future__ import annotations

import pytest

from domain import OrderStatus, Role
from services import ledger, proxy, villagers
from services.authz import Party
from services.orders import checkout, states
from services.orders.pricing import CheckoutSettings
from services.villagers import VillagerInput

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def cash_order(session, market, agent, villager, *, take=True):  # type: ignore[no-untyped-def]
    """A proxy order for the villager, paid in cash at once, or waiting for payment by QR."""
    items = {market.product("梅县蜜柚").id: 1}
    method = "cash" if take else "wechat_pay"
    return proxy.place(
        session, None, agent, villager.id, method, checkout.new_idempotency_key(), SETTINGS, items=items
    ).order


@pytest.fixture()
def villager(session, agent, point):  # type: ignore[no-untyped-def]
    data = VillagerInput(name="陈阿婆", village_code=point.division_code, phone="13912340000")
    return villagers.register_villager(session, agent, data, idempotency_key="villager-day-0001")


class TestDay:
    def test_the_figures_follow_the_point_s_orders(
        self, session, client, as_user, bearer, market, point, agent, villager, gateway
    ):
        paid = cash_order(session, market, agent, villager)
        cash_order(session, market, agent, villager, take=False)  # waiting for its cash
        # A city buyer's order, accepted by the point's farmer: produce for the agent to receive.
        bought = market.pay(market.place({"梅县蜜柚": 1}, SETTINGS), gateway)
        seller = market.product("梅县蜜柚").seller
        states.apply(session, bought.sub_orders[0], OrderStatus.ACCEPTED, party=Party.SELLER, actor=seller)
        session.commit()
        day = client.get("/api/v1/agent/day", headers=bearer(agent)).get_json()
        assert (
            day["cash_held_fen"] == ledger.balance(session, ledger.cash_held_code(agent.id)) == paid.total_fen
        )
        assert day["to_receive"] == 1
        assert day["awaiting_payment"] == 1
        assert day["points"] == [{"id": point.id, "name": point.name}]
        html = as_user(agent).get("/agent").get_data(as_text=True)
        assert "今天" in html and "/agent/intake" in html and "/agent/parcels" in html

    def test_only_agents_have_a_day_page(self, client, as_user, bearer, staff):
        assert as_user(staff).get("/agent").status_code == 403
        assert client.get("/api/v1/agent/day", headers=bearer(staff)).status_code == 403


class TestCounty:
    def test_staff_see_each_agent_s_cash_and_its_age(
        self, session, client, as_user, bearer, market, point, agent, staff, villager
    ):
        order = cash_order(session, market, agent, villager)
        view = client.get("/api/v1/county/points", headers=bearer(staff)).get_json()
        (row,) = [r for r in view["rows"] if r["agent_id"] == agent.id]
        assert row["cash_held_fen"] == order.total_fen
        assert row["cash_oldest_at"] is not None
        assert row["proxy_orders"] == 1 and row["proxy_fen"] == order.total_fen
        assert view["totals"]["cash_held_fen"] == order.total_fen
        html = as_user(staff).get("/county/points").get_data(as_text=True)
        assert agent.display_name in html
        assert as_user(agent).get("/county/points").status_code == 403
