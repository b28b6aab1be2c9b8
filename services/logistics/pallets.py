"""Consolidation (issue 12, item 5): at a county center or a distribution center, the parcels
waiting for the same next hop go onto standard pallets (托盘标准化, GB/T 2934: 1200×1000 mm).

Rules.
* A pallet carries parcels of one next hop and one storage class. Chilled and frozen never share
  a pallet with ambient goods or with each other (0-4 °C against -18 °C): a refrigerated vehicle
  carries ambient pallets beside cold ones, so nothing is gained by mixing on the pallet itself,
  and a cold pallet must stay whole when it is moved into a cold store.
* Within PALLET_MAX_LOAD_KG and PALLET_VOLUME_L (a parcel's volume: loads.py). A parcel larger
  than a pallet on its own goes loose and is listed as such.
* Packing is first-fit decreasing, deterministic: the new parcels of each (next hop, class) group,
  heaviest first (then larger, then the older leg), each onto the first of the group's open
  pallets (oldest first) with room for both its weight and its volume, else onto a new pallet.
  FFD uses at most 11/9 OPT + 6/9 pallets for one dimension; with two, it stays close in
  practice for parcels this small against a pallet.

Idempotent: building again for the same node and day adds only the parcels not yet on a pallet
(a leg is on at most one pallet: a unique row), onto that day's open (built) pallets first. A
loaded pallet gets nothing more; a departed one (all its parcels have left: their legs are under
way) is never changed again. A pallet departs with its last parcel: that parcel's departure scan
marks it (`leg_departed`, from services/logistics/scans.py), and building again finds any other.
Building is for today (China's calendar day); each run commits once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    Leg,
    LegStatus,
    Node,
    NodeKind,
    Pallet,
    PalletParcel,
    PalletStatus,
    StorageClass,
    User,
    clock,
)
from services import authz
from services.authz import HubAction
from services.errors import Conflict, ValidationError
from services.i18n import _
from services.logistics import loads

# A standard 1200×1000 mm pallet (GB/T 2934-2007, the size China's 托盘标准化 programme
# promotes). Its rated dynamic load (on a moving vehicle, in racking) is 1 t for the common
# wooden and plastic ones; stacked no higher than 1.5 m above the deck so it passes a van's door
# and stays stable: 1.2 × 1.0 × 1.5 m = 1.8 m³.
PALLET_LENGTH_MM = 1200
PALLET_WIDTH_MM = 1000
PALLET_MAX_LOAD_KG = 1000
PALLET_STACK_HEIGHT_MM = 1500
PALLET_VOLUME_L = PALLET_LENGTH_MM * PALLET_WIDTH_MM * PALLET_STACK_HEIGHT_MM // 1_000_000  # 1800
PALLET_MAX_LOAD_G = PALLET_MAX_LOAD_KG * 1000

CLASS_ORDER = {StorageClass.AMBIENT: 0, StorageClass.CHILLED: 1, StorageClass.FROZEN: 2}


@dataclass
class BuildResult:
    added: int = 0  # parcels put on a pallet by this run
    new_pallets: int = 0
    loose: list[loads.Parcel] = field(default_factory=list)  # larger than a pallet
    departed: int = 0  # pallets found departed by this run


def _all_left(session: Session, pallet: Pallet) -> bool:
    """Whether every parcel on the pallet has left (its leg is under way or done)."""
    if not pallet.parcels:
        return False
    legs = [session.get(Leg, p.leg_id) for p in pallet.parcels]
    return all(leg is not None and leg.status != LegStatus.PLANNED for leg in legs)


def _refresh_statuses(session: Session, node: Node) -> int:
    """Pallets at `node` whose parcels have all left become departed; returns how many."""
    changed = 0
    open_pallets = session.scalars(
        select(Pallet).where(Pallet.node_id == node.id, Pallet.status != PalletStatus.DEPARTED)
    )
    for pallet in open_pallets:
        if _all_left(session, pallet):
            pallet.status = PalletStatus.DEPARTED
            changed += 1
    return changed


def leg_departed(session: Session, leg: Leg) -> Pallet | None:
    """A parcel's departure scan (services/logistics/scans.py): the pallet it is on becomes
    departed once its last parcel has left (built or loaded until then: a pallet may leave in
    part, and what stays is still on it). Written in the scan's transaction; the pallet it
    departed, else None."""
    pallet = session.scalar(
        select(Pallet)
        .join(PalletParcel, PalletParcel.pallet_id == Pallet.id)
        .where(PalletParcel.leg_id == leg.id, Pallet.status != PalletStatus.DEPARTED)
    )
    if pallet is None or not _all_left(session, pallet):
        return None
    pallet.status = PalletStatus.DEPARTED
    return pallet


def _code(node: Node, day: date, n: int) -> str:
    return f"P{node.id}-{day:%y%m%d}-{n:03d}"


def build_pallets(session: Session, user: User | None, node: Node, *, day: date | None = None) -> BuildResult:
    """Put today's new parcels at `node` onto pallets (see the module's docstring); commits."""
    authz.require_hub(HubAction.BUILD_PALLETS, user, node)
    today = clock.today()
    if day is not None and day != today:
        raise ValidationError(_("Pallets are built for today only."))
    # One builder at a time per node (PostgreSQL: a row lock; SQLite writes one at a time anyway).
    session.execute(select(Node.id).where(Node.id == node.id).with_for_update())
    result = BuildResult(departed=_refresh_statuses(session, node))

    parcels = waiting_loose(session, node)
    # Door deliveries leave from a DC only; a county center has none.
    if node.kind == NodeKind.COUNTY_CENTER:
        parcels = [p for p in parcels if p.leg.to_node_id is not None]

    groups: dict[tuple[int | None, StorageClass], list[loads.Parcel]] = {}
    for parcel in parcels:
        if parcel.weight_g > PALLET_MAX_LOAD_G or parcel.volume_l > PALLET_VOLUME_L:
            result.loose.append(parcel)
            continue
        groups.setdefault((parcel.leg.to_node_id, parcel.storage_class), []).append(parcel)

    count = session.scalar(
        select(func.count(Pallet.id)).where(Pallet.node_id == node.id, Pallet.day == today)
    )
    made = count or 0
    for (next_id, storage_class), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or 0, CLASS_ORDER[kv[0][1]])
    ):
        pallets = list(
            session.scalars(
                select(Pallet)
                .where(
                    Pallet.node_id == node.id,
                    Pallet.day == today,
                    Pallet.status == PalletStatus.BUILT,
                    Pallet.storage_class == storage_class,
                    Pallet.next_node_id.is_(None) if next_id is None else Pallet.next_node_id == next_id,
                )
                .order_by(Pallet.id)
            )
        )
        for parcel in sorted(members, key=lambda p: (-p.weight_g, -p.volume_l, p.leg.id)):
            target = next(
                (
                    pl
                    for pl in pallets
                    if pl.weight_g + parcel.weight_g <= PALLET_MAX_LOAD_G
                    and pl.volume_l + parcel.volume_l <= PALLET_VOLUME_L
                ),
                None,
            )
            if target is None:
                made += 1
                target = Pallet(
                    code=_code(node, today, made),
                    node_id=node.id,
                    next_node_id=next_id,
                    day=today,
                    storage_class=storage_class,
                    weight_g=0,
                    volume_l=0,
                )
                session.add(target)
                pallets.append(target)
                result.new_pallets += 1
            target.parcels.append(
                PalletParcel(
                    leg_id=parcel.leg.id,
                    shipment_id=parcel.shipment.id,
                    weight_g=parcel.weight_g,
                    volume_l=parcel.volume_l,
                )
            )
            target.weight_g += parcel.weight_g
            target.volume_l += parcel.volume_l
            result.added += 1
    try:
        session.commit()
    except IntegrityError:  # another builder got there first (the same leg, the same code)
        session.rollback()
        raise Conflict(_("Pallets were being built at the same time: build again.")) from None
    return result


def pallets_of(session: Session, user: User | None, node: Node, day: date) -> list[Pallet]:
    """The node's pallets built on `day` (and any older ones not departed yet)."""
    authz.require_hub(HubAction.VIEW, user, node)
    return list(
        session.scalars(
            select(Pallet)
            .where(
                Pallet.node_id == node.id,
                (Pallet.day == day) | ((Pallet.day < day) & (Pallet.status != PalletStatus.DEPARTED)),
            )
            .order_by(Pallet.day, Pallet.id)
        )
    )


def waiting_loose(session: Session, node: Node) -> list[loads.Parcel]:
    """Parcels waiting at the node that are on no pallet yet."""
    found = loads.waiting(session, at=[node.id])
    leg_ids = [p.leg.id for p in found]
    on_pallets = set(session.scalars(select(PalletParcel.leg_id).where(PalletParcel.leg_id.in_(leg_ids))))
    return [p for p in found if p.leg.id not in on_pallets]


def mark_loaded(session: Session, user: User | None, node: Node, code: str) -> Pallet:
    """A pallet's label scanned at the vehicle: built → loaded (again: unchanged); commits."""
    authz.require_hub(HubAction.BUILD_PALLETS, user, node)
    text = (code or "").strip().upper()
    if not text:
        raise ValidationError(_("Scan or type the pallet's code."), field_errors={"code": [_("Required.")]})
    pallet = session.scalar(select(Pallet).where(Pallet.code == text[:32], Pallet.node_id == node.id))
    if pallet is None:
        message = _("No pallet at this center has the code %(code)s.", code=text[:32])
        raise ValidationError(message, field_errors={"code": [message]})
    if pallet.status == PalletStatus.DEPARTED:
        raise Conflict(_("Pallet %(code)s has departed: it cannot change.", code=pallet.code))
    pallet.status = PalletStatus.LOADED
    session.commit()
    return pallet
