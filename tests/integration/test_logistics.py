"""The logistics network (issue 12): the route a parcel takes (services/logistics/network.py) and
the scans that move it leg by leg and drive its sub-order (services/logistics/scans.py), on both
databases.

The world: the market's 梅县 farmer at their home village point (with its agent), 梅县's county
center, the 顺德 merchant's county center, a distribution center in 梅州 serving 梅县 and one in
佛山 serving 顺德, each with its staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    Flow,
    LegStatus,
    Node,
    NodeKind,
    OrderStatus,
    Role,
    Scan,
    ScanKind,
    ShipmentStatus,
    SubOrder,
    User,
)
from services import places
from services.authz import Party
from services.errors import Forbidden, NotFound
from services.logistics import network, scans
from services.orders import checkout, states
from services.orders.addresses import AddressInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import MEIXIAN, count
from tests.factories import FOSHAN_SHUNDE, receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
MEIJIANG = "441402"  # 梅州市梅江区: the city's distribution center
ZENGCHENG = "440118"  # 广州市增城区: a city buyer


@dataclass
class World:
    point: Node
    agent: User
    center: Node  # 梅县
    center_sd: Node  # 顺德
    dc: Node  # 梅州
    dc_fs: Node  # 佛山
    county_staff: User
    county_staff_sd: User
    dc_staff: User
    dc_staff_fs: User


@pytest.fixture()
def world(session, admin, make_user, market, point, agent) -> World:  # type: ignore[no-untyped-def]
    def node(kind: NodeKind, code: str, name: str, served: tuple[str, ...] = ()) -> Node:
        data = {"division_code": code, "name": name}
        return places.create_node(session, admin, kind, data, served_county_codes=served)

    center = node(NodeKind.COUNTY_CENTER, MEIXIAN, "梅县区县域综合服务中心")
    center_sd = node(NodeKind.COUNTY_CENTER, FOSHAN_SHUNDE, "顺德区县域综合服务中心")
    dc = node(NodeKind.DISTRIBUTION_CENTER, MEIJIANG, "梅州城乡配送中心", (MEIXIAN,))
    dc_fs = node(NodeKind.DISTRIBUTION_CENTER, FOSHAN_SHUNDE, "佛山城乡配送中心", (FOSHAN_SHUNDE,))
    return World(
        point=point,
        agent=agent,
        center=center,
        center_sd=center_sd,
        dc=dc,
        dc_fs=dc_fs,
        county_staff=make_user(Role.COUNTY_STAFF, county_code=MEIXIAN, name="梅县中心"),
        county_staff_sd=make_user(Role.COUNTY_STAFF, county_code=FOSHAN_SHUNDE, name="顺德中心"),
        dc_staff=make_user(Role.DC_STAFF, node_id=dc.id, name="梅州配送"),
        dc_staff_fs=make_user(Role.DC_STAFF, node_id=dc_fs.id, name="佛山配送"),
    )


def city_address(first_village) -> AddressInput:  # type: ignore[no-untyped-def]
    return AddressInput(
        recipient="黄女士",
        phone="13912345678",
        division_code=first_village(ZENGCHENG).code,
        detail="荔景路1号",
    )


def handed_in(session, market, gateway, world: World, items: dict[str, int], **extra) -> SubOrder:  # type: ignore[no-untyped-def]
    """A paid order of the 梅县 farmer's goods, accepted and handed in at the farmer's point."""
    order = market.pay(market.place(items, SETTINGS, **extra), gateway)
    (sub,) = order.sub_orders
    states.apply(session, sub, S.ACCEPTED, party=Party.SELLER, actor=market.shop.meixian_farmer)
    session.commit()
    receive(session, gateway, sub, by=world.agent)
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


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
        shipment = scans.start(session, sub, world.point, world.agent, now=clock.now())
        session.commit()
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
        shipment = scans.start(session, sub, world.point, world.agent, now=clock.now())
        session.commit()
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
        scans.start(session, sub, world.point, world.agent, now=clock.now())
        session.commit()
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
        scans.start(session, sub, world.point, world.agent, now=clock.now())
        session.commit()
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
        shipment = scans.start(session, sub, world.point, world.agent, now=clock.now())
        session.commit()
        result = scans.record_scan(
            session, world.agent, sub.number, "exception", key(), node_id=world.point.id, note="外箱压坏"
        )
        assert result.applied and result.scan.note == "外箱压坏"
        assert shipment.status == ShipmentStatus.AT_ORIGIN and sub.status == S.HANDED_IN
        stored = session.scalars(select(Scan).where(Scan.shipment_id == shipment.id)).all()
        assert [s.kind for s in stored] == [ScanKind.COLLECTED, ScanKind.EXCEPTION]
