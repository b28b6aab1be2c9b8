"""Exceptions in the network (issue 12, item 9), on both databases: the flag-stuck-parcels job
(a parcel waiting at a node N hours past its leg's planned departure, a leg under way late past
its grace; flagged once, told once, cleared by the next move), a node's exceptions list for its
own staff only (services/logistics/exceptions.py), and a departure scan naming its vehicle
(services/logistics/scans.py).

The world: tests/factories.py's logistics world; parcels are real orders of the 梅县 farmer
handed in at the farmer's point, for a city door (point → 梅县 center → 梅州 DC → door)."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    Leg,
    LegStatus,
    Lot,
    Notification,
    NotificationEvent,
    Scan,
    ScanKind,
    Shipment,
    SubOrder,
)
from services import jobs, notify
from services.errors import Forbidden, ValidationError
from services.logistics import coldchain, exceptions, scans
from services.logistics.coldchain import Source
from services.orders import checkout
from tests.conftest import NOW, count
from tests.factories import (
    add_vehicle,
    carry,
    carry_step,
    city_address,
    cold_chain,
    handed_in,
    pickup_at,
    staff_of,
)

H = timedelta(hours=1)
SETTINGS = {"STUCK_PARCEL_HOURS": 24, "LATE_LEG_GRACE_HOURS": 2}


@pytest.fixture()
def parcel(session, market, gateway, world, first_village, clock) -> SubOrder:  # type: ignore[no-untyped-def]
    """梅县 pomelos for a city door, handed in at the farmer's point at NOW."""
    return handed_in(session, market, gateway, world, {"梅县蜜柚": 1}, address=city_address(first_village))


def run(session) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The job as the scheduler runs it (the registry's entry, the app's settings)."""
    outcome = jobs.run_job(
        lambda: nullcontext(session), "flag-stuck-parcels", context=jobs.JobContext(settings=SETTINGS)
    )
    assert outcome.ran and outcome.ok, outcome.error
    return outcome.result  # type: ignore[no-any-return]


def shipment(session, sub: SubOrder) -> Shipment:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = scans.shipment_of(session, sub)
    assert found is not None
    return found


def next_leg(session, sub: SubOrder) -> Leg:  # type: ignore[no-untyped-def]
    return next(leg for leg in shipment(session, sub).legs if leg.status != LegStatus.ARRIVED)


def told(session, event: NotificationEvent) -> list[Notification]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(select(Notification).where(Notification.event == event).order_by(Notification.id))
    )


def scan(session, sub: SubOrder, kind: ScanKind, node, **extra):  # type: ignore[no-untyped-def]
    return scans.record_scan(
        session,
        staff_of(session, node),
        sub.number,
        kind,
        checkout.new_idempotency_key(),
        node_id=node.id,
        **extra,
    )


class TestStuckParcels:
    def test_not_stuck_before_n_hours_stuck_after_flagged_and_told_once(self, session, world, parcel, clock):
        due = next_leg(session, parcel).planned_depart_at
        assert due is not None
        clock.set(due + 23 * H)
        assert run(session) == {"stuck": 0, "late": 0, "alerts": 0}
        assert shipment(session, parcel).flagged_at is None

        clock.set(due + 25 * H)
        assert run(session) == {"stuck": 1, "late": 0, "alerts": 1}
        assert shipment(session, parcel).flagged_at == due + 25 * H
        (alert,) = told(session, NotificationEvent.PARCEL_STUCK)
        # The point's county's staff (a village point has no staff of its own to tell).
        assert alert.user_id == world.county_staff.id and alert.order_id is None
        assert alert.params["label"] == parcel.number and alert.params["next"] == world.center.name

        clock.set(due + 26 * H)
        assert run(session) == {"stuck": 0, "late": 0, "alerts": 0}  # again: nothing more
        assert len(told(session, NotificationEvent.PARCEL_STUCK)) == 1
        assert shipment(session, parcel).flagged_at == due + 25 * H

    def test_the_staff_s_messages_read_in_chinese(self, session, world, parcel, clock, pickup_keys):
        clock.set(next_leg(session, parcel).planned_depart_at + 25 * H)
        run(session)
        (alert,) = told(session, NotificationEvent.PARCEL_STUCK)
        text = notify.render(session, alert, pickup_keys)
        assert text.startswith("【粤农通】包裹") and parcel.number in text and world.point.name in text
        assert "24小时" in text
        silent = Notification(
            event=NotificationEvent.LOGGER_SILENT,
            params={"serial": "VAN-1", "place": "粤M·L0001", "since": "11-26 12:00"},
        )
        assert "VAN-1" in notify.render(session, silent, pickup_keys)

    def test_the_next_move_clears_the_flag_an_exception_scan_does_not(self, session, world, parcel, clock):
        due = next_leg(session, parcel).planned_depart_at
        clock.set(due + 25 * H)
        run(session)
        scan(session, parcel, ScanKind.EXCEPTION, world.point, note="箱子压坏")
        assert shipment(session, parcel).flagged_at is not None
        scan(session, parcel, ScanKind.DEPARTED, world.point)
        assert shipment(session, parcel).flagged_at is None

        # Stuck again at the center: flagged and told again (another leg).
        scan(session, parcel, ScanKind.ARRIVED, world.center)
        due = next_leg(session, parcel).planned_depart_at
        clock.set(max(due, clock.now()) + 25 * H)
        result = run(session)
        assert result["stuck"] == 1 and result["alerts"] == 1
        alerts = told(session, NotificationEvent.PARCEL_STUCK)
        assert [a.params["node"] for a in alerts] == [world.point.name, world.center.name]

    def test_a_parcel_ready_at_its_pickup_point_is_not_stuck(
        self, session, market, gateway, world, village_point, clock
    ):
        from tests.conftest import MEIXIAN

        other = village_point(MEIXIAN, 1)
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1}, **pickup_at(other))
        carry(session, sub)
        assert shipment(session, sub).current_node_id == other.id
        clock.set(NOW + 30 * 24 * H)
        assert run(session) == {"stuck": 0, "late": 0, "alerts": 0}

    def test_a_late_leg_under_way_is_flagged_after_its_grace_and_cleared_by_the_arrival(
        self, session, world, parcel, clock
    ):
        clock.set(next_leg(session, parcel).planned_depart_at)
        leg = carry_step(session, parcel)  # left the point for the center, on time
        assert leg.status == LegStatus.DEPARTED
        clock.set(leg.planned_arrive_at + 1 * H)
        assert run(session) == {"stuck": 0, "late": 0, "alerts": 0}  # within the grace
        clock.set(leg.planned_arrive_at + 3 * H)
        assert run(session) == {"stuck": 0, "late": 1, "alerts": 1}
        (alert,) = told(session, NotificationEvent.LEG_LATE)
        assert alert.user_id == world.county_staff.id  # the center it goes to
        assert (alert.params["origin"], alert.params["to"]) == (world.point.name, world.center.name)
        assert run(session)["late"] == 0
        carry_step(session, parcel)  # it arrives
        assert shipment(session, parcel).flagged_at is None


def readings(serial: str, start, temps: list[float]) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [
        {"logger": serial, "at": (start + i * timedelta(minutes=10)).isoformat(), "celsius": t}
        for i, t in enumerate(temps)
    ]


class TestNodeExceptions:
    def test_each_kind_shows_at_its_node_for_that_node_s_staff_only(
        self, session, market, gateway, world, first_village, clock
    ):
        w = world
        door = {"address": city_address(first_village)}
        stuck = handed_in(session, market, gateway, w, {"梅县蜜柚": 1}, **door)  # stays at the point
        waiting = handed_in(session, market, gateway, w, {"梅县蜜柚": 1}, **door)  # at the center, late
        moving = handed_in(session, market, gateway, w, {"梅县蜜柚": 1}, **door)  # center → DC, late
        for sub in (waiting, moving):
            clock.set(max(next_leg(session, sub).planned_depart_at, clock.now()))
            carry_step(session, sub)
            carry_step(session, sub)
        clock.set(max(next_leg(session, moving).planned_depart_at, clock.now()))
        to_dc = carry_step(session, moving)
        clock.set(max(to_dc.planned_arrive_at, next_leg(session, waiting).planned_depart_at) + 1 * H)
        # The job finds the one at the point stuck (with N just under how long it is overdue: the
        # one at the center, due later, is late to leave, not stuck yet).
        overdue = clock.now() - next_leg(session, stuck).planned_depart_at
        exceptions.flag_stuck(session, stuck_after=overdue - timedelta(minutes=1), late_grace=100 * H)
        assert shipment(session, stuck).flagged_at is not None
        assert shipment(session, waiting).flagged_at is None
        # An excursion in the center's van, and an exception scanned at the center today.
        van = cold_chain(session, w)
        logger = coldchain.register_logger(
            session, w.county_staff, serial="VAN-1", place=f"vehicle:{van.id}", storage_class="chilled"
        )
        coldchain.ingest_batch(
            session,
            Source(logger=logger.logger),
            readings("VAN-1", clock.now() - 3 * H, [3, 9, 9, 9, 9, 9, 3]),
        )
        scan(session, waiting, ScanKind.EXCEPTION, w.center, note="外箱破损")

        at_point = exceptions.node_exceptions(session, w.agent, w.point)
        assert [p.label for p in at_point.stuck] == [stuck.number]
        assert at_point.excursions == [] and at_point.late_on_the_way == []

        at_center = exceptions.node_exceptions(session, w.county_staff, w.center)
        assert at_center.stuck == []
        assert [p.label for p in at_center.late_to_leave] == [waiting.number]
        assert [p.label for p in at_center.late_on_the_way] == [moving.number]
        assert at_center.late_on_the_way[0].to_name == w.dc.name
        assert [v.excursion.logger.serial for v in at_center.excursions] == ["VAN-1"]
        assert [(s.label, s.note) for s in at_center.exception_scans] == [(waiting.number, "外箱破损")]
        # The center's staff (梅县) may open these 梅县 farmer's sub-orders.
        assert {waiting.number, moving.number} <= at_center.links

        at_dc = exceptions.node_exceptions(session, w.dc_staff, w.dc)
        assert [p.label for p in at_dc.late_on_the_way] == [moving.number]
        assert at_dc.stuck == at_dc.late_to_leave == at_dc.excursions == at_dc.exception_scans == []
        assert moving.number not in at_dc.links  # no standing on the sub-order: shown, not linked
        assert at_center.count == 4 and at_dc.count == 1

        for user, node in (
            (w.county_staff_sd, w.center),
            (w.dc_staff, w.center),
            (w.dc_staff_fs, w.dc),
            (w.county_staff, w.point),
            (w.agent, w.center),
        ):
            with pytest.raises(Forbidden):
                exceptions.node_exceptions(session, user, node)
        other_dc = exceptions.node_exceptions(session, w.dc_staff_fs, w.dc_fs)
        assert other_dc.count == 0


class TestDepartureVehicle:
    def test_a_departure_names_its_vehicle_over_the_route_plan_s(self, session, world, parcel, clock):
        w = world
        carry_step(session, parcel)
        carry_step(session, parcel)  # at the center
        planned = add_vehicle(session, w.center, "粤M·00001")
        van = cold_chain(session, w)
        leg = next_leg(session, parcel)
        leg.vehicle_id = planned.id  # as the day's route plan set it
        session.commit()
        clock.set(max(leg.planned_depart_at, clock.now()))
        done = scan(session, parcel, ScanKind.DEPARTED, w.center, vehicle_id=str(van.id))
        assert done.applied
        session.refresh(leg)
        assert (leg.status, leg.vehicle_id) == (LegStatus.DEPARTED, van.id)
        # The van's readings now reach the lot aboard.
        (lot,) = session.scalars(select(Lot).where(Lot.sub_order_id == parcel.id))
        stays = coldchain.lots_in(session, vehicle_id=van.id, start=clock.now(), end=clock.now() + H)
        assert [s.lot_id for s in stays] == [lot.id]
        assert coldchain.lots_in(session, vehicle_id=planned.id, start=clock.now(), end=clock.now() + H) == []

    def test_a_vehicle_not_of_the_node_off_the_road_or_not_on_a_departure_is_refused(
        self, session, world, parcel, clock
    ):
        w = world
        carry_step(session, parcel)
        carry_step(session, parcel)  # at the center
        theirs = add_vehicle(session, w.dc, "粤M·00002")
        parked = add_vehicle(session, w.center, "粤M·00003")
        ours = add_vehicle(session, w.center, "粤M·00004")
        parked.active = False
        session.commit()
        scans_before = count(session, Scan)
        for vehicle_id in (theirs.id, parked.id, 999_999, "x", "²"):
            with pytest.raises(ValidationError) as refused:
                scan(session, parcel, ScanKind.DEPARTED, w.center, vehicle_id=vehicle_id)
            assert "vehicle_id" in refused.value.field_errors
        with pytest.raises(ValidationError):  # only a departure names a vehicle
            scan(session, parcel, ScanKind.EXCEPTION, w.center, vehicle_id=ours.id, note="x")
        leg = next_leg(session, parcel)
        assert (leg.status, leg.vehicle_id, count(session, Scan)) == (LegStatus.PLANNED, None, scans_before)
        scan(session, parcel, ScanKind.DEPARTED, w.center, vehicle_id=ours.id)
        session.refresh(leg)
        assert leg.vehicle_id == ours.id
