"""The expected pickup day on the product page, at checkout and in the cart API, and the point
form's schedule and position fields, over HTTP. The clock stands at Thursday 26 November 2026,
12:00 in China (the suite's NOW); pages are in Chinese, the default language."""

from __future__ import annotations

import re
from html import unescape

import pytest

from domain import Node, NodeKind, Role
from services import places
from services.orders import cart as carts
from tests.conftest import MEIXIAN
from tests.factories import snapshot


def expected(html: str) -> list[str]:
    return [unescape(t).strip() for t in re.findall(r'<p class="expected[^"]*"[^>]*>([^<]*)</p>', html)]


def page(client, url: str) -> str:  # type: ignore[no-untyped-def]
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


class TestProductPage:
    def test_an_agent_reads_when_the_goods_are_at_their_point(self, as_user, market, world, clock):
        html = page(as_user(world.agent), f"/p/{market.product('梅县蜜柚').id}")
        assert expected(html) == [f"22:00前下单，预计11月27日（周五）下午可在{world.point.name}取货"]
        assert 'data-expected-at="2026-11-27T06:00:00+00:00"' in html

    def test_a_buyer_reads_the_day_at_their_door_and_the_next_day_s_after_the_cut_off(
        self, session, as_user, market, world, clock
    ):
        from services.orders.pricing import CheckoutSettings

        market.place({"梅县蜜柚": 1}, CheckoutSettings(free_shipping_from_fen=0))  # home, in 梅县
        client = as_user(market.buyer)
        url = f"/p/{market.product('梅县金柚').id}"
        assert expected(page(client, url)) == ["22:00前下单，预计11月28日（周六）下午送达"]
        clock.set(clock.now().replace(hour=14, minute=1))  # 22:01 in China
        assert expected(page(client, url)) == ["11月27日（周五）22:00前下单，预计11月29日（周日）下午送达"]

    def test_a_visitor_or_a_buyer_with_nowhere_known_reads_nothing_and_nothing_breaks(
        self, client, as_user, market, point, clock
    ):
        url = f"/p/{market.product('梅县蜜柚').id}"
        assert expected(page(client, url)) == []
        assert expected(page(as_user(market.buyer), url)) == []

    def test_without_a_route_the_page_still_renders(self, as_user, market, agent, clock):
        # An agent's point but no county center nor DC: no route, no sentence.
        assert expected(page(as_user(agent), f"/p/{market.product('梅县蜜柚').id}")) == []


class TestCheckout:
    def test_each_parcel_says_when_for_the_chosen_point_and_address(
        self, session, as_user, market, world, village_point, admin, clock
    ):
        other = village_point(MEIXIAN, 1)
        places.update_node(session, admin, other.id, {"delivery_days": "246"})
        carts.save_cart(session, market.buyer, {market.product("梅县蜜柚").id: 1})
        client = as_user(market.buyer)
        html = page(client, "/cart/checkout")
        assert expected(html) == []  # no point chosen, no address yet
        resp = client.post(
            "/cart/checkout",
            data={
                "delivery": "pickup",
                "pickup_node_id": str(other.id),
                "address_id": "new",
                "action": "pick",
                **places.picker_selection(market.village_code),
            },
        )
        assert resp.status_code == 200
        assert expected(resp.get_data(as_text=True)) == [
            "22:00前下单，预计11月28日（周六）下午送达",
            f"22:00前下单，预计11月28日（周六）下午可在{other.name}取货",
        ]


class TestCartApi:
    def test_groups_carry_expected_at_and_order_by(self, session, client, bearer, market, world, clock):
        carts.save_cart(session, market.buyer, {market.product("梅县蜜柚").id: 1})
        headers = bearer(market.buyer)
        resp = client.get(f"/api/v1/cart?delivery=pickup&pickup_node_id={world.point.id}", headers=headers)
        body = resp.get_json()
        assert resp.status_code == 200, body
        (group,) = body["groups"]
        assert group["expected_at"] == "2026-11-27T06:00:00+00:00"
        assert group["order_by"] == "2026-11-26T14:00:00+00:00"
        # Home delivery with no address saved: unknown, not an error.
        (group,) = client.get("/api/v1/cart", headers=headers).get_json()["groups"]
        assert group["expected_at"] is None and group["order_by"] is None


class TestPointForm:
    def form(self, node: Node, **changes: object) -> dict[str, object]:
        data: dict[str, object] = {
            "name": node.name,
            "address": node.address,
            "phone": node.phone,
            "opening_hours": node.opening_hours,
            "description": node.description,
            "active": "y",
            "delivery_days": ["", "1", "3", "5"],
            "cutoff_time": "21:30",
            "ready_time": "15:00",
            "latitude": "24.301234",
            "longitude": "116.112345",
        }
        data.update(changes)
        return data

    def test_county_staff_set_the_schedule_and_the_position(self, session, as_user, make_user, point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        client = as_user(staff)
        html = page(client, f"/manage/nodes/{point.id}")
        assert 'name="delivery_days"' in html and 'type="checkbox"' in html
        assert 'name="cutoff_time"' in html and 'type="time"' in html and 'value="22:00"' in html
        assert "data-geolocate" in html and "js/geolocate.js" in html  # the position button
        assert "位置为估计" in html
        resp = client.post(f"/manage/nodes/{point.id}", data=self.form(point))
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
        row = snapshot(session, point.id)
        assert row["delivery_days"] == "135"
        assert (row["cutoff_time"].strftime("%H:%M"), row["ready_time"].strftime("%H:%M")) == (
            "21:30",
            "15:00",
        )
        assert (row["latitude"], row["longitude"], row["coordinates_approximate"]) == (
            24.301234,
            116.112345,
            False,
        )
        public = page(client, f"/points/{point.id}")
        assert "位置为估计" not in public and "周一、周三、周五" in public and "21:30" in public

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"latitude": "39.9", "longitude": "116.4"}, "latitude", "广东"),  # 北京
            ({"latitude": "24.3", "longitude": "118.2"}, "longitude", "广东"),  # 福建
            ({"latitude": "24.3", "longitude": ""}, "longitude", "经度和纬度"),
            ({"latitude": "北纬24度", "longitude": "116.1"}, "latitude", "广东"),
            ({"delivery_days": [""]}, "delivery_days", "至少选择"),
            ({"cutoff_time": "25:00"}, "cutoff_time", "22:00"),
            ({"ready_time": "下午"}, "ready_time", "22:00"),
        ],
    )
    def test_bad_input_is_a_form_error_in_chinese_and_changes_nothing(
        self, session, as_user, make_user, point, changes, field, message
    ):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        before = snapshot(session, point.id)
        resp = as_user(staff).post(f"/manage/nodes/{point.id}", data=self.form(point, **changes))
        assert resp.status_code == 200  # the form again, as the other node edits do
        html = resp.get_data(as_text=True)
        after_field = html.split(f'name="{field}"', 1)[1]
        assert (
            message
            in re.split(
                r"<label|<legend|<button", after_field.split('class="field-error"', 1)[1], maxsplit=1
            )[0]
        )
        assert snapshot(session, point.id) == before

    def test_the_point_s_agent_sees_the_schedule_but_cannot_change_it(self, session, as_user, agent, point):
        client = as_user(agent)
        html = page(client, f"/manage/nodes/{point.id}")
        assert 'name="delivery_days"' not in html and "每天" in html and "22:00" in html
        before = snapshot(session, point.id)
        client.post(
            f"/manage/nodes/{point.id}", data={"opening_hours": "08:00-20:00", "delivery_days": ["", "1"]}
        )
        assert snapshot(session, point.id)["delivery_days"] == before["delivery_days"]

    def test_a_new_point_gets_its_schedule_and_exact_position(
        self, session, as_user, make_user, first_village
    ):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        client = as_user(staff)
        village = first_village(MEIXIAN, 2)
        url = "/manage/nodes/new?" + "&".join(
            f"{k}={v}" for k, v in {"kind": "village_point", **places.picker_selection(village.code)}.items()
        )
        html = page(client, url)
        assert 'value="22:00"' in html and 'value="14:00"' in html and "data-geolocate" in html
        resp = client.post(
            url,
            data={
                "division_code": village.code,
                "name": "新村服务点",
                "delivery_days": ["", "2", "4"],
                "cutoff_time": "20:00",
                "ready_time": "14:00",
                "latitude": "24.31",
                "longitude": "116.05",
            },
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
        node = places.find_node(session, NodeKind.VILLAGE_POINT, village.code)
        assert node is not None and node.delivery_days == "24" and node.coordinates_approximate is False
