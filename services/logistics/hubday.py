"""A hub's day on one page (issue 12, item 9): its vehicles, its pallets and the parcels on none,
and the day's route plan with each vehicle's stops, a map and what did not fit. It gathers what
fleet.py, pallets.py and routes.py define; the staff of the hub see it (authz.HUB_ACTIONS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from domain import Node, Pallet, RoutePlan, RouteStop, User, Vehicle
from services import authz
from services.authz import HubAction
from services.logistics import fleet, loads, pallets, routes


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

    @property
    def active_vehicles(self) -> list[Vehicle]:
        return [v for v in self.vehicles if v.active]


def hub_day(session: Session, user: User | None, hub_id: int, day: date) -> HubDay:
    hub = fleet.hub(session, hub_id)
    authz.require_hub(HubAction.VIEW, user, hub)
    plan = routes.plan_for(session, hub, day)
    built = pallets.pallets_of(session, user, hub, day)
    labels = {p.shipment_id: p.shipment.sub_order.number for pallet in built for p in pallet.parcels}
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
    )
