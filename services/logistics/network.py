"""The routing of parcels: which nodes a parcel passes, from where it is handed in to where its
buyer gets it. The one place these rules live (shipments are made from `route`).

The network is a tree with cross links at the top: each village point hangs under its county's
service center (`Node.county_center_id`, else the county's active center), each county under the
distribution center that serves it (`distribution_center_counties`; a county no DC lists is
served by the nearest active DC, by the county seat's coordinates). So a node's way *up* is

    village point → county service center → distribution center

and a parcel goes up from its origin until it reaches a node on the destination's way up, then
down to the destination (a DC to another DC is one trunk leg between cities):

* first kilometer: farmer's village point → county center → DC → buyer's door (home delivery),
  or → down to the pickup node (a DC, a county center, or a village point through its county);
* last kilometer: the merchant's goods, handed in at their county's center → the merchant's DC →
  the village's DC (when another) → county center → village point;
* within one county: village point → county center → another point of the county; handed in and
  collected at the same point: no leg at all.

The origin is the intake's node (services/intake.py: the seller's home point, else their county's
center). A home delivery's last leg starts at the DC serving the address's county.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    DeliveryMethod,
    Division,
    Flow,
    Node,
    NodeKind,
    Order,
    distribution_center_counties,
)
from services.errors import Conflict
from services.i18n import _
from services.logistics.distance import Point, great_circle_m


class NoRoute(Conflict):
    """The network has no node to carry the parcel (a county with no center, no DC at all)."""

    code = "no_route"


@dataclass(frozen=True)
class Route:
    nodes: tuple[Node, ...]  # in the order the parcel passes them, the origin first
    to_door: bool  # a last leg from nodes[-1] to the order's address
    flow: Flow

    @property
    def hops(self) -> list[tuple[Node, Node | None]]:
        """The legs as (from, to); to None: the buyer's door."""
        pairs: list[tuple[Node, Node | None]] = list(zip(self.nodes, self.nodes[1:], strict=False))
        if self.to_door:
            pairs.append((self.nodes[-1], None))
        return pairs


def county_center(session: Session, county_code: str) -> Node | None:
    return session.scalar(
        select(Node)
        .where(Node.kind == NodeKind.COUNTY_CENTER, Node.county_code == county_code, Node.active.is_(True))
        .order_by(Node.id)
    )


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between (lat, lon) pairs: enough to pick the nearest DC."""
    return great_circle_m(Point(*a), Point(*b)) / 1000


def distribution_center(session: Session, county_code: str) -> Node:
    """The DC that serves a county: the one that lists it (the lowest id if several), else the
    nearest active DC to the county seat; NoRoute if the network has none."""
    listed = session.scalar(
        select(Node)
        .join(distribution_center_counties, distribution_center_counties.c.node_id == Node.id)
        .where(
            distribution_center_counties.c.county_code == county_code,
            Node.kind == NodeKind.DISTRIBUTION_CENTER,
            Node.active.is_(True),
        )
        .order_by(Node.id)
    )
    if listed is not None:
        return listed
    dcs = list(
        session.scalars(
            select(Node)
            .where(Node.kind == NodeKind.DISTRIBUTION_CENTER, Node.active.is_(True))
            .order_by(Node.id)
        )
    )
    if not dcs:
        raise NoRoute(_("No distribution center is open yet: parcels cannot leave the county."))
    county = session.get(Division, county_code)
    if county is None or county.latitude is None or county.longitude is None:
        return dcs[0]
    here = (county.latitude, county.longitude)

    def away(dc: Node) -> float:
        if dc.latitude is None or dc.longitude is None:
            return math.inf
        return distance_km(here, (dc.latitude, dc.longitude))

    return min(dcs, key=lambda dc: (away(dc), dc.id))


def way_up(session: Session, node: Node) -> list[Node]:
    """The node, then the nodes above it up to its DC."""
    chain = [node]
    if node.kind == NodeKind.DISTRIBUTION_CENTER:
        return chain
    if node.kind == NodeKind.VILLAGE_POINT:
        center = (
            session.get(Node, node.county_center_id) if node.county_center_id else None
        ) or county_center(session, node.county_code)
        if center is None:
            raise NoRoute(_("The county of %(name)s has no service center open.", name=node.name))
        chain.append(center)
    chain.append(distribution_center(session, node.county_code))
    return chain


def flow_of(origin: Node, to_county: str, *, farm: bool, to_point: bool) -> Flow:
    """Farm produce leaving its county is the first kilometer; goods for a village point from
    another county the last; anything else (within a county, a merchant's goods to a city) is
    neither."""
    if to_county == origin.county_code:
        return Flow.OTHER
    if farm:
        return Flow.FIRST_KM
    return Flow.LAST_KM if to_point else Flow.OTHER


def route(session: Session, origin: Node, order: Order, *, farm: bool) -> Route:
    """The nodes a parcel of `order` handed in at `origin` passes (see the module's docstring);
    `farm`: the seller grows it (a farmer or a cooperative), not a merchant."""
    if order.delivery_method == DeliveryMethod.PICKUP and order.pickup_node_id is not None:
        destination = session.get(Node, order.pickup_node_id)
        if destination is None:  # a foreign key: never, but say so rather than guess
            raise NoRoute(_("The order's pickup point no longer exists."))
        down = list(reversed(way_up(session, destination)))  # DC → … → destination
        door_county = ""
    else:
        destination = None
        door_county = order.division_code[:6]
        down = [distribution_center(session, door_county)]
    up = way_up(session, origin)
    ids = [n.id for n in down]
    for i, node in enumerate(up):
        if node.id in ids:
            nodes = up[:i] + down[ids.index(node.id) :]
            break
    else:  # two cities' DCs: a trunk leg between them
        nodes = up + down
    return Route(
        nodes=tuple(nodes),
        to_door=destination is None,
        flow=flow_of(
            origin,
            destination.county_code if destination is not None else door_county,
            farm=farm,
            to_point=destination is not None and destination.kind == NodeKind.VILLAGE_POINT,
        ),
    )
