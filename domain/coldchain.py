"""The cold chain (issue 12, item 7): temperature loggers, their readings, and the excursions
found in them, with the lots each excursion affected.

A `TemperatureLogger` (记录仪) is a device mounted either in a vehicle (`vehicle_id`: a
refrigerated van) or in a node's cold store (`vehicle_id` None); `node_id` is always the node
whose staff look after it: the cold store's node, or the vehicle's base. It watches one storage
class (chilled or frozen; an ambient logger records, and raises nothing). It authenticates to the
API with its own token: only the token's SHA-256 is kept (shown once, at registration).

A `TemperatureReading` is one measurement: the instant and the temperature in tenths of a degree
Celsius as an integer (-18.5 °C is -185), as services/logistics/readings.py parses it: integers
compare exactly and 0.1 °C is finer than a logger's accuracy. (logger, measured_at) is unique: a
re-sent batch is the same rows; that unique index also serves "readings of logger X between t1
and t2".

An `Excursion` is a run of readings outside the storage class's range longer than the grace
period (readings.find_excursions), copied with the logger's node and county so "open excursions
of county C" is one indexed query. It stays open until a member of staff acknowledges it.
`ExcursionLot` marks the lots that were in the vehicle or the store during it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum
from .catalog import StorageClass


class TemperatureLogger(Base):
    __tablename__ = "temperature_loggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)  # as readings.py normalises it
    # The node whose staff look after it: the cold store's node, or the vehicle's base.
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    # Mounted in this vehicle; None: in the node's cold store.
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"), index=True, default=None)
    storage_class: Mapped[StorageClass] = mapped_column(str_enum(StorageClass, 16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the API token
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_reading_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    node = relationship("Node", lazy="joined")
    vehicle = relationship("Vehicle", lazy="joined")


class TemperatureReading(Base):
    __tablename__ = "temperature_readings"
    __table_args__ = (
        UniqueConstraint("logger_id", "measured_at"),
        CheckConstraint("celsius_tenths BETWEEN -600 AND 800", name="celsius_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    logger_id: Mapped[int] = mapped_column(ForeignKey("temperature_loggers.id", ondelete="CASCADE"))
    measured_at: Mapped[datetime]
    celsius_tenths: Mapped[int] = mapped_column(SmallInteger)  # -18.5 °C is -185
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)  # when the server got it


class Excursion(Base):
    __tablename__ = "excursions"
    __table_args__ = (
        UniqueConstraint("logger_id", "started_at"),
        Index("ix_excursions_county_open", "county_code", "acknowledged_at", "started_at"),
        Index("ix_excursions_node_open", "node_id", "acknowledged_at", "started_at"),
        CheckConstraint("ended_at >= started_at", name="ordered"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    logger_id: Mapped[int] = mapped_column(ForeignKey("temperature_loggers.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))  # the logger's node
    county_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"))  # that node's county
    storage_class: Mapped[StorageClass] = mapped_column(str_enum(StorageClass, 16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    # A gap or the end of the data follows: it may have lasted longer than we know.
    open_ended: Mapped[bool] = mapped_column(Boolean, default=False)
    minutes: Mapped[int]
    readings: Mapped[int]
    min_tenths: Mapped[int] = mapped_column(SmallInteger)
    max_tenths: Mapped[int] = mapped_column(SmallInteger)
    worst_tenths: Mapped[int] = mapped_column(SmallInteger)  # the reading farthest outside the range
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    logger: Mapped[TemperatureLogger] = relationship(lazy="joined")
    acknowledged_by = relationship("User", lazy="joined")


class ExcursionLot(Base):
    """A lot that was in the logger's vehicle or store during the excursion."""

    __tablename__ = "excursion_lots"

    excursion_id: Mapped[int] = mapped_column(
        ForeignKey("excursions.id", ondelete="CASCADE"), primary_key=True
    )
    lot_id: Mapped[int] = mapped_column(
        ForeignKey("lots.id", ondelete="CASCADE"), primary_key=True, index=True
    )
