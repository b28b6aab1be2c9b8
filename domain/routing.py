"""Pallets and the day's vehicle routes at a county center or a distribution center (issue 12,
items 5-6).

A `Pallet` is a standard 1200×1000 mm pallet built at a node for one next hop and one storage
class (services/logistics/pallets.py): the parcels on it are legs of shipments waiting at the
node (`PalletParcel`, one row per leg: a leg is on at most one pallet). Its status goes built →
loaded (its code scanned at the vehicle) → departed (every parcel on it has left); a departed
pallet is never changed.

A `RoutePlan` is one node's plan for one day (services/logistics/routes.py): a `RouteRun` per
vehicle (when it leaves and is back, how far it drives, what it carries out) and a `RouteStop` per
village point to visit, in order on its vehicle, or unplanned (no vehicle) with the reason. A
stop staff locked to a vehicle keeps its lock when the day is planned again.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum
from .catalog import StorageClass


class PalletStatus(enum.StrEnum):
    BUILT = "built"  # parcels on it, at the node
    LOADED = "loaded"  # on a vehicle (its label scanned at loading)
    DEPARTED = "departed"  # every parcel on it has left the node: never changed again


class Pallet(Base):
    __tablename__ = "pallets"
    __table_args__ = (
        CheckConstraint("weight_g >= 0", name="weight_nonnegative"),
        CheckConstraint("volume_l >= 0", name="volume_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # printed on its label
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    # The next hop of every parcel on it; None: the door (a DC's city deliveries).
    next_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), default=None)
    day: Mapped[date] = mapped_column(Date, index=True)  # China's calendar day it was built
    storage_class: Mapped[StorageClass] = mapped_column(str_enum(StorageClass, 16))
    status: Mapped[PalletStatus] = mapped_column(str_enum(PalletStatus, 16), default=PalletStatus.BUILT)
    weight_g: Mapped[int] = mapped_column(default=0)
    volume_l: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    node = relationship("Node", foreign_keys=[node_id], lazy="joined")
    next_node = relationship("Node", foreign_keys=[next_node_id], lazy="joined")
    parcels: Mapped[list[PalletParcel]] = relationship(
        back_populates="pallet", order_by="PalletParcel.id", cascade="all, delete-orphan", lazy="selectin"
    )


class PalletParcel(Base):
    __tablename__ = "pallet_parcels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pallet_id: Mapped[int] = mapped_column(ForeignKey("pallets.id", ondelete="CASCADE"), index=True)
    leg_id: Mapped[int] = mapped_column(ForeignKey("legs.id", ondelete="CASCADE"), unique=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    weight_g: Mapped[int]
    volume_l: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    pallet: Mapped[Pallet] = relationship(back_populates="parcels")
    shipment = relationship("Shipment", lazy="joined")


class RoutePlan(Base):
    __tablename__ = "route_plans"
    __table_args__ = (UniqueConstraint("node_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    solver: Mapped[str] = mapped_column(String(32), default="")
    distance_m: Mapped[int] = mapped_column(default=0)
    solve_ms: Mapped[int] = mapped_column(default=0)
    planned_at: Mapped[datetime] = mapped_column(default=clock.now)
    planned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)

    runs: Mapped[list[RouteRun]] = relationship(
        back_populates="plan", order_by="RouteRun.id", cascade="all, delete-orphan", lazy="selectin"
    )
    stops: Mapped[list[RouteStop]] = relationship(
        back_populates="plan", order_by="RouteStop.id", cascade="all, delete-orphan", lazy="selectin"
    )


class RouteRun(Base):
    """One vehicle's run in a plan (empty runs are kept: the vehicle stays home)."""

    __tablename__ = "route_runs"
    __table_args__ = (UniqueConstraint("plan_id", "vehicle_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("route_plans.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    depart_at: Mapped[datetime | None] = mapped_column(default=None)
    return_at: Mapped[datetime | None] = mapped_column(default=None)
    distance_m: Mapped[int] = mapped_column(default=0)
    load_out_g: Mapped[int] = mapped_column(default=0)
    load_out_cm3: Mapped[int] = mapped_column(default=0)

    plan: Mapped[RoutePlan] = relationship(back_populates="runs")
    vehicle = relationship("Vehicle", lazy="joined")


class RouteStop(Base):
    """A village point in a plan: on a vehicle at position `seq` with its planned times and the
    load on board after it, or unplanned (`vehicle_id` None) with `reason`."""

    __tablename__ = "route_stops"
    __table_args__ = (UniqueConstraint("plan_id", "node_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("route_plans.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"), default=None)
    locked_vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"), default=None)
    seq: Mapped[int] = mapped_column(default=0)
    arrive_at: Mapped[datetime | None] = mapped_column(default=None)
    depart_at: Mapped[datetime | None] = mapped_column(default=None)
    drop_g: Mapped[int] = mapped_column(default=0)
    drop_l: Mapped[int] = mapped_column(default=0)
    pickup_g: Mapped[int] = mapped_column(default=0)
    pickup_l: Mapped[int] = mapped_column(default=0)
    drop_parcels: Mapped[int] = mapped_column(default=0)
    pickup_parcels: Mapped[int] = mapped_column(default=0)
    load_g: Mapped[int] = mapped_column(default=0)  # on board after the stop
    load_cm3: Mapped[int] = mapped_column(default=0)
    cold: Mapped[bool] = mapped_column(default=False)
    hours: Mapped[str] = mapped_column(String(16), default="")  # the window planned, "08:00-20:00"
    reason: Mapped[str] = mapped_column(String(32), default="")  # why unplanned (a code)

    plan: Mapped[RoutePlan] = relationship(back_populates="stops")
    node = relationship("Node", lazy="joined")
