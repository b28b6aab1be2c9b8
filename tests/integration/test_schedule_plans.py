"""Planned legs and ETAs from real routes (services/logistics/schedule.py through scans.start and
schedule.estimate), on both databases. The clock stands at the suite's NOW: Thursday 26 November
2026, 12:00 in China. The world is tests/factories.build_logistics (梅县 farmer's point, 梅县
center, 梅州 and 佛山 DCs); nodes sit on their county's centroid."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from domain import DeliveryMethod
from domain import clock as product_clock
from services import places
from services.logistics import scans, schedule
from services.orders.addresses import AddressInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import MEIXIAN
from tests.factories import city_address, handed_in

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
CONTACT = AddressInput(recipient="陈阿婆", phone="13912340000")


def china(instant) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    local = product_clock.local(instant)
    return (local.month, local.day, local.hour, local.minute)


class TestIntakePlansTheLegs:
    def test_a_city_parcel_takes_the_point_s_visit_the_evening_trunk_the_night_line_and_the_round(
        self, session, market, gateway, world, first_village, clock
    ):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 2}, address=city_address(first_village))
        legs = scans.shipment_of(session, sub).legs  # type: ignore[union-attr]
        # Handed in at 12:00: the vehicle's 14:00 visit takes it to the county center.
        assert china(legs[0].planned_depart_at) == (11, 26, 14, 0)
        assert china(legs[1].planned_depart_at) == (11, 26, 20, 0)  # 梅县 → 梅州 DC
        assert china(legs[2].planned_depart_at) == (11, 26, 23, 0)  # 梅州 → 佛山, overnight
        assert china(legs[3].planned_arrive_at) == (11, 27, 14, 0)  # 增城's door, Friday afternoon
        assert scans.shipment_of(session, sub).eta_at == legs[3].planned_arrive_at  # type: ignore[union-attr]
        for a, b in pairwise(legs):
            assert a.planned_depart_at < a.planned_arrive_at <= b.planned_depart_at
        # ~330 km on the road between the two DCs at 40 km/h: about 11 hours.
        trunk = (legs[2].planned_arrive_at - legs[2].planned_depart_at) / timedelta(hours=1)
        assert 9 < trunk < 13

    def test_a_point_served_tuesday_thursday_saturday_gets_it_on_saturday(
        self, session, market, gateway, world, admin, village_point, clock
    ):
        other = village_point(MEIXIAN, 1)
        places.update_node(session, admin, other.id, {"delivery_days": "246"})
        sub = handed_in(
            session,
            market,
            gateway,
            world,
            {"梅县蜜柚": 1},
            delivery="pickup",
            pickup_node_id=other.id,
            pickup_contact=CONTACT,
            address=None,
        )
        shipment = scans.shipment_of(session, sub)
        up, down = shipment.legs  # type: ignore[union-attr]
        assert china(up.planned_depart_at) == (11, 26, 14, 0)
        # At the center by Thursday afternoon: too late for Thursday's run, none on Friday.
        assert china(down.planned_arrive_at) == (11, 28, 14, 0)
        assert shipment.eta_at == down.planned_arrive_at  # type: ignore[union-attr]


class TestEstimate:
    def test_before_and_after_the_cut_off(self, session, market, world, admin, village_point, clock):
        other = village_point(MEIXIAN, 1)
        places.update_node(session, admin, other.id, {"delivery_days": "246"})
        farmer = market.shop.meixian_farmer
        there = schedule.Destination(pickup_node=other)
        found = schedule.estimate(session, farmer.id, there)
        assert found is not None and found.place == other.name and not found.to_door
        # Ordered Thursday noon: collected at the farmer's point Friday, at the other Saturday.
        assert china(found.ready_at) == (11, 28, 14, 0)
        assert china(found.order_by) == (11, 26, 22, 0)
        clock.set(clock.now().replace(hour=14, minute=30))  # 22:30 in China
        later = schedule.estimate(session, farmer.id, there)
        assert later is not None and china(later.ready_at) == (12, 1, 14, 0)  # Saturday, then Tuesday
        assert china(later.order_by) == (11, 27, 22, 0)

    def test_at_the_door_and_at_the_seller_s_own_point(self, session, market, world, clock):
        farmer = market.shop.meixian_farmer
        door = schedule.estimate(
            session, farmer.id, schedule.Destination(door_division_code=market.village_code)
        )
        assert door is not None and door.to_door
        assert china(door.ready_at) == (11, 28, 14, 0)  # Friday's visit, the evening trunk, Saturday's round
        here = schedule.estimate(session, farmer.id, schedule.Destination(pickup_node=world.point))
        assert here is not None and china(here.ready_at) == (11, 27, 14, 0)  # handed in, no leg

    def test_no_route_no_destination_no_estimate(self, session, market, point, clock):
        farmer = market.shop.meixian_farmer
        # No DC in this world: the door cannot be reached.
        assert (
            schedule.estimate(
                session, farmer.id, schedule.Destination(door_division_code=market.village_code)
            )
            is None
        )
        assert schedule.estimate(session, farmer.id, schedule.Destination()) is None

    def test_a_buyer_s_destination(self, session, market, world, gateway, clock):
        buyer = market.buyer
        assert schedule.buyer_destination(session, None) == schedule.Destination()
        assert schedule.buyer_destination(session, buyer) == schedule.Destination()
        assert schedule.buyer_destination(session, world.agent).pickup_node.id == world.point.id  # type: ignore[union-attr]
        market.place({"梅县蜜柚": 1}, SETTINGS)
        assert schedule.buyer_destination(session, buyer).door_division_code == market.village_code
        market.place(
            {"梅县蜜柚": 1},
            SETTINGS,
            delivery=DeliveryMethod.PICKUP.value,
            pickup_node_id=world.point.id,
            pickup_contact=CONTACT,
            address=None,
        )
        assert schedule.buyer_destination(session, buyer).pickup_node.id == world.point.id  # type: ignore[union-attr]


class TestCost:
    def test_the_product_page_s_estimate_takes_a_few_queries(self, session, market, world, clock):
        from sqlalchemy import event

        statements: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        session.expire_all()  # nothing from the set-up in the identity map
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            destination = schedule.buyer_destination(session, world.agent)
            found = schedule.estimate(session, market.shop.meixian_farmer.id, destination)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert found is not None
        assert len(statements) <= 8, statements
