"""Exceptions on the staff's pages (issue 12, item 9): the hub day page and the scan page show a
node's exceptions (a parcel the flag-stuck-parcels job found stuck, linked to its sub-order page)
and the hub's parcels in and out today; staff of another county or center are refused as before;
a departure scanned on the page or through the API names its vehicle, a vehicle of another node
is a clear 4xx with nothing written."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

import pytest

from domain import LegStatus, Node, Scan, SubOrder
from services import jobs
from services.logistics import scans
from services.orders import checkout
from tests.conftest import MEIXIAN, count
from tests.factories import Logistics, add_vehicle, build_logistics, parcel_at_center

H = timedelta(hours=1)


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


@dataclass
class Stuck:
    w: Logistics
    p2: Node
    sub: SubOrder


@pytest.fixture()
def stuck(session, admin, make_user, market, gateway, point, agent, village_point, clock) -> Stuck:  # type: ignore[no-untyped-def]
    """A parcel waiting at 梅县's county center for its leg to another 梅县 point, a day and more
    past that leg's planned departure, flagged by the job."""
    w = build_logistics(session, admin, make_user, point, agent)
    p2 = village_point(MEIXIAN, 1)
    sub = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, p2)
    shipment = scans.shipment_of(session, sub)
    assert shipment is not None
    leg = next(x for x in shipment.legs if x.status == LegStatus.PLANNED)
    clock.set(leg.planned_depart_at + 25 * H)
    outcome = jobs.run_job(lambda: nullcontext(session), "flag-stuck-parcels", context=jobs.JobContext())
    assert outcome.ok and outcome.result["stuck"] == 1
    return Stuck(w, p2, sub)


def exceptions_of(page: str) -> str:
    found = re.search(r'<section id="exceptions".*?</section>', page, re.S)
    assert found, "no exceptions section"
    return found.group()


class TestHubDay:
    def test_the_center_s_staff_see_the_stuck_parcel_and_today_s_parcels_in_and_out(
        self, session, as_user, stuck
    ):
        page = as_user(stuck.w.county_staff).get(f"/hub/{stuck.w.center.id}")
        assert page.status_code == 200
        shown = exceptions_of(html(page))
        assert "异常" in shown and "滞留在此" in shown and "没有异常" not in shown
        assert re.search(rf'href="[^"]*/{stuck.sub.number}"[^>]*>{stuck.sub.number}<', shown)
        assert stuck.p2.name in shown
        in_out = re.search(r'<section id="in-out".*?</section>', html(page), re.S)
        assert in_out and "今日进出" in in_out.group() and stuck.sub.number in in_out.group()

    def test_another_day_shows_no_exceptions_and_others_are_refused_as_before(self, session, as_user, stuck):
        w = stuck.w
        other_day = as_user(w.county_staff).get(f"/hub/{w.center.id}?day=2026-01-05")
        assert other_day.status_code == 200 and 'id="exceptions"' not in html(other_day)
        for user in (w.county_staff_sd, w.dc_staff, w.agent):
            assert as_user(user).get(f"/hub/{w.center.id}").status_code == 403
        assert stuck.sub.number not in html(as_user(w.dc_staff).get(f"/hub/{w.dc.id}"))


class TestScanPage:
    def test_the_desk_shows_the_exceptions_and_a_departure_leaves_on_the_chosen_vehicle(
        self, session, as_user, stuck
    ):
        w = stuck.w
        van = add_vehicle(session, w.center, "粤M·00011")
        theirs = add_vehicle(session, w.dc, "粤M·00012")
        client = as_user(w.county_staff)
        page = html(client.get(f"/scan?node={w.center.id}"))
        assert stuck.sub.number in exceptions_of(page)
        assert 'name="vehicle_id"' in page and "粤M·00011" in page and "粤M·00012" not in page

        def post(vehicle_id: int):  # type: ignore[no-untyped-def]
            data = {
                "node_id": str(w.center.id),
                "label": stuck.sub.number,
                "kind": "departed",
                "vehicle_id": str(vehicle_id),
                "key": checkout.new_idempotency_key(),
                "note": "",
            }
            return client.post("/scan", data=data)

        before = count(session, Scan)
        refused = post(theirs.id)
        assert refused.status_code == 422 and "没有这辆车" in html(refused)
        assert count(session, Scan) == before

        done = post(van.id)
        assert done.status_code == 302 and f"vehicle={van.id}" in done.headers["Location"]
        session.expire_all()
        shipment = scans.shipment_of(session, stuck.sub)
        assert shipment is not None and shipment.flagged_at is None
        leg = next(x for x in shipment.legs if x.status == LegStatus.DEPARTED)
        assert leg.vehicle_id == van.id
        after = html(client.get(done.headers["Location"]))
        assert f'<option selected value="{van.id}">' in after or f'value="{van.id}" selected' in after
        # Stuck no more; left a day late, so late on the way until it arrives.
        shown = exceptions_of(after)
        assert "滞留在此" not in shown and "在途延误" in shown and stuck.sub.number in shown

    def test_a_node_without_vehicles_has_no_vehicle_field_and_other_staff_are_refused(
        self, session, as_user, stuck
    ):
        w = stuck.w
        page = html(as_user(w.agent).get(f"/scan?node={w.point.id}"))
        assert 'id="exceptions"' in page and 'name="vehicle_id"' not in page
        assert as_user(w.county_staff_sd).get(f"/scan?node={w.center.id}").status_code == 403


class TestApi:
    def test_a_departure_names_its_vehicle_one_of_another_node_is_a_422(self, session, client, bearer, stuck):
        w = stuck.w
        van = add_vehicle(session, w.center, "粤M·00021")
        theirs = add_vehicle(session, w.dc, "粤M·00022")
        headers = bearer(w.county_staff)
        body = {"label": stuck.sub.number, "kind": "departed", "node_id": w.center.id}
        refused = client.post(
            "/api/v1/scans",
            json={**body, "vehicle_id": theirs.id, "idempotency_key": "k" * 20},
            headers=headers,
        )
        assert refused.status_code == 422 and "vehicle_id" in str(refused.get_json())
        assert count(session, Scan, Scan.kind == "departed", Scan.node_id == w.center.id) == 0
        done = client.post(
            "/api/v1/scans", json={**body, "vehicle_id": van.id, "idempotency_key": "j" * 20}, headers=headers
        )
        assert done.status_code == 200, done.get_json()
        legs = done.get_json()["shipment"]["legs"]
        assert [leg["vehicle_id"] for leg in legs if leg["status"] == "departed"][-1] == van.id
