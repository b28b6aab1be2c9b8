"""A hub's day on one page (issue 12, item 9): its vehicles, its pallets and the parcels on none,
and the day's route plan with each vehicle's stops, a map and what did not fit; for today, also
its exceptions (exceptions.node_exceptions) and its parcels in and out (desk.node_desk: here to
send on, on their way here, today's scans). It gathers what fleet.py, pallets.py, routes.py,
desk.py and exceptions.py define; the staff of the hub see it (authz.HUB_ACTIONS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import Node, Pallet, RoutePlan, RouteStop, Scan, User, Vehicle, clock
from services import authz
from services.authz import HubAction
from services.logistics import desk, exceptions, fleet, loads, pallets, routes


@dataclass(frozen=True)
class HubDay:
    hub: Node
    day: date
    vehicles: list[Vehicle]
    pallets: list[Pallet]
    loose: list[loads.Parcel]  # waiting at the hub, on no pallet
    plan: RoutePlan | None
    runs: list[routes.RunView]
    unplanned: list[RouteStop]
    map: routes.MapView | None
    labels: dict[int, str]  # shipment id → parcel label, for the pallets' contents
    board: desk.NodeDesk | None = None  # today only: parcels here, on their way, today's scans
    issues: exceptions.NodeExceptions | None = None  # today only: exceptions.node_exceptions

    @property
    def active_vehicles(self) -> list[Vehicle]:
        return [v for v in self.vehicles if v.active]

    scanned_today: dict[str, int] = field(default_factory=dict)  # today's scans at the hub by kind


def hub_day(session: Session, user: User | None, hub_id: int, day: date) -> HubDay:
    hub = fleet.hub(session, hub_id)
    authz.require_hub(HubAction.VIEW, user, hub)
    plan = routes.plan_for(session, hub, day)
    built = pallets.pallets_of(session, user, hub, day)
    labels = {p.shipment_id: p.shipment.sub_order.number for pallet in built for p in pallet.parcels}
    today = day == clock.today()
    counted = (
        session.execute(
            select(Scan.kind, func.count(Scan.id))
            .where(Scan.node_id == hub.id, Scan.scanned_at >= desk.day_start(clock.now()))
            .group_by(Scan.kind)
        ).all()
        if today
        else []
    )
    return HubDay(
        hub=hub,
        day=day,
        vehicles=fleet.vehicles(session, hub),
        pallets=built,
        loose=pallets.waiting_loose(session, hub),
        plan=plan,
        runs=routes.runs_of(plan) if plan else [],
        unplanned=routes.unplanned_of(plan) if plan else [],
        map=routes.map_of(hub, plan) if plan and plan.stops else None,
        labels=labels,
        board=desk.node_desk(session, user, hub.id) if today else None,
        issues=exceptions.node_exceptions(session, user, hub) if today else None,
        scanned_today={kind.value: n for kind, n in counted},
    )
