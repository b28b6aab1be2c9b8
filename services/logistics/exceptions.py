"""What went wrong in the network, for the staff of a node (issue 12, item 9).

The flag-stuck-parcels job (`flag_stuck`, services/jobs.py) finds, each hour:

- parcels stuck at a node: waiting there (at their origin, at a node on the way, or at a node on
  their way back) STUCK_PARCEL_HOURS past their next leg's planned departure. A parcel READY at
  its pickup point is not stuck: it waits for its recipient (flag-uncollected-parcels reminds
  and returns);
- parcels late on a leg under way: departed, LATE_LEG_GRACE_HOURS past the leg's planned arrival.

Each is flagged once (`Shipment.flagged_at`) and told once to the staff who look after the node
(its county's staff, a DC's own staff: coldchain.staff_to_alert) through the notifications
outbox: a stuck parcel to the node it waits at, a late one to the node it goes to (the door: the
node it left). The parcel's next move clears the flag (scans.apply_scan, scans.send_back); if it
gets stuck again further on, it is flagged and told again (the message's key is the leg). A run
again changes nothing; its result counts what it flagged.

`node_exceptions` is a node's list for its staff (authz.works_at), read on the hub day page and
the scan page: the parcels flagged stuck there; the parcels late to leave that the job has not
flagged yet (their planned departure passed); parcels late on a leg that leaves from or goes to
the node (planned arrival passed, not arrived); the open temperature excursions of the node's
loggers (its cold store and its vehicles: coldchain.open_excursions, for staff with a cold-chain
standing there); and today's exception scans at the node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from domain import (
    Leg,
    LegStatus,
    Node,
    NotificationEvent,
    Scan,
    ScanKind,
    Shipment,
    ShipmentStatus,
    SubOrder,
    User,
    clock,
)
from services import authz, notify
from services.errors import Forbidden
from services.i18n import _
from services.logistics import coldchain, desk

DEFAULT_STUCK_AFTER = timedelta(hours=24)
DEFAULT_LATE_GRACE = timedelta(hours=2)
MAX_ROWS = 200  # of each kind on one page

# Waiting at a node for a leg out (READY: waiting for its recipient, not for a leg).
WAITING = (ShipmentStatus.AT_ORIGIN, ShipmentStatus.AT_NODE, ShipmentStatus.RETURNING)
UNDER_WAY = (ShipmentStatus.MOVING, ShipmentStatus.OUT_FOR_DELIVERY, ShipmentStatus.RETURNING)


def _local(at: datetime | None) -> str:
    return at.astimezone(clock.CHINA).strftime("%m-%d %H:%M") if at is not None else "-"


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(session.execute(select(Node.id, Node.name).where(Node.id.in_(wanted))).tuples().all())


def _tell(
    session: Session,
    node: Node | None,
    event: NotificationEvent,
    key: str,
    params: dict[str, Any],
    now: datetime,
) -> int:
    if node is None:
        return 0
    told = 0
    for user in coldchain.staff_to_alert(session, node):
        if notify.record_staff_alert(session, event, user, key, params, now=now) is not None:
            told += 1
    return told


def flag_stuck(
    session: Session,
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    late_grace: timedelta = DEFAULT_LATE_GRACE,
    now: datetime | None = None,
) -> dict[str, int]:
    """The flag-stuck-parcels job (see the module's docstring); commits. The sub-orders are
    locked as a scan locks them (PostgreSQL skips those a scan holds: the next run sees them), so
    a scan never clears a flag the job is setting."""
    now = now or clock.now()
    stuck_rows = session.execute(
        select(
            Shipment.id,
            Shipment.current_node_id,
            Leg.id,
            Leg.to_node_id,
            Leg.planned_depart_at,
            SubOrder.number,
        )
        .select_from(Shipment)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .join(
            Leg,
            (Leg.shipment_id == Shipment.id)
            & (Leg.from_node_id == Shipment.current_node_id)
            & (Leg.status == LegStatus.PLANNED),
        )
        .where(
            Shipment.status.in_(WAITING),
            Shipment.flagged_at.is_(None),
            Leg.planned_depart_at <= now - stuck_after,
        )
        .order_by(Shipment.id)
        .with_for_update(of=SubOrder, skip_locked=True)
    ).all()
    late_rows = session.execute(
        select(Shipment.id, Leg.id, Leg.from_node_id, Leg.to_node_id, Leg.planned_arrive_at, SubOrder.number)
        .select_from(Shipment)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .join(Leg, (Leg.shipment_id == Shipment.id) & (Leg.status == LegStatus.DEPARTED))
        .where(
            Shipment.status.in_(UNDER_WAY),
            Shipment.flagged_at.is_(None),
            Leg.planned_arrive_at <= now - late_grace,
        )
        .order_by(Shipment.id)
        .with_for_update(of=SubOrder, skip_locked=True)
    ).all()
    ids = sorted({r[0] for r in stuck_rows} | {r[0] for r in late_rows})
    if ids:
        session.execute(
            update(Shipment)
            .where(Shipment.id.in_(ids), Shipment.flagged_at.is_(None))
            .values(flagged_at=now)
            .execution_options(synchronize_session=False)
        )
    nodes = {
        n.id: n
        for n in session.scalars(
            select(Node).where(
                Node.id.in_(
                    sorted(
                        {r[1] for r in stuck_rows}
                        | {r[3] for r in stuck_rows if r[3]}
                        | {r[2] for r in late_rows}
                        | {r[3] for r in late_rows if r[3]}
                    )
                )
            )
        )
    }
    hours = f"{stuck_after.total_seconds() / 3600:g}"
    alerts = 0
    for shipment_id, at_id, leg_id, next_id, due, label in stuck_rows:
        here = nodes.get(at_id)
        params = {
            "label": label,
            "node": here.name if here else "",
            "next": nodes[next_id].name if next_id in nodes else "买家",
            "due": _local(due),
            "hours": hours,
        }
        alerts += _tell(session, here, NotificationEvent.PARCEL_STUCK, f"{shipment_id}:{leg_id}", params, now)
    for shipment_id, leg_id, from_id, to_id, due, label in late_rows:
        origin, to = nodes.get(from_id), nodes.get(to_id) if to_id else None
        params = {
            "label": label,
            "origin": origin.name if origin else "",
            "to": to.name if to is not None else "买家",
            "due": _local(due),
        }
        watcher = to if to is not None else origin  # the door: the node whose courier carries it
        alerts += _tell(session, watcher, NotificationEvent.LEG_LATE, f"{shipment_id}:{leg_id}", params, now)
    session.commit()
    return {"stuck": len(stuck_rows), "late": len(late_rows), "alerts": alerts}


# --- a node's exceptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelProblem:
    label: str
    from_name: str  # where the leg leaves from
    to_name: str | None  # where it goes ("": the buyer's door; None: nowhere planned)
    due: datetime | None  # the leg's planned departure (waiting) or arrival (under way)
    since: datetime | None  # arrived here (waiting) or left (under way)
    flagged_at: datetime | None  # when the job found it stuck


@dataclass(frozen=True)
class NodeExceptions:
    node: Node
    stuck: list[ParcelProblem]  # flagged by the job, waiting here
    late_to_leave: list[ParcelProblem]  # here, past the planned departure, not flagged yet
    late_on_the_way: list[ParcelProblem]  # under way from or to here, past the planned arrival
    excursions: list[coldchain.ExcursionView]  # open, of the node's cold store and vehicles
    exception_scans: list[desk.ScanRow]  # today, at the node
    links: frozenset[str]  # the labels whose sub-order page the viewer may open

    @property
    def count(self) -> int:
        return (
            len(self.stuck)
            + len(self.late_to_leave)
            + len(self.late_on_the_way)
            + len(self.excursions)
            + len(self.exception_scans)
        )


def _linkable(session: Session, user: User, subs: Iterable[SubOrder]) -> set[str]:
    """The labels whose sub-order page `user` may open as staff (services/orders/manage.py)."""
    from services.orders import manage

    return manage.staff_visible_numbers(session, user, [sub.id for sub in subs])


def node_exceptions(
    session: Session, user: User | None, node: Node, *, now: datetime | None = None
) -> NodeExceptions:
    """`node`'s exceptions (see the module's docstring) for those who work there; Forbidden
    for anyone else."""
    user = authz.require_user(user)
    if not authz.works_at(user, node):
        raise Forbidden(_("Only the staff of %(node)s see its exceptions.", node=node.name))
    now = now or clock.now()

    waiting = session.execute(
        select(Shipment, Leg, SubOrder)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .join(
            Leg,
            (Leg.shipment_id == Shipment.id)
            & (Leg.from_node_id == node.id)
            & (Leg.status == LegStatus.PLANNED),
        )
        .where(
            Shipment.current_node_id == node.id,
            Shipment.status.in_(WAITING),
            or_(Shipment.flagged_at.is_not(None), Leg.planned_depart_at < now),
        )
        .order_by(Leg.planned_depart_at, Shipment.id)
        .limit(2 * MAX_ROWS)
    ).all()
    moving = session.execute(
        select(Leg, Shipment.flagged_at, SubOrder)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(
            Leg.status == LegStatus.DEPARTED,
            or_(Leg.from_node_id == node.id, Leg.to_node_id == node.id),
            Leg.planned_arrive_at < now,
        )
        .order_by(Leg.planned_arrive_at, Leg.id)
        .limit(MAX_ROWS)
    ).all()
    names = _names(
        session,
        [leg.to_node_id for _s, leg, _sub in waiting]
        + [leg.from_node_id for leg, _f, _sub in moving]
        + [leg.to_node_id for leg, _f, _sub in moving],
    )

    def to_name(leg: Leg) -> str:
        return names.get(leg.to_node_id, "") if leg.to_node_id is not None else ""

    stuck: list[ParcelProblem] = []
    late_to_leave: list[ParcelProblem] = []
    for shipment, leg, sub in waiting:
        came = next((x for x in reversed(shipment.legs) if x.to_node_id == node.id and x.arrived_at), None)
        row = ParcelProblem(
            label=sub.number,
            from_name=node.name,
            to_name=to_name(leg),
            due=leg.planned_depart_at,
            since=came.arrived_at if came is not None else shipment.created_at,
            flagged_at=shipment.flagged_at,
        )
        (stuck if shipment.flagged_at is not None else late_to_leave).append(row)
    late_on_the_way = [
        ParcelProblem(
            label=sub.number,
            from_name=names.get(leg.from_node_id, ""),
            to_name=to_name(leg),
            due=leg.planned_arrive_at,
            since=leg.departed_at,
            flagged_at=flagged_at,
        )
        for leg, flagged_at, sub in moving
    ]

    standings = authz.cold_chain_standings(user, node) - {authz.ColdChainStanding.ADMIN}
    excursions = (
        [v for v in coldchain.open_excursions(session, user) if v.excursion.node_id == node.id]
        if standings
        else []
    )

    scans = session.execute(
        select(Scan, SubOrder)
        .join(Shipment, Shipment.id == Scan.shipment_id)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(
            Scan.node_id == node.id, Scan.kind == ScanKind.EXCEPTION, Scan.scanned_at >= desk.day_start(now)
        )
        .order_by(Scan.scanned_at.desc(), Scan.id.desc())
        .limit(MAX_ROWS)
    ).all()
    exception_scans = [desk.ScanRow(s.scanned_at, s.kind, sub.number, node.name, s.note) for s, sub in scans]
    subs = [sub for *_x, sub in waiting] + [sub for _leg, _f, sub in moving] + [sub for _s, sub in scans]
    return NodeExceptions(
        node=node,
        stuck=stuck[:MAX_ROWS],
        late_to_leave=late_to_leave[:MAX_ROWS],
        late_on_the_way=late_on_the_way,
        excursions=excursions,
        exception_scans=exception_scans,
        links=frozenset(_linkable(session, user, {sub.id: sub for sub in subs}.values())),
    )
