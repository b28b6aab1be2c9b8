"""A hub's day over the pages (issue 12, item 9): the county center's staff add a vehicle, build
pallets, plan the day and lock a stop; staff of another county or of a DC are refused; bad input
is a form error in Chinese, nothing written."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from domain import Node, Pallet, PalletStatus, RoutePlan, Vehicle
from tests.conftest import MEIXIAN
from tests.factories import Logistics, add_vehicle, build_logistics, parcel_at_center


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


@dataclass
class Day:
    w: Logistics
    p2: Node
    url: str


@pytest.fixture()
def day(session, admin, make_user, market, gateway, point, agent, village_point) -> Day:  # type: ignore[no-untyped-def]
    w = build_logistics(session, admin, make_user, point, agent)
    p2 = village_point(MEIXIAN, 1)
    for node, lat, lon in ((w.center, 24.265, 116.083), (w.point, 24.33, 116.15), (p2, 24.2, 116.01)):
        node.latitude, node.longitude = lat, lon
    p2.opening_hours = "08:00-20:00"
    session.commit()
    parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, p2)
    return Day(w, p2, f"/hub/{w.center.id}")


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count(model.id))) or 0


class TestTheDay:
    def test_the_center_s_staff_add_a_vehicle_build_pallets_plan_the_day_and_lock_a_stop(
        self, session, as_user, day
    ):
        client = as_user(day.w.county_staff)
        page = client.get(day.url)
        assert page.status_code == 200 and "路线计划" in html(page) and "还没有车辆" in html(page)

        added = client.post(
            f"{day.url}/vehicles",
            data={
                "plate": "粤m 12345",
                "kind": "ambient",
                "capacity_kg": "1500",
                "capacity_m3": "8.5",
                "shift_start": "07:00",
                "shift_end": "18:00",
            },
        )
        assert added.status_code == 302
        (vehicle,) = session.scalars(select(Vehicle)).all()
        assert (vehicle.plate, vehicle.capacity_l, vehicle.node_id) == ("粤M·12345", 8500, day.w.center.id)

        assert client.post(f"{day.url}/pallets").status_code == 302
        (pallet,) = session.scalars(select(Pallet)).all()
        assert pallet.next_node_id == day.p2.id
        assert pallet.code in html(client.get(day.url))
        assert client.post(f"{day.url}/pallets/loaded", data={"code": pallet.code.lower()}).status_code == 302
        session.refresh(pallet)
        assert pallet.status == PalletStatus.LOADED

        assert client.post(f"{day.url}/plan", data={}).status_code == 302
        shown = html(client.get(day.url))
        assert "<polyline" in shown and day.p2.name in shown and "粤M·12345" in shown
        assert re.search(r"\d\d:\d\d–\d\d:\d\d", shown)  # the stop's planned times

        locked = client.post(
            f"{day.url}/plan/lock", data={"stop": str(day.p2.id), "vehicle": str(vehicle.id)}
        )
        assert locked.status_code == 302
        assert "已锁定" in html(client.get(day.url))
        assert count(session, RoutePlan) == 1

    def test_the_dc_s_staff_see_their_own_center_s_day(self, as_user, day):
        assert as_user(day.w.dc_staff).get(f"/hub/{day.w.dc.id}").status_code == 200
        assert as_user(day.w.dc_staff).get("/hub/").status_code == 200

    def test_staff_of_another_county_or_a_dc_are_refused_and_nothing_is_written(self, session, as_user, day):
        for stranger in (day.w.county_staff_sd, day.w.dc_staff, day.w.agent):
            client = as_user(stranger)
            assert client.get(day.url).status_code == 403
            assert client.post(f"{day.url}/plan", data={}).status_code == 403
            assert client.post(f"{day.url}/pallets").status_code == 403
            body = {"plate": "粤M·99999", "kind": "ambient", "capacity_kg": "1", "capacity_m3": "1"}
            assert client.post(f"{day.url}/vehicles", data=body).status_code == 403
        assert (count(session, RoutePlan), count(session, Pallet), count(session, Vehicle)) == (0, 0, 0)
        assert as_user(day.w.county_staff_sd).get(f"/hub/{day.w.point.id}").status_code == 404

    def test_bad_input_is_a_form_error_and_writes_nothing(self, session, as_user, day):
        client = as_user(day.w.county_staff)
        bad = client.post(
            f"{day.url}/vehicles",
            data={
                "plate": "ABC",
                "kind": "flying",
                "capacity_kg": "-5",
                "capacity_m3": "九",
                "shift_start": "18:00",
                "shift_end": "07:00",
            },
        )
        assert bad.status_code == 422
        page = html(bad)
        assert "请按 粤M·12345 的格式填写车牌" in page and "公斤" in page
        assert count(session, Vehicle) == 0
        wrong_code = client.post(f"{day.url}/pallets/loaded", data={"code": "P0-000000-999"})
        assert wrong_code.status_code == 422 and "P0-000000-999" in html(wrong_code)
        no_plan = client.post(f"{day.url}/plan/lock", data={"stop": str(day.p2.id), "vehicle": ""})
        assert no_plan.status_code == 422 and "先安排当天的路线" in html(no_plan)
        add_vehicle(session, day.w.center, "粤M·77777")
        assert client.post(f"{day.url}/plan", data={"day": "2020-01-01"}).status_code == 422
        assert client.get(f"{day.url}?day=not-a-day").status_code == 404
        assert count(session, RoutePlan) == 0

    def test_the_workspace_links_to_the_day(self, as_user, day):
        assert 'href="/hub/"' in html(as_user(day.w.county_staff).get("/workspace"))
        assert f'href="/hub/{day.w.dc.id}"' in html(as_user(day.w.dc_staff).get("/workspace"))

    def test_a_vehicle_taken_off_the_road_is_left_out_of_the_plan_and_a_bad_edit_changes_nothing(
        self, session, as_user, day
    ):
        van = add_vehicle(session, day.w.center, "粤M·55555")
        client = as_user(day.w.county_staff)
        form = {
            f"v{van.id}-plate": "粤M·55555",
            f"v{van.id}-kind": "ambient",
            f"v{van.id}-capacity_kg": "1500",
            f"v{van.id}-capacity_m3": "8",
            f"v{van.id}-shift_start": "07:00",
            f"v{van.id}-shift_end": "06:00",
        }
        bad = client.post(f"{day.url}/vehicles/{van.id}", data=form)
        assert bad.status_code == 422 and "班次结束时间必须晚于开始时间" in html(bad)
        session.refresh(van)
        assert van.active and van.shift_end.hour == 19
        form[f"v{van.id}-shift_end"] = "18:00"  # and the "on the road" box left unticked
        assert client.post(f"{day.url}/vehicles/{van.id}", data=form).status_code == 302
        session.refresh(van)
        assert not van.active and van.shift_end.hour == 18
        assert client.post(f"{day.url}/plan", data={}).status_code == 302
        (plan,) = session.scalars(select(RoutePlan)).all()
        assert plan.runs == [] and {s.reason for s in plan.stops} == {"no_vehicle"}
        assert "本中心没有正在运营的车辆" in html(client.get(day.url))
