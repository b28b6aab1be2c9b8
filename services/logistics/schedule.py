"""When a parcel leaves, arrives and can be collected: delivery days and cut-offs (issue 12, item 3).

Every node has a schedule (domain/places.py, in China's time): `delivery_days` (ISO weekdays),
`cutoff_time` and `ready_time`. A hop of a route (network.route) runs on the days of the node
that "owns" its vehicle run:

* a hop to or from a **village point** runs on the point's delivery days (the county center's
  vehicle comes then; it drops and collects on the same visit, item 6): down to the point it
  arrives at the point's ready time (collect from 14:00) and leaves the center the travel time
  before; up from the point it leaves at the point's ready time and arrives the travel time later;
* a **trunk** hop from a county center or a DC (to a DC, or down to a county center) leaves on
  the departing node's days, at TRUNK_DEPARTURE from a center (20:00, the collection runs are
  back) or DC_TRUNK_DEPARTURE from a DC (23:00, the county trunks are in and sorted), and
  arrives the travel time later;
* the **door** round from a DC runs on the DC's days and reaches doors by the DC's ready time.

A parcel in hand at a node (after an arrival, or handed in at the intake) takes the first run
that leaves at least HANDLING after it is there. An *order* not yet handed in takes the first run
of a day after the one whose cut-off it beat: ordered by 22:00 on Thursday, it goes with Friday's
run (the seller hands it in on the day; the run's plan and manifest close at the cut-off). The
cut-off is the run-owning node's: a village point's own for a hop to or from it.

A parcel is ready for its buyer on arrival at a village point (the ready time) or at the door;
at a distribution center's counter from the DC's next ready time after its arrival. Handed in
where it is collected (no hop at all): ready at that node's ready time of the day after the cut-off.

Travel times are great-circle distances times the road factor at the average speed (the
haversine DistanceMatrix of distance.py); a node without coordinates counts UNKNOWN_KM, a door
round DOOR_KM. There are no public holidays in this calendar yet: a deployment that stops runs at
the Spring Festival would add a list of closed days here.

The planning is pure: times in, times out (aware UTC instants; days are China's). `estimate`
loads what it needs for a buyer's page (the seller's origin, the route) and plans from the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    Address,
    DeliveryMethod,
    Node,
    NodeKind,
    Order,
    Role,
    SellerKind,
    SellerProfile,
    User,
    clock,
)
from services import authz
from services.logistics import network
from services.logistics.distance import DEFAULT_ROAD_FACTOR, DEFAULT_SPEED_KMH, Point, great_circle_m

EVERY_DAY = "1234567"
DEFAULT_CUTOFF = time(22, 0)
DEFAULT_READY = time(14, 0)
# Trunks leave a county center in the evening, once its collection runs are back, and a DC at
# night, once the county trunks are in and sorted: overnight to the next DC or county center.
TRUNK_DEPARTURE = time(20, 0)
DC_TRUNK_DEPARTURE = time(23, 0)
HANDLING = timedelta(hours=1)  # unloading and sorting before a parcel can leave again
DOOR_KM = 15.0  # a city delivery round from the DC
UNKNOWN_KM = 100.0  # a node without coordinates: a generous guess
MAX_DAYS = 60  # searching a run beyond this means the days are empty: a data error


class NoRun(ValueError):
    """A node's schedule has no delivery day at all."""


@dataclass(frozen=True)
class Stop:
    """What the schedule needs of a node (or, with `node_id` None, of the buyer's door)."""

    node_id: int | None
    kind: NodeKind | None
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    days: str = EVERY_DAY
    cutoff: time = DEFAULT_CUTOFF
    ready: time = DEFAULT_READY

    @classmethod
    def of(cls, node: Node) -> Stop:
        return cls(
            node_id=node.id,
            kind=node.kind,
            name=node.name,
            latitude=node.latitude,
            longitude=node.longitude,
            days=node.delivery_days or EVERY_DAY,
            cutoff=node.cutoff_time or DEFAULT_CUTOFF,
            ready=node.ready_time or DEFAULT_READY,
        )

    @property
    def is_point(self) -> bool:
        return self.kind == NodeKind.VILLAGE_POINT


DOOR = Stop(node_id=None, kind=None, name="")


@dataclass(frozen=True)
class PlannedLeg:
    origin: Stop
    destination: Stop  # DOOR for the buyer's door
    depart_at: datetime
    arrive_at: datetime


@dataclass(frozen=True)
class Plan:
    legs: tuple[PlannedLeg, ...]
    ready_at: datetime  # when the buyer can collect it (or it is at the door)
    order_by: datetime | None  # ordered by then, it makes this plan (None: planned from a hand-in)
    destination: Stop


# --- the calendar --------------------------------------------------------------------------------


def at(day: date, moment: time) -> datetime:
    """The instant (UTC) of `moment` on `day` of China's calendar."""
    return datetime.combine(day, moment, tzinfo=clock.CHINA).astimezone(UTC)


def local_day(instant: datetime) -> date:
    return clock.local(instant).date()


def runs_on(days: str, day: date) -> bool:
    return str(day.isoweekday()) in days


def next_run_day(days: str, first: date) -> date:
    """The first day from `first` (itself included) the schedule runs on."""
    if not any(d in days for d in EVERY_DAY):
        raise NoRun(days)
    day = first
    while not runs_on(days, day):
        day += timedelta(days=1)
    return day


def order_day(ordered_at: datetime, cutoff: time) -> date:
    """The first day whose cut-off an order placed at `ordered_at` beats: today, or tomorrow when
    it comes after today's cut-off (at the cut-off itself it is still in time)."""
    today = local_day(ordered_at)
    return today if ordered_at <= at(today, cutoff) else today + timedelta(days=1)


# --- travel ----------------------------------------------------------------------------------------


def travel(a: Stop, b: Stop) -> timedelta:
    """Driving time between two stops: great-circle distance × road factor at the average speed."""
    if b.node_id is None:
        km = DOOR_KM
    elif None in (a.latitude, a.longitude, b.latitude, b.longitude):
        km = UNKNOWN_KM
    else:
        metres = great_circle_m(Point(a.latitude, a.longitude), Point(b.latitude, b.longitude))  # type: ignore[arg-type]
        km = metres / 1000
    minutes = km * DEFAULT_ROAD_FACTOR / DEFAULT_SPEED_KMH * 60
    return timedelta(minutes=max(1, round(minutes)))


# --- hops ----------------------------------------------------------------------------------------


def run_owner(a: Stop, b: Stop) -> Stop:
    """The node whose schedule a hop runs on: the village point at either end, else where it leaves."""
    if b.is_point:
        return b
    return a


def _run_of_day(a: Stop, b: Stop, day: date) -> tuple[datetime, datetime]:
    """(departure, arrival) of the hop's run on `day`."""
    hop = travel(a, b)
    if b.is_point or b.node_id is None:  # down to a point, or the door round: there by ready time
        arrive = at(day, (b if b.is_point else a).ready)
        return arrive - hop, arrive
    if a.is_point:  # collected at the point on the vehicle's visit
        depart = at(day, a.ready)
        return depart, depart + hop
    departs = DC_TRUNK_DEPARTURE if a.kind == NodeKind.DISTRIBUTION_CENTER else TRUNK_DEPARTURE
    depart = at(day, departs)
    return depart, depart + hop


def next_run(a: Stop, b: Stop, in_hand: datetime) -> tuple[datetime, datetime]:
    """The first run of hop a → b that leaves at least HANDLING after the parcel is at `a`."""
    earliest = in_hand + HANDLING
    days = run_owner(a, b).days
    day = next_run_day(days, local_day(earliest) - timedelta(days=1))
    for _ in range(MAX_DAYS):
        depart, arrive = _run_of_day(a, b, day)
        if depart >= earliest:
            return depart, arrive
        day = next_run_day(days, day + timedelta(days=1))
    raise NoRun(days)


def first_run_after_order(a: Stop, b: Stop, ordered_at: datetime) -> tuple[datetime, datetime, datetime]:
    """(departure, arrival, order-by) of the run an order placed at `ordered_at` goes with: the
    first run on a day after the day whose cut-off the order beat."""
    owner = run_owner(a, b)
    day = next_run_day(owner.days, order_day(ordered_at, owner.cutoff) + timedelta(days=1))
    depart, arrive = _run_of_day(a, b, day)
    return depart, arrive, at(day - timedelta(days=1), owner.cutoff)


def _ready(destination: Stop, arrive: datetime) -> datetime:
    """When the buyer can have it: at the door or a village point on arrival; at a DC's (or a
    center's) counter from its next ready time."""
    if destination.node_id is None or destination.is_point:
        return arrive
    day = local_day(arrive)
    ready = at(day, destination.ready)
    return ready if ready >= arrive else at(day + timedelta(days=1), destination.ready)


# --- plans ----------------------------------------------------------------------------------------


def plan(hops: Sequence[tuple[Stop, Stop]], *, origin: Stop, at_time: datetime, ordered: bool) -> Plan:
    """Departure and arrival of each hop, and when the buyer can collect.

    `ordered`: `at_time` is when the order is placed (the product page, checkout); otherwise the
    parcel is in hand at the origin from `at_time` (the intake)."""
    legs: list[PlannedLeg] = []
    order_by: datetime | None = None
    in_hand = at_time
    for i, (a, b) in enumerate(hops):
        if i == 0 and ordered:
            depart, arrive, order_by = first_run_after_order(a, b, at_time)
        else:
            depart, arrive = next_run(a, b, in_hand)
        legs.append(PlannedLeg(a, b, depart, arrive))
        in_hand = arrive
    if not legs:  # handed in where it is collected
        if ordered:
            day = order_day(at_time, origin.cutoff)
            order_by = at(day, origin.cutoff)
            ready = at(day + timedelta(days=1), origin.ready)
        else:
            ready = at_time
        return Plan(legs=(), ready_at=ready, order_by=order_by, destination=origin)
    destination = legs[-1].destination
    return Plan(
        legs=tuple(legs), ready_at=_ready(destination, in_hand), order_by=order_by, destination=destination
    )


def load_stops(hops: Sequence[tuple[Node, Node | None]]) -> list[tuple[Stop, Stop]]:
    """A route's hops (network.Route.hops) as stops: the nodes are loaded already, no query."""
    return [(Stop.of(a), Stop.of(b) if b is not None else DOOR) for a, b in hops]


# --- reading and writing a schedule ------------------------------------------------------------------

WEEKDAYS = tuple(range(1, 8))


def parse_days(raw: str | Sequence[int | str] | None) -> str:
    """ISO weekday digits in order, from "135", "1,3,5" or [1, 3, 5]; ValueError when empty or
    not weekdays."""
    if raw is None:
        raise ValueError("no day")
    items: list[str] = (
        list(raw.replace(",", "").replace(" ", "")) if isinstance(raw, str) else [str(x) for x in raw]
    )
    if not items or any(x not in EVERY_DAY or len(x) != 1 for x in items):
        raise ValueError(f"not weekdays: {raw!r}")
    return "".join(sorted(set(items)))


def parse_time(raw: str | time | None) -> time:
    """A time of day from "22:00" (or "8:30"); ValueError otherwise."""
    if isinstance(raw, time):
        return raw.replace(second=0, microsecond=0, tzinfo=None)
    text = str(raw or "").strip().replace("：", ":")
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2 or len(hours) > 2:
        raise ValueError(f"not a time: {raw!r}")
    return time(int(hours), int(minutes))  # ValueError beyond 23:59


# --- the estimate a buyer reads (the product page, checkout, the cart API) -----------------------------


@dataclass(frozen=True)
class Destination:
    """Where a buyer gets the goods: a pickup node, or a door in a division (a town or village)."""

    pickup_node: Node | None = None
    door_division_code: str | None = None


@dataclass(frozen=True)
class Estimate:
    ready_at: datetime  # collectable at the point (or at the door) from then
    order_by: datetime  # ordered by then, it is ready then
    place: str  # the pickup node's name; "" for the door
    to_door: bool


def origin_of(session: Session, profile: SellerProfile) -> Node | None:
    """Where the seller's goods come into the network (network.py's docstring): the seller's open
    home point, else their county's service center."""
    point = profile.home_point
    if point is not None and point.active:
        return point
    county = profile.county_code or profile.division_code[:6]
    return network.county_center(session, county)


def estimate(
    session: Session, seller_id: int, destination: Destination, *, now: datetime | None = None
) -> Estimate | None:
    """When goods of `seller_id` ordered now would be ready at `destination`; None when the
    network has no route for them (no center, no DC, a closed point) or nothing says where."""
    profile = session.get(SellerProfile, seller_id)
    if profile is None:
        return None
    node = destination.pickup_node
    if node is not None:
        if not node.active:
            return None
        # Only what network.route reads: a transient order, never added to the session.
        order = Order(
            delivery_method=DeliveryMethod.PICKUP, pickup_node_id=node.id, division_code=node.division_code
        )
    elif destination.door_division_code:
        order = Order(delivery_method=DeliveryMethod.HOME, division_code=destination.door_division_code)
    else:
        return None
    origin = origin_of(session, profile)
    if origin is None:
        return None
    try:
        found = network.route(session, origin, order, farm=profile.kind != SellerKind.MERCHANT)
        planned = plan(
            load_stops(found.hops), origin=Stop.of(origin), at_time=now or clock.now(), ordered=True
        )
    except (network.NoRoute, NoRun):
        return None
    assert planned.order_by is not None  # planned from an order
    return Estimate(
        ready_at=planned.ready_at,
        order_by=planned.order_by,
        place=node.name if node is not None else "",
        to_door=node is None,
    )


def buyer_destination(session: Session, user: User | None) -> Destination:
    """Where a buyer most likely gets their goods, for the product page: an agent's own point;
    else the pickup point of their last order collected at one; else their default address's
    door. Nothing for a visitor or a new buyer (the page then says nothing)."""
    if user is None:
        return Destination()
    points = sorted(authz.node_ids(user, Role.AGENT))
    if points:
        point = session.get(Node, points[0])
        if point is not None and point.active:
            return Destination(pickup_node=point)
    last = session.execute(
        select(Order.delivery_method, Order.pickup_node_id, Order.division_code)
        .where(Order.buyer_id == user.id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(1)
    ).first()
    if last is not None and last.delivery_method == DeliveryMethod.PICKUP and last.pickup_node_id:
        point = session.get(Node, last.pickup_node_id)
        if point is not None and point.active:
            return Destination(pickup_node=point)
    address = session.scalar(
        select(Address.division_code)
        .where(Address.user_id == user.id, Address.deleted_at.is_(None))
        .order_by(Address.is_default.desc(), Address.id.desc())
        .limit(1)
    )
    if address is not None:
        return Destination(door_division_code=address)
    if last is not None:
        return Destination(door_division_code=last.division_code)
    return Destination()
