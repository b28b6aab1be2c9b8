"""Scans over the API (issue 12, item 2): a node's staff scan a parcel leaving and arriving, one
scan or a device's queued batch (each applied once, refused ones reported one by one), and whoever
follows a parcel reads its journey; bad input is a 4xx with a message, never a 500."""

from __future__ import annotations

import pytest

from domain import OrderStatus, Scan, SubOrder
from services.orders import checkout
from tests.conftest import count
from tests.factories import city_address, handed_in

S = OrderStatus
SCANS = "/api/v1/scans"
BATCH = "/api/v1/scans/batch"


def key() -> str:
    return checkout.new_idempotency_key()


@pytest.fixture()
def parcel(session, market, gateway, world, first_village) -> SubOrder:  # type: ignore[no-untyped-def]
    """梅县 pomelos for a city buyer's door, handed in at the farmer's point."""
    return handed_in(session, market, gateway, world, {"梅县蜜柚": 2}, address=city_address(first_village))


def status_of(session, sub: SubOrder) -> OrderStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found.status


class TestOneScan:
    def test_the_point_s_agent_scans_it_out_and_a_repeat_changes_nothing(
        self, client, session, bearer, world, parcel
    ):
        headers = bearer(world.agent)
        body = {
            "label": parcel.number,
            "kind": "departed",
            "node_id": world.point.id,
            "idempotency_key": key(),
        }
        first = client.post(SCANS, json=body, headers=headers)
        assert first.status_code == 200, first.get_json()
        answer = first.get_json()
        assert answer["applied"] is True and answer["scan"]["kind"] == "departed"
        assert answer["shipment"]["status"] == "moving" and answer["shipment"]["flow"] == "first_km"
        assert [leg["status"] for leg in answer["shipment"]["legs"]][:2] == ["departed", "planned"]
        assert status_of(session, parcel) == S.IN_TRANSIT
        again = client.post(SCANS, json=body, headers=headers)
        rescanned = client.post(SCANS, json={**body, "idempotency_key": key()}, headers=headers)
        assert again.get_json()["applied"] is False and rescanned.get_json()["applied"] is False
        assert again.get_json()["scan"]["id"] == rescanned.get_json()["scan"]["id"] == answer["scan"]["id"]
        assert count(session, Scan) == 2  # collected at intake, departed

    def test_out_of_order_another_node_s_staff_and_bad_input_are_refused_with_a_message(
        self, client, session, bearer, world, parcel
    ):
        arrive = {
            "label": parcel.number,
            "kind": "arrived",
            "node_id": world.center.id,
            "idempotency_key": key(),
        }
        early = client.post(SCANS, json=arrive, headers=bearer(world.county_staff))
        assert early.status_code == 409 and early.get_json()["code"] == "illegal_scan"
        assert "发出" in early.get_json()["message"]  # what comes next: it leaves the point
        stranger = client.post(
            SCANS,
            json={
                "label": parcel.number,
                "kind": "departed",
                "node_id": world.point.id,
                "idempotency_key": key(),
            },
            headers=bearer(world.dc_staff),
        )
        assert stranger.status_code == 403
        unknown = client.post(
            SCANS,
            json={"label": "NOPE-1", "kind": "departed", "node_id": world.point.id, "idempotency_key": key()},
            headers=bearer(world.agent),
        )
        assert unknown.status_code == 404
        for bad in (
            {"kind": "departed", "node_id": world.point.id, "idempotency_key": key()},
            {
                "label": parcel.number,
                "kind": "collected",
                "node_id": world.point.id,
                "idempotency_key": key(),
            },
            {"label": parcel.number, "kind": "departed", "node_id": world.point.id},
            {"label": parcel.number, "kind": "departed", "node_id": "x", "idempotency_key": key()},
            {"label": parcel.number, "kind": "departed", "latitude": 200, "idempotency_key": key()},
        ):
            answer = client.post(SCANS, json=bad, headers=bearer(world.agent))
            assert 400 <= answer.status_code < 500, (bad, answer.status_code)
            assert answer.get_json()["message"]
        assert status_of(session, parcel) == S.HANDED_IN and count(session, Scan) == 1
        assert client.post(SCANS, json=arrive).status_code == 401


class TestBatch:
    def test_a_device_s_queue_is_applied_in_order_each_once_refused_ones_reported(
        self, client, session, bearer, world, parcel
    ):
        out = {
            "label": parcel.number,
            "kind": "departed",
            "node_id": world.point.id,
            "idempotency_key": key(),
        }
        wrong = {"label": parcel.number, "kind": "arrived", "node_id": world.dc.id, "idempotency_key": key()}
        queue = [out, wrong, out]  # the last: sent twice by the device
        answer = client.post(BATCH, json={"scans": queue}, headers=bearer(world.agent))
        assert answer.status_code == 200, answer.get_json()
        results = answer.get_json()["results"]
        assert [(r["index"], r["ok"], r["applied"]) for r in results] == [
            (0, True, True),
            (1, False, None),
            (2, True, False),
        ]
        assert results[1]["code"] in ("illegal_scan", "forbidden")
        assert status_of(session, parcel) == S.IN_TRANSIT and count(session, Scan) == 2
        # The answer was lost: the whole queue again applies nothing new.
        again = client.post(BATCH, json={"scans": queue}, headers=bearer(world.agent)).get_json()["results"]
        assert [r["applied"] for r in again if r["ok"]] == [False, False] and count(session, Scan) == 2

    def test_an_empty_or_oversized_batch_is_refused(self, client, bearer, world):
        assert client.post(BATCH, json={"scans": []}, headers=bearer(world.agent)).status_code == 422
        many = [{"label": "X", "kind": "departed", "idempotency_key": key()}] * 201
        assert client.post(BATCH, json={"scans": many}, headers=bearer(world.agent)).status_code == 422


class TestTheJourney:
    def test_its_buyer_seller_and_the_staff_on_its_way_see_it_others_do_not(
        self, client, bearer, market, world, parcel, make_user
    ):
        url = f"/api/v1/shipments/{parcel.number}"
        for who in (market.buyer, market.shop.meixian_farmer, world.agent, world.dc_staff_fs):
            answer = client.get(url, headers=bearer(who))
            assert answer.status_code == 200, who
            journey = answer.get_json()
            assert [s["kind"] for s in journey["scans"]] == ["collected"] and journey["eta_at"]
            assert len(journey["legs"]) == 4 and journey["legs"][-1]["to_node_id"] is None
        for stranger in (world.county_staff_sd, make_user()):
            assert client.get(url, headers=bearer(stranger)).status_code == 404
