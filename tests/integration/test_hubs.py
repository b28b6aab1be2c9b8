"""Pallets and the day's vehicle routes at a hub (issue 12, items 5-6): services/logistics/
pallets.py and routes.py over the network's parcels, on both databases.

The world: tests/factories.py's logistics world (the 梅县 farmer's point with its agent, 梅县's
county center, the 梅州 and 佛山 DCs) and two more 梅县 village points, placed around the center
with their opening hours. Parcels are real orders handed in at the farmer's point: a parcel for
another point is scanned into the center and waits there for its leg to that point (a drop), a
parcel for the city waits at the farmer's point for its leg to the center (a pickup)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from domain import (
    Leg,
    LegStatus,
    Node,
    PalletParcel,
    PalletStatus,
    RoutePlan,
    RouteStop,
    ScanKind,
    StorageClass,
    SubOrder,
    clock,
)
from services.errors import Forbidden, ValidationError
from services.logistics import loads, pallets, routes, scans, vrp
from services.logistics.distance import HaversineMatrix
from services.orders import checkout
from tests.conftest import MEIXIAN
from tests.factories import (
    Logistics,
    add_vehicle,
    build_logistics,
    city_address,
    handed_in,
    parcel_at_center,
    staff_of,
)

LIMIT = 0.3  # seconds of search: the days here have three stops
DISTANCES = HaversineMatrix()


@dataclass
class Hub:
    w: Logistics
    p2: Node
    p3: Node


@pytest.fixture()
def hub(session, admin, make_user, market, point, agent, village_point) -> Hub:  # type: ignore[no-untyped-def]
    w = build_logistics(session, admin, make_user, point, agent)
    p2, p3 = village_point(MEIXIAN, 1), village_point(MEIXIAN, 2)
    # Around 梅县's center (about 24.27 N, 116.08 E), a few kilometres apart.
    for node, lat, lon, hours in (
        (w.center, 24.265, 116.083, "06:00-22:00"),
        (w.point, 24.330, 116.150, "07:30-19:30"),
        (p2, 24.200, 116.010, "08:00-20:00"),
        (p3, 24.380, 115.980, ""),
    ):
        node.latitude, node.longitude, node.opening_hours = lat, lon, hours
    session.commit()
    return Hub(w, p2, p3)


def leg_to(session, sub: SubOrder, node: Node) -> Leg:  # type: ignore[no-untyped-def]
    shipment = scans.shipment_of(session, sub)
    assert shipment is not None
    return next(leg for leg in shipment.legs if leg.to_node_id == node.id)


def depart(session, sub: SubOrder, node: Node) -> None:  # type: ignore[no-untyped-def]
    scans.record_scan(
        session,
        staff_of(session, node),
        sub.number,
        ScanKind.DEPARTED,
        checkout.new_idempotency_key(),
        node_id=node.id,
    )


def contents(pallet) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(p.leg_id for p in pallet.parcels)


class TestPallets:
    def test_parcels_for_one_next_hop_fill_pallets_within_weight_and_volume_and_an_outsize_one_goes_loose(
        self, session, market, gateway, hub
    ):
        w = hub.w
        big, half_a, half_b, outsize = (
            parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2, weight_g=g)
            for g in (600_000, 300_000, 300_000, 1_200_000)
        )
        result = pallets.build_pallets(session, w.county_staff, w.center)
        built = pallets.pallets_of(session, w.county_staff, w.center, clock.today())
        # 600 kg of ambient goods take 1500 L: a 300 kg parcel (750 L) no longer fits beside them.
        assert [contents(p) for p in built] == [
            [leg_to(session, big, hub.p2).id],
            sorted([leg_to(session, half_a, hub.p2).id, leg_to(session, half_b, hub.p2).id]),
        ]
        for pallet in built:
            assert pallet.next_node_id == hub.p2.id and pallet.status == PalletStatus.BUILT
            assert pallet.weight_g == sum(p.weight_g for p in pallet.parcels) <= pallets.PALLET_MAX_LOAD_G
            assert pallet.volume_l == sum(p.volume_l for p in pallet.parcels) <= pallets.PALLET_VOLUME_L
        assert [p.label for p in result.loose] == [outsize.number]
        assert (result.added, result.new_pallets) == (3, 2)
        assert loads.parcel_volume_l(300_000, StorageClass.AMBIENT) == 750

    def test_chilled_goods_never_share_a_pallet_with_ambient_ones(self, session, market, gateway, hub):
        w = hub.w
        pomelo = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        chicken = parcel_at_center(session, market, gateway, w, {"冰鲜走地鸡": 1}, hub.p2)
        pallets.build_pallets(session, w.county_staff, w.center)
        built = pallets.pallets_of(session, w.county_staff, w.center, clock.today())
        assert sorted((p.storage_class, tuple(contents(p))) for p in built) == sorted(
            [
                (StorageClass.AMBIENT, (leg_to(session, pomelo, hub.p2).id,)),
                (StorageClass.CHILLED, (leg_to(session, chicken, hub.p2).id,)),
            ]
        )

    def test_building_again_adds_only_new_parcels_and_a_departed_pallet_never_changes(
        self, session, market, gateway, hub
    ):
        w = hub.w
        a = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        pallets.build_pallets(session, w.county_staff, w.center)
        again = pallets.build_pallets(session, w.county_staff, w.center)
        assert (again.added, again.new_pallets) == (0, 0)
        (first,) = pallets.pallets_of(session, w.county_staff, w.center, clock.today())
        b = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        assert pallets.build_pallets(session, w.county_staff, w.center).added == 1
        session.refresh(first)
        assert contents(first) == sorted([leg_to(session, a, hub.p2).id, leg_to(session, b, hub.p2).id])

        depart(session, a, w.center)  # the pallet leaves in part: what stays is still on it
        session.refresh(first)
        assert first.status == PalletStatus.BUILT
        depart(session, b, w.center)  # its last parcel leaves: the scan departs the pallet
        session.refresh(first)
        assert first.status == PalletStatus.DEPARTED
        c = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        result = pallets.build_pallets(session, w.county_staff, w.center)
        session.refresh(first)
        assert result.departed == 0 and first.status == PalletStatus.DEPARTED
        assert contents(first) == sorted([leg_to(session, a, hub.p2).id, leg_to(session, b, hub.p2).id])
        second = next(
            p for p in pallets.pallets_of(session, w.county_staff, w.center, clock.today()) if p != first
        )
        assert contents(second) == [leg_to(session, c, hub.p2).id]
        with pytest.raises(Exception, match="departed"):
            pallets.mark_loaded(session, w.county_staff, w.center, first.code)
        assert session.scalar(select(func.count(PalletParcel.id))) == 3

    def test_only_the_hub_s_staff_build_its_pallets(self, session, hub):
        with pytest.raises(Forbidden):
            pallets.build_pallets(session, hub.w.county_staff_sd, hub.w.center)
        with pytest.raises(Forbidden):
            pallets.build_pallets(session, hub.w.dc_staff, hub.w.center)
        with pytest.raises(Forbidden):
            pallets.build_pallets(session, hub.w.agent, hub.w.center)


class TestRoutes:
    def test_the_day_s_problem_comes_from_the_network(self, session, market, gateway, hub, first_village):
        w = hub.w
        produce = handed_in(session, market, gateway, w, {"梅县蜜柚": 2}, address=city_address(first_village))
        pomelo = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        chicken = parcel_at_center(session, market, gateway, w, {"冰鲜走地鸡": 1}, hub.p3)
        van = add_vehicle(session, w.center, "粤M·A1234", kg=1500, m3=8, shift=("07:00", "18:30"))
        cold = add_vehicle(session, w.center, "粤M·C5678", kg=800, m3=4.5, refrigerated=True)

        day = routes.build_day_problem(session, w.center, clock.today(), DISTANCES)
        problem = day.problem
        stops = {s.id: s for s in problem.stops}
        assert set(stops) == {str(w.point.id), str(hub.p2.id), str(hub.p3.id)}
        at_point, at_p2, at_p3 = stops[str(w.point.id)], stops[str(hub.p2.id)], stops[str(hub.p3.id)]
        # The farmer's produce waits at its point for the center: collected there.
        assert (at_point.pickup_kg, at_point.drop_kg) == (produce.weight_g / 1000, 0)
        volume = loads.parcel_volume_l(produce.weight_g, StorageClass.AMBIENT)
        assert at_point.pickup_m3 == volume / 1000
        assert at_point.window == (7 * 3600 + 1800, 19 * 3600 + 1800) and not at_point.needs_cold
        assert (at_p2.drop_kg, at_p2.pickup_kg) == (pomelo.weight_g / 1000, 0) and not at_p2.needs_cold
        assert at_p2.window == (8 * 3600, 20 * 3600)
        # Chilled goods make a cold stop; a point with no opening hours is open all day (the shift
        # bounds the visit), and the plan says so ("" hours).
        assert at_p3.needs_cold and at_p3.drop_kg == chicken.weight_g / 1000
        assert at_p3.window == (0, vrp.DAY_S) and day.hours[str(hub.p3.id)] == ""
        assert (problem.depot.open_s, problem.depot.close_s) == (6 * 3600, 22 * 3600)
        by_id = {v.id: v for v in problem.vehicles}
        assert by_id[str(van.id)] == vrp.Vehicle(str(van.id), 1500, 8.0, False, 7 * 3600, 18 * 3600 + 1800)
        assert by_id[str(cold.id)].refrigerated and by_id[str(cold.id)].capacity_m3 == 4.5
        assert len(problem.travel) == 4 and problem.travel.metres[0][1] > 0
        assert routes.parse_hours("08：00 - 20：00") == (8 * 3600, 20 * 3600)  # as typed on a phone
        assert routes.parse_hours("07:00-24:00") == (7 * 3600, vrp.DAY_S)
        assert routes.parse_hours("全天") is None and routes.parse_hours("") is None

    def test_a_day_with_more_than_fits_plans_what_fits_and_lists_the_rest(
        self, session, market, gateway, hub, first_village
    ):
        w = hub.w
        heavy_2 = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2, weight_g=500_000)
        heavy_3 = parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p3, weight_g=500_000)
        chilled = handed_in(
            session, market, gateway, w, {"冰鲜走地鸡": 1}, address=city_address(first_village)
        )
        van = add_vehicle(session, w.center, "粤M·B2345", kg=600, m3=10)

        plan = routes.plan_day(
            session, w.county_staff, w.center, clock.today(), DISTANCES, time_limit_s=LIMIT
        )
        planned = [s for s in plan.stops if s.vehicle_id is not None]
        unplanned = {s.node_id: s.reason for s in plan.stops if s.vehicle_id is None}
        assert len(planned) == 1 and planned[0].vehicle_id == van.id and planned[0].seq == 1
        served = planned[0].node_id
        other = hub.p3.id if served == hub.p2.id else hub.p2.id
        assert unplanned == {other: routes.Reason.FULL, w.point.id: routes.Reason.NEEDS_COLD}
        # The legs carried have the vehicle and times; the others have none.
        (run,) = plan.runs
        served_sub, other_sub = (heavy_2, heavy_3) if served == hub.p2.id else (heavy_3, heavy_2)
        carried = leg_to(session, served_sub, session.get(Node, served))
        assert carried.vehicle_id == van.id and carried.planned_depart_at == run.depart_at
        assert carried.planned_arrive_at == planned[0].arrive_at
        assert leg_to(session, other_sub, session.get(Node, other)).vehicle_id is None
        assert leg_to(session, chilled, w.center).vehicle_id is None
        assert planned[0].drop_g == 500_000 and planned[0].load_g == 0 and run.load_out_g == 500_000

    def test_a_plan_that_fails_writes_nothing_and_keeps_the_last_plan(self, session, market, gateway, hub):
        w = hub.w
        parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        add_vehicle(session, w.center, "粤M·D3456")
        plan = routes.plan_day(
            session, w.county_staff, w.center, clock.today(), DISTANCES, time_limit_s=LIMIT
        )
        before = [(s.node_id, s.vehicle_id, s.seq, s.arrive_at) for s in plan.stops]

        class Broken:
            def matrix(self, points):  # type: ignore[no-untyped-def]
                raise RuntimeError("the road provider is down")

        with pytest.raises(RuntimeError):
            routes.plan_day(session, w.county_staff, w.center, clock.today(), Broken(), time_limit_s=LIMIT)
        session.expire_all()
        again = routes.plan_for(session, w.center, clock.today())
        assert (
            again is not None
            and [(s.node_id, s.vehicle_id, s.seq, s.arrive_at) for s in again.stops] == before
        )
        assert session.scalar(select(func.count(RoutePlan.id))) == 1
        van = again.runs[0].vehicle_id
        with pytest.raises(RuntimeError):  # a lock whose re-plan fails is not kept either
            routes.lock_stop(session, w.county_staff, w.center, clock.today(), hub.p2.id, van, Broken())
        session.expire_all()
        stop = routes.plan_for(session, w.center, clock.today()).stops[0]  # type: ignore[union-attr]
        assert stop.locked_vehicle_id is None and stop.vehicle_id == van

    def test_a_locked_stop_stays_on_its_vehicle_when_the_day_is_planned_again(
        self, session, market, gateway, hub, first_village
    ):
        w = hub.w
        parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p2)
        parcel_at_center(session, market, gateway, w, {"梅县蜜柚": 1}, hub.p3)
        handed_in(session, market, gateway, w, {"冰鲜走地鸡": 1}, address=city_address(first_village))
        one = add_vehicle(session, w.center, "粤M·E4567")
        two = add_vehicle(session, w.center, "粤M·F5678", refrigerated=True)
        today = clock.today()
        plan = routes.plan_day(session, w.county_staff, w.center, today, DISTANCES, time_limit_s=LIMIT)
        on = {s.node_id: s.vehicle_id for s in plan.stops}
        assert on[w.point.id] == two.id  # the cold pickup: the refrigerated vehicle only
        target = one.id if on[hub.p2.id] == two.id else two.id

        plan = routes.lock_stop(
            session, w.county_staff, w.center, today, hub.p2.id, target, DISTANCES, time_limit_s=LIMIT
        )
        stop = next(s for s in plan.stops if s.node_id == hub.p2.id)
        assert (stop.vehicle_id, stop.locked_vehicle_id) == (target, target)
        for _ in range(2):  # planning again keeps the lock and replaces the rest, no duplicates
            plan = routes.plan_day(session, w.county_staff, w.center, today, DISTANCES, time_limit_s=LIMIT)
            stop = next(s for s in plan.stops if s.node_id == hub.p2.id)
            assert (stop.vehicle_id, stop.locked_vehicle_id) == (target, target)
            assert session.scalar(select(func.count(RouteStop.id))) == 3
            assert len(plan.runs) == 2
        with pytest.raises(ValidationError):  # a cold stop on an ambient vehicle
            routes.lock_stop(
                session, w.county_staff, w.center, today, w.point.id, one.id, DISTANCES, time_limit_s=LIMIT
            )
        with pytest.raises(Forbidden):
            routes.lock_stop(
                session, w.county_staff_sd, w.center, today, hub.p2.id, None, DISTANCES, time_limit_s=LIMIT
            )
        plan = routes.lock_stop(session, w.county_staff, w.center, today, hub.p2.id, None, DISTANCES)
        assert next(s for s in plan.stops if s.node_id == hub.p2.id).locked_vehicle_id is None

    def test_a_distribution_center_s_day_collects_from_its_county_centers(
        self, session, market, gateway, hub, first_village
    ):
        w = hub.w
        w.dc.latitude, w.dc.longitude = 24.290, 116.120
        produce = handed_in(session, market, gateway, w, {"梅县蜜柚": 2}, address=city_address(first_village))
        depart(session, produce, w.point)
        scans.record_scan(
            session,
            w.county_staff,
            produce.number,
            ScanKind.ARRIVED,
            checkout.new_idempotency_key(),
            node_id=w.center.id,
        )
        truck = add_vehicle(session, w.dc, "粤M·G6789", kg=5000, m3=30)
        plan = routes.plan_day(session, w.dc_staff, w.dc, clock.today(), DISTANCES, time_limit_s=LIMIT)
        (stop,) = plan.stops
        assert (stop.node_id, stop.vehicle_id, stop.pickup_g) == (w.center.id, truck.id, produce.weight_g)
        assert leg_to(session, produce, w.dc).vehicle_id == truck.id
        assert leg_to(session, produce, w.dc).status == LegStatus.PLANNED
