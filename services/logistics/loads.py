"""What a parcel weighs and takes up, and which parcels wait at a node for which next hop: the
facts pallets (pallets.py) and the day's routes (routes.py) are built from.

A parcel is a shipment's leg: the shipment waits at the leg's `from_node_id` while the leg is its
next one (the first not yet arrived) and still planned. Read from the Leg and Shipment tables only
(scans.py moves them; nothing here writes them).

Volume. A sub-order records its weight (`SubOrder.weight_g`, the intake's weighed weight) and its
storage class, not its size, and products carry no dimensions. So a parcel's volume is derived
from its weight with a bulk density per storage class, packaging and the air between items
included (a carton of pomelos is mostly fruit, a box of lychees with ice packs much less):

    ambient   0.40 kg/L  fruit and vegetables in cartons, rice and fertilizer in sacks average
                         out near 400 kg/m³ (a 1800 L pallet of cartons holds about 700 kg)
    chilled   0.30 kg/L  produce in foam boxes with ice packs: the insulation is bulky
    frozen    0.45 kg/L  frozen meat and fish are dense blocks, still in foam boxes

rounded up to whole litres, at least 1 L. A parcel with no weight recorded counts as 1 kg
(UNKNOWN_WEIGHT_G) rather than nothing, so it still takes a place on a pallet and a vehicle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from domain import Leg, LegStatus, Shipment, StorageClass, SubOrder

DENSITY_KG_PER_L: dict[StorageClass, float] = {
    StorageClass.AMBIENT: 0.40,
    StorageClass.CHILLED: 0.30,
    StorageClass.FROZEN: 0.45,
}
UNKNOWN_WEIGHT_G = 1_000
COLD = frozenset({StorageClass.CHILLED, StorageClass.FROZEN})


def parcel_weight_g(sub: SubOrder) -> int:
    return sub.weight_g if sub.weight_g > 0 else UNKNOWN_WEIGHT_G


def parcel_volume_l(weight_g: int, storage_class: StorageClass) -> int:
    """Whole litres, at least 1 (see the module's docstring for the densities)."""
    return max(1, math.ceil(weight_g / 1000 / DENSITY_KG_PER_L[storage_class]))


@dataclass(frozen=True)
class Parcel:
    """A parcel waiting at `leg.from_node_id` for `leg`."""

    leg: Leg
    shipment: Shipment
    sub: SubOrder
    weight_g: int
    volume_l: int

    @property
    def storage_class(self) -> StorageClass:
        return self.sub.storage_class

    @property
    def cold(self) -> bool:
        return self.sub.storage_class in COLD

    @property
    def label(self) -> str:
        return self.sub.number


def waiting(
    session: Session,
    *,
    at: Iterable[int] | None = None,
    to: Iterable[int] | None = None,
    to_door: bool = False,
) -> list[Parcel]:
    """Parcels waiting at a node of `at` whose next leg goes to a node of `to` (or, with
    `to_door`, to the door), in leg id order."""
    earlier = aliased(Leg)
    not_arrived_before = exists().where(
        and_(
            earlier.shipment_id == Leg.shipment_id,
            earlier.seq < Leg.seq,
            earlier.status != LegStatus.ARRIVED,
        )
    )
    query = (
        select(Leg, Shipment, SubOrder)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(
            Leg.status == LegStatus.PLANNED,
            Shipment.current_node_id == Leg.from_node_id,
            ~not_arrived_before,
        )
        .order_by(Leg.id)
    )
    if at is not None:
        query = query.where(Leg.from_node_id.in_(list(at)))
    if to_door:
        query = query.where(Leg.to_node_id.is_(None))
    elif to is not None:
        query = query.where(Leg.to_node_id.in_(list(to)))
    found = []
    for leg, shipment, sub in session.execute(query).all():
        weight = parcel_weight_g(sub)
        found.append(Parcel(leg, shipment, sub, weight, parcel_volume_l(weight, sub.storage_class)))
    return found
