"""The logistics network (issue 12): the route a parcel takes (services/logistics/network.py) and
the scans that move it leg by leg and drive its sub-order (services/logistics/scans.py), on both
databases.

The world: the market's 梅县 farmer at their home village point (with its agent), 梅县's county
center, the 顺德 merchant's county center, a distribution center in 梅州 serving 梅县 and one in
佛山 serving 顺德, each with its staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    Flow,
    LegStatus,
    Node,
    OrderStatus,
    Role,
    Scan,
    ScanKind,
    ShipmentStatus,
    User,
)
from services.authz import Party
from services.errors import Forbidden, NotFound
from services.logistics import network, scans
from services.orders import checkout, states
from services.orders.addresses import AddressInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import MEIXIAN, count
from tests.factories import city_address, handed_in, receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


def key() -> str:
    return checkout.new_idempotency_key()


class TestRoutes:
    def test_produce_for_a_city_door_goes_up_to_its_dc_then_to_the_city_s(
        self, session, market, world, first_village
    ):
        order = market.place({"梅县蜜柚": 2}, SETTINGS, address=city_address(first_village))
        found = network.route(session, world.point, order, farm=True)
        # 增城 is listed by no DC: the nearest one serves it (佛山, not 梅州).
        assert [n.id for n in found.nodes] == [world.point.id, world.center.id, world.dc.id, world.dc_fs.id]
        assert found.to_door and found.flow == Flow.FIRST_KM
        assert [(a.id, b.id if b else None) for a, b in found.hops][-1] == (world.dc_fs.id, None)

    def test_goods_for_a_village_point_come_down_through_its_county(self, session, market, world):
        order = market.place(
            {"复合肥": 1},
            SETTINGS,
            delivery="pickup",
            pickup_node_id=world.point.id,
            pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
            address=None,
        )
        found = network.route(session, world.center_sd, order, farm=False)
        assert [n.name for n in found.nodes] == [
            "顺德区县域综合服务中心",
            "佛山城乡配送中心",
            "梅州城乡配送中心",
            "梅县区县域综合服务中心",
            world.point.name,
        ]
        assert not found.to_door and found.flow == Flow.LAST_KM

    def test_within_one_county_it_turns_at_the_county_center_and_at_one_point_it_does_not_move(
        self, session, market, world, village_point
    ):
        other = village_point(MEIXIAN, 1)
        contact = AddressInput(recipient="陈阿婆", phone="13912340000")
        there = market.place(
            {"梅县蜜柚": 1},
            SETTINGS,
            delivery="pickup",
            pickup_node_id=other.id,
            pickup_contact=contact,
            address=None,
        )
        found = network.route(session, world.point, there, farm=True)
        assert [n.id for n in found.nodes] == [world.point.id, world.center.id, other.id]
        assert found.flow == Flow.OTHER
        here = market.place(
            {"梅县蜜柚": 1},
            SETTINGS,
            delivery="pickup",
            pickup_node_id=world.point.id,
            pickup_contact=contact,
            address=None,
        )
        assert network.route(session, world.point, here, farm=True).hops == []

    def test_without_any_distribution_center_there_is_no_route(self, session, market, point):
        order = market.place({"梅县蜜柚": 1}, SETTINGS)
        with pytest.raises(network.NoRoute):
            network.route(session, point, order, farm=True)


class TestScans:
    def test_a_city_order_travels_leg_by_leg_and_its_scans_drive_the_order(
        self, session, market, gateway, world, first_village, clock
    ):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 2}, address=city_address(first_village))
        shipment = scans.shipment_of(session, sub)  # made by the intake
        assert shipment is not None
        assert [leg.seq for leg in shipment.legs] == [1, 2, 3, 4] and shipment.legs[-1].to_node_id is None
        assert shipment.eta_at is not None and shipment.eta_at > clock.now()
        assert shipment.status == ShipmentStatus.AT_ORIGIN and shipment.current_node_id == world.point.id

        def scan(actor: User, kind: ScanKind, node: Node | None) -> scans.ScanResult:
            clock.advance(timedelta(hours=3))
            return scans.record_scan(
                session, actor, sub.number, kind, key(), node_id=node.id if node else None
            )

        scan(world.agent, ScanKind.DEPARTED, world.point)
        assert sub.status == S.IN_TRANSIT and shipment.status == ShipmentStatus.MOVING
        scan(world.county_staff, ScanKind.ARRIVED, world.center)
        assert shipment.status == ShipmentStatus.AT_NODE and shipment.current_node_id == world.center.id
        scan(world.county_staff, ScanKind.DEPARTED, world.center)
        scan(world.dc_staff, ScanKind.ARRIVED, world.dc)
        scan(world.dc_staff, ScanKind.DEPARTED, world.dc)
        scan(world.dc_staff_fs, ScanKind.ARRIVED, world.dc_fs)
        assert sub.status == S.IN_TRANSIT
        scan(world.dc_staff_fs, ScanKind.DEPARTED, world.dc_fs)
        assert sub.status == S.OUT_FOR_DELIVERY and shipment.status == ShipmentStatus.OUT_FOR_DELIVERY
        done = scan(world.dc_staff_fs, ScanKind.DELIVERED, None)
        assert done.applied and shipment.status == ShipmentStatus.DELIVERED
        assert sub.delivered_at == done.scan.scanned_at
        assert all(leg.status == LegStatus.ARRIVED and leg.arrived_at for leg in shipment.legs)
        kinds = [s.kind for s in scans.timeline(session, shipment)]
        assert kinds == [ScanKind.COLLECTED] + [ScanKind.DEPARTED, ScanKind.ARRIVED] * 3 + [
            ScanKind.DEPARTED,
            ScanKind.DELIVERED,
        ]

    def test_a_rescanned_label_or_a_repeated_key_changes_nothing(
        self, session, market, gateway, world, clock
    ):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        shipment = scans.shipment_of(session, sub)  # made by the intake
        assert shipment is not None
        first = scans.record_scan(
            session, world.agent, sub.number, "departed", "scan-key-0001", node_id=world.point.id
        )
        again = scans.record_scan(
            session, world.agent, sub.number, "departed", "scan-key-0001", node_id=world.point.id
        )
        rescanned = scans.record_scan(
            session, world.agent, sub.number.lower(), "departed", "scan-key-0002", node_id=world.point.id
        )
        assert first.applied and not again.applied and not rescanned.applied
        assert again.scan.id == rescanned.scan.id == first.scan.id
        assert count(session, Scan, Scan.shipment_id == shipment.id) == 2  # collected, departed
        assert [e.to_status for e in sub.events].count(S.IN_TRANSIT) == 1

    def test_out_of_order_scans_are_refused_with_what_comes_next(
        self, session, market, gateway, world, clock
    ):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        with pytest.raises(scans.IllegalScan, match="it leaves"):  # it never left the point
            scans.record_scan(
                session, world.county_staff, sub.number, "arrived", key(), node_id=world.center.id
            )
        with pytest.raises(scans.IllegalScan):  # not at the DC
            scans.record_scan(session, world.dc_staff, sub.number, "departed", key(), node_id=world.dc.id)
        with pytest.raises(scans.IllegalScan):
            scans.record_scan(session, world.agent, sub.number, "collected", key(), node_id=world.point.id)
        assert sub.status == S.HANDED_IN and count(session, Scan) == 1

    def test_only_the_node_s_staff_scan_there(self, session, market, gateway, world, clock, make_user):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        for stranger in (world.dc_staff, world.county_staff_sd, market.buyer, make_user(Role.ADMIN)):
            with pytest.raises(Forbidden):
                scans.record_scan(session, stranger, sub.number, "departed", key(), node_id=world.point.id)
        with pytest.raises(NotFound):
            scans.record_scan(
                session, world.agent, "NO-SUCH-LABEL", "departed", key(), node_id=world.point.id
            )
        assert sub.status == S.HANDED_IN and count(session, Scan) == 1

    def test_an_exception_is_recorded_and_moves_nothing(self, session, market, gateway, world, clock):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        shipment = scans.shipment_of(session, sub)  # made by the intake
        assert shipment is not None
        result = scans.record_scan(
            session, world.agent, sub.number, "exception", key(), node_id=world.point.id, note="外箱压坏"
        )
        assert result.applied and result.scan.note == "外箱压坏"
        assert shipment.status == ShipmentStatus.AT_ORIGIN and sub.status == S.HANDED_IN
        stored = session.scalars(select(Scan).where(Scan.shipment_id == shipment.id)).all()
        assert [s.kind for s in stored] == [ScanKind.COLLECTED, ScanKind.EXCEPTION]


class TestTheParcelsJourney:
    def test_a_proxy_order_of_goods_comes_down_to_the_point_and_is_collected_with_its_code(
        self, session, market, gateway, world, clock, pickup_keys
    ):
        from services import parcels, proxy, villagers
        from services.villagers import VillagerInput
        from tests.factories import pickup_code_of

        villager = villagers.register_villager(
            session,
            world.agent,
            VillagerInput(name="李阿公", village_code=world.point.division_code),
            idempotency_key=key(),
        )
        fertilizer = market.product("复合肥")
        order = proxy.place(
            session, gateway, world.agent, villager.id, "cash", key(), SETTINGS, items={fertilizer.id: 1}
        ).order
        (sub,) = order.sub_orders
        states.apply(session, sub, S.ACCEPTED, party=Party.SELLER, actor=market.shop.merchant)
        session.commit()
        receive(session, gateway, sub, by=world.county_staff_sd)  # at the merchant's county center
        shipment = scans.shipment_of(session, sub)
        assert shipment is not None and shipment.flow == Flow.LAST_KM
        assert [leg.to_node_id for leg in shipment.legs] == [
            world.dc_fs.id,
            world.dc.id,
            world.center.id,
            world.point.id,
        ]
        hops = [
            (world.county_staff_sd, world.center_sd, world.dc_fs),
            (world.dc_staff_fs, world.dc_fs, world.dc),
            (world.dc_staff, world.dc, world.center),
        ]
        for (sender, here, there), receiver in zip(
            hops, [world.dc_staff_fs, world.dc_staff, world.county_staff], strict=True
        ):
            clock.advance(timedelta(hours=5))
            scans.record_scan(session, sender, sub.number, "departed", key(), node_id=here.id)
            clock.advance(timedelta(hours=5))
            scans.record_scan(session, receiver, sub.number, "arrived", key(), node_id=there.id)
        scans.record_scan(session, world.county_staff, sub.number, "departed", key(), node_id=world.center.id)
        assert sub.status == S.IN_TRANSIT
        # The agent's "arrived" on the parcels page is the last leg's arrival scan.
        parcels.mark_arrived(session, world.agent, sub.number, key())
        assert sub.status == S.READY_FOR_PICKUP and shipment.status == ShipmentStatus.READY
        code = pickup_code_of(session, order, pickup_keys)
        parcels.hand_over(
            session, world.agent, sub.number, parcels.HandoverInput(pickup_code=code), key(), pickup_keys
        )
        session.refresh(shipment)
        assert sub.status == S.COMPLETED and shipment.status == ShipmentStatus.DELIVERED
        assert [s.kind for s in scans.timeline(session, shipment)][-2:] == [
            ScanKind.ARRIVED,
            ScanKind.DELIVERED,
        ]

    def test_an_uncollected_parcel_goes_back_the_way_it_came_and_moves_only_itself(
        self, session, market, gateway, world, clock
    ):
        from services import parcels, proxy, villagers
        from services.villagers import VillagerInput
        from tests.factories import carry

        villager = villagers.register_villager(
            session,
            world.agent,
            VillagerInput(name="李阿公", village_code=world.point.division_code),
            idempotency_key=key(),
        )
        order = proxy.place(
            session,
            gateway,
            world.agent,
            villager.id,
            "cash",
            key(),
            SETTINGS,
            items={market.product("复合肥").id: 1},
        ).order
        (sub,) = order.sub_orders
        states.apply(session, sub, S.ACCEPTED, party=Party.SELLER, actor=market.shop.merchant)
        session.commit()
        receive(session, gateway, sub, by=world.county_staff_sd)
        carry(session, sub)
        shipment = scans.shipment_of(session, sub)
        assert shipment is not None and sub.status == S.READY_FOR_PICKUP
        center_departure = session.scalar(
            select(Scan).where(
                Scan.shipment_id == shipment.id, Scan.node_id == world.center.id, Scan.kind == "departed"
            )
        )
        assert center_departure is not None
        clock.advance(timedelta(days=parcels.RETURN_DAYS, hours=1))
        report = parcels.flag_uncollected(session, gateway)
        session.refresh(shipment)
        assert report.returned == 1 and sub.status == S.REFUNDED
        assert shipment.status == ShipmentStatus.RETURNING and shipment.current_node_id == world.point.id
        back = [leg for leg in shipment.legs if leg.reverse]
        assert [(leg.from_node_id, leg.to_node_id) for leg in back] == [
            (world.point.id, world.center.id),
            (world.center.id, world.dc.id),
            (world.dc.id, world.dc_fs.id),
            (world.dc_fs.id, world.center_sd.id),
        ]
        assert shipment.eta_at == back[-1].planned_arrive_at and back[0].planned_depart_at > clock.now()
        # Once is enough: the job again adds no legs.
        parcels.flag_uncollected(session, gateway)
        assert len(shipment.legs) == 8

        # It leaves the point; at the county center, a departure is its next move again (it
        # left there once on its way down: that old scan re-sent is still that old scan).
        scans.record_scan(session, world.agent, sub.number, "departed", key(), node_id=world.point.id)
        scans.record_scan(session, world.county_staff, sub.number, "arrived", key(), node_id=world.center.id)
        assert shipment.status == ShipmentStatus.RETURNING and shipment.current_node_id == world.center.id
        again = scans.record_scan(
            session,
            world.county_staff,
            sub.number,
            "departed",
            center_departure.idempotency_key,
            node_id=world.center.id,
        )
        assert not again.applied and again.scan.id == center_departure.id
        onward = scans.record_scan(
            session, world.county_staff, sub.number, "departed", key(), node_id=world.center.id
        )
        assert onward.applied and onward.scan.leg_id == back[1].id
        carry(session, sub)
        session.refresh(shipment)
        assert shipment.status == ShipmentStatus.RETURNED and shipment.current_node_id == world.center_sd.id
        assert sub.status == S.REFUNDED  # the scans moved only the parcel
        with pytest.raises(scans.IllegalScan, match="nothing more to scan"):
            scans.record_scan(
                session, world.county_staff_sd, sub.number, "delivered", key(), node_id=world.center_sd.id
            )

    def test_the_staff_buttons_give_way_to_scans(self, session, market, gateway, world):
        from services.orders import manage

        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        assert S.IN_TRANSIT not in manage.offered_moves(session, world.agent, sub)
        with pytest.raises(states.IllegalTransition, match="scans"):
            manage.move(session, world.agent, sub.number, S.IN_TRANSIT)
        assert sub.status == S.HANDED_IN

    def test_without_a_network_around_it_the_parcel_has_no_shipment_and_moves_by_buttons(
        self, session, market, gateway, point, agent
    ):
        from services.orders import manage

        order = market.pay(market.place({"梅县蜜柚": 1}, SETTINGS), gateway)
        (sub,) = order.sub_orders
        states.apply(session, sub, S.ACCEPTED, party=Party.SELLER, actor=market.shop.meixian_farmer)
        session.commit()
        receive(session, gateway, sub, by=agent)
        assert scans.shipment_of(session, sub) is None
        manage.move(session, agent, sub.number, S.IN_TRANSIT)
        assert sub.status == S.IN_TRANSIT

    def test_handed_in_where_it_is_collected_it_is_ready_at_once(self, session, market, gateway, world):
        contact = AddressInput(recipient="陈阿婆", phone="13912340000")
        sub = handed_in(
            session,
            market,
            gateway,
            world,
            {"梅县蜜柚": 1},
            delivery="pickup",
            pickup_node_id=world.point.id,
            pickup_contact=contact,
            address=None,
        )
        shipment = scans.shipment_of(session, sub)
        assert shipment is not None and shipment.legs == [] and shipment.status == ShipmentStatus.READY
        assert sub.status == S.READY_FOR_PICKUP

    def test_a_lychee_order_travels_to_a_city_door_and_completes_a_week_after_its_delivered_scan(
        self, session, market, gateway, world, first_village, clock
    ):
        """The issue's "done when": village point → county center → DC → the buyer's door, every
        scan driving the order, which then completes by itself."""
        from services.jobs import complete_delivered

        market.shop.add("梅县糯米糍荔枝", "lychee-longan", 2800)
        sub = handed_in(
            session, market, gateway, world, {"梅县糯米糍荔枝": 1}, address=city_address(first_village)
        )
        assert sub.status == S.HANDED_IN
        shipment = scans.shipment_of(session, sub)
        assert shipment is not None
        staff = {
            world.point.id: world.agent,
            world.center.id: world.county_staff,
            world.dc.id: world.dc_staff,
        }
        staff[world.dc_fs.id] = world.dc_staff_fs
        assert [leg.from_node_id for leg in shipment.legs] == [
            world.point.id,
            world.center.id,
            world.dc.id,
            world.dc_fs.id,
        ]
        seen = []
        for leg in shipment.legs:
            scans.record_scan(
                session, staff[leg.from_node_id], sub.number, "departed", key(), node_id=leg.from_node_id
            )
            seen.append(sub.status)
            if leg.to_node_id is not None:
                scans.record_scan(
                    session, staff[leg.to_node_id], sub.number, "arrived", key(), node_id=leg.to_node_id
                )
                seen.append(sub.status)
        # The first departure made it in transit; leaving the last DC for the door, out for delivery.
        assert seen == [S.IN_TRANSIT] * 6 + [S.OUT_FOR_DELIVERY]
        clock.advance(timedelta(days=8))  # out for delivery a week, never delivered: it waits
        assert complete_delivered(session, days=7) == 0
        scans.record_scan(session, world.dc_staff_fs, sub.number, "delivered", key())
        clock.advance(timedelta(days=6, hours=23))
        assert complete_delivered(session, days=7) == 0
        clock.advance(timedelta(hours=2))
        assert complete_delivered(session, days=7) == 1
        session.refresh(sub)
        assert sub.status == S.COMPLETED
