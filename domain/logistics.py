"""Shipments, their legs and the scans that move them (issue 12).

A `Shipment` is one sub-order's journey through the network, made when its goods are handed in
(the intake at the seller's point or county center: services/intake.py), along the route
services/logistics/network.py computes from the intake's node and the order's destination: a
pickup node, or the buyer's door. Its `Leg`s are the hops between consecutive nodes, in order
(`seq` from 1); a last leg with no `to_node_id` ends at the buyer's door. A returned parcel gets
reverse legs after the forward ones (`reverse`).

A `Scan` is one hand-over event at a node (collected, departed, arrived, delivered, exception) by
a member of that node's staff, with the time it happened and, from a phone, where. Scans are the
only thing that moves a shipment: its state and its legs' actual times follow them, and they
drive the sub-order's state machine (services/logistics/scans.py). A scan carries the client's
idempotency key: the same scan sent twice is one row.

A `Vehicle` belongs to a county center or a distribution center: its capacity (kg and litres:
volume is kept in whole litres, 1 m³ = 1000 L), whether it is refrigerated, and its shift. A leg
is carried by at most one vehicle (`Leg.vehicle_id`, set by the day's route plan or by the
departure scan), which is how cold-chain readings from a vehicle's logger reach the lots aboard.
"""

from __future__ import annotations

import enum
from datetime import datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum


class Flow(enum.StrEnum):
    """Which way the goods go (the indicators count the two kilometers apart)."""

    FIRST_KM = "first_km"  # farm produce from a village towards the cities
    LAST_KM = "last_km"  # goods towards a village point
    OTHER = "other"  # neither: within one county, or a merchant's goods to a city buyer


class ShipmentStatus(enum.StrEnum):
    AT_ORIGIN = "at_origin"  # handed in, not left yet
    MOVING = "moving"  # on a leg
    AT_NODE = "at_node"  # arrived at a node on the way, waiting for its next leg
    READY = "ready"  # arrived where the buyer collects it
    OUT_FOR_DELIVERY = "out_for_delivery"  # on the last leg to the door
    DELIVERED = "delivered"  # collected at the node, or delivered at the door
    RETURNING = "returning"  # on its reverse legs
    RETURNED = "returned"  # back at its origin


class LegStatus(enum.StrEnum):
    PLANNED = "planned"
    DEPARTED = "departed"
    ARRIVED = "arrived"


class ScanKind(enum.StrEnum):
    COLLECTED = "collected"  # taken in at the origin (the intake's hand-in)
    DEPARTED = "departed"  # left a node on a leg
    ARRIVED = "arrived"  # arrived at a node at the end of a leg
    DELIVERED = "delivered"  # handed to the recipient (at the door, or collected at the point)
    EXCEPTION = "exception"  # damaged, missing, refused: recorded, moves nothing


class VehicleKind(enum.StrEnum):
    AMBIENT = "ambient"  # 常温
    REFRIGERATED = "refrigerated"  # 冷藏车: carries chilled and frozen goods (and ambient)


class Vehicle(Base):
    """A vehicle based at a county center or a distribution center."""

    __tablename__ = "vehicles"
    __table_args__ = (
        CheckConstraint("capacity_kg > 0", name="capacity_kg_positive"),
        CheckConstraint("capacity_l > 0", name="capacity_l_positive"),
        CheckConstraint("shift_start < shift_end", name="shift_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    plate: Mapped[str] = mapped_column(String(16), unique=True)  # 车牌, e.g. 粤M·12345
    kind: Mapped[VehicleKind] = mapped_column(str_enum(VehicleKind, 16), default=VehicleKind.AMBIENT)
    capacity_kg: Mapped[int]
    capacity_l: Mapped[int]  # load volume in litres
    shift_start: Mapped[time] = mapped_column(Time)  # local time (Asia/Shanghai)
    shift_end: Mapped[time] = mapped_column(Time)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    node = relationship("Node", lazy="joined")

    @property
    def refrigerated(self) -> bool:
        return self.kind == VehicleKind.REFRIGERATED


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_order_id: Mapped[int] = mapped_column(ForeignKey("sub_orders.id", ondelete="CASCADE"), unique=True)
    flow: Mapped[Flow] = mapped_column(str_enum(Flow, 16))
    status: Mapped[ShipmentStatus] = mapped_column(
        str_enum(ShipmentStatus, 20), default=ShipmentStatus.AT_ORIGIN
    )
    origin_node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    # Where the buyer collects it; None: delivered to the order's address.
    destination_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    # The node it is at now (None while on a leg, or delivered at the door).
    current_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    eta_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the flag-stuck-parcels job found it stuck (waiting at a node too long past its next
    # leg's planned departure, or late on a leg under way); None again at its next move's scan
    # (services/logistics/exceptions.py).
    flagged_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    legs: Mapped[list[Leg]] = relationship(
        back_populates="shipment", order_by="Leg.seq", cascade="all, delete-orphan", lazy="selectin"
    )
    sub_order = relationship("SubOrder", lazy="joined")


class Leg(Base):
    __tablename__ = "legs"
    __table_args__ = (
        UniqueConstraint("shipment_id", "seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("to_node_id IS NULL OR from_node_id <> to_node_id", name="moves"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    from_node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    to_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    reverse: Mapped[bool] = mapped_column(default=False)
    status: Mapped[LegStatus] = mapped_column(str_enum(LegStatus, 16), default=LegStatus.PLANNED)
    planned_depart_at: Mapped[datetime | None] = mapped_column(default=None)
    planned_arrive_at: Mapped[datetime | None] = mapped_column(default=None)
    departed_at: Mapped[datetime | None] = mapped_column(default=None)
    arrived_at: Mapped[datetime | None] = mapped_column(default=None)
    # The vehicle carrying it (None: not assigned yet, or a walk to the door).
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"), index=True, default=None)

    shipment: Mapped[Shipment] = relationship(back_populates="legs")
    vehicle: Mapped[Vehicle | None] = relationship(lazy="joined")


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (
        Index("ix_scans_shipment_at", "shipment_id", "scanned_at"),
        Index("ix_scans_node_at", "node_id", "scanned_at"),
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude_range"),
        CheckConstraint("longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    leg_id: Mapped[int | None] = mapped_column(
        ForeignKey("legs.id", ondelete="CASCADE"), index=True, default=None
    )
    kind: Mapped[ScanKind] = mapped_column(str_enum(ScanKind, 16))
    # None only for a delivery at the buyer's door.
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), default=None)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    scanned_at: Mapped[datetime] = mapped_column(
        default=clock.now
    )  # when it happened (an offline scan: earlier)
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)  # when the server got it
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    note: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)

    shipment: Mapped[Shipment] = relationship()
    leg: Mapped[Leg | None] = relationship()
