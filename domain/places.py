"""The network of places: administrative divisions and the nodes goods move between.

Divisions are Guangdong's official statistical codes (city 4 digits, county 6, town 9,
village 12). Nodes are the places that hand goods over: county service centers, village
service points and distribution centers share one table (single-table inheritance) so that a
later shipment leg can point at any of them with one foreign key.
"""

from __future__ import annotations

import enum
from datetime import datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    Time,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base


class DivisionLevel(enum.StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"


CODE_LENGTH = {
    DivisionLevel.PROVINCE: 2,
    DivisionLevel.CITY: 4,
    DivisionLevel.COUNTY: 6,
    DivisionLevel.TOWN: 9,
    DivisionLevel.VILLAGE: 12,
}


class Division(Base):
    """An administrative division: province, prefecture-level city, county, town or village."""

    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[DivisionLevel] = mapped_column(
        Enum(DivisionLevel, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("divisions.code"), index=True, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    # True when the position is the county centroid standing in for a town or village.
    coordinates_approximate: Mapped[bool] = mapped_column(Boolean, default=False)

    parent: Mapped[Division | None] = relationship(remote_side=[code])

    @property
    def is_rural_village(self) -> bool:
        """村委会 / 村民委员会 are rural villages; 居委会 and 社区 are urban communities."""
        return self.level == DivisionLevel.VILLAGE and self.name.endswith(("村委会", "村民委员会"))

    @property
    def short_name(self) -> str:
        """The name as people say it: 长教村委会 → 长教村, 东门社区居委会 → 东门社区."""
        for suffix, spoken in (
            ("村民委员会", "村"),
            ("村委会", "村"),
            ("居民委员会", "社区"),
            ("居委会", "社区"),
        ):
            if self.name.endswith(suffix) and len(self.name) > len(suffix):
                stem = self.name[: -len(suffix)]
                return stem if stem.endswith(spoken) else stem + spoken
        return self.name

    def __repr__(self) -> str:
        return f"<Division {self.code} {self.name}>"


class NodeKind(enum.StrEnum):
    COUNTY_CENTER = "county_center"
    VILLAGE_POINT = "village_point"
    DISTRIBUTION_CENTER = "distribution_center"


distribution_center_counties = Table(
    "distribution_center_counties",
    Base.metadata,
    Column("node_id", ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("county_code", ForeignKey("divisions.code"), primary_key=True),
)


class Node(Base):
    """A place that holds or hands over goods."""

    __tablename__ = "nodes"
    __table_args__ = (
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude_range"),
        CheckConstraint("longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude_range"),
        CheckConstraint("length(delivery_days) BETWEEN 1 AND 7", name="delivery_days_given"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[NodeKind] = mapped_column(
        Enum(NodeKind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    name: Mapped[str] = mapped_column(String(80))
    # The division the node stands in: a village for a village point, a county (or district)
    # for a county center and a distribution center.
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    # The county the node belongs to, kept for scope checks (county staff see their county).
    county_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    opening_hours: Mapped[str] = mapped_column(String(64), default="")
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    coordinates_approximate: Mapped[bool] = mapped_column(Boolean, default=True)
    has_cold_storage: Mapped[bool] = mapped_column(Boolean, default=False)
    # The schedule (services/logistics/schedule.py), in China's time. The days the vehicle
    # comes (a village point) or the node's runs leave (a county center, a DC), as ISO weekday
    # digits in order ("1234567" every day, "135" Monday, Wednesday, Friday); orders placed by
    # `cutoff_time` go with the next of those days' runs; on a delivery day parcels can be
    # collected from `ready_time` (a village point, a DC's counter; a DC's door round arrives then).
    delivery_days: Mapped[str] = mapped_column(String(7), default="1234567", server_default="1234567")
    cutoff_time: Mapped[time] = mapped_column(Time, default=time(22, 0), server_default="22:00:00")
    ready_time: Mapped[time] = mapped_column(Time, default=time(14, 0), server_default="14:00:00")
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A village point is served by its county's service center.
    county_center_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)

    division: Mapped[Division] = relationship(foreign_keys=[division_code], lazy="joined")
    county: Mapped[Division] = relationship(foreign_keys=[county_code], lazy="joined")
    county_center: Mapped[Node | None] = relationship(remote_side=[id], foreign_keys=[county_center_id])
    served_counties: Mapped[list[Division]] = relationship(
        secondary=distribution_center_counties, order_by=Division.code
    )

    __mapper_args__ = {"polymorphic_on": "kind"}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.name}>"


class CountyServiceCenter(Node):
    """县域综合服务中心: hub, warehouse, training and quality control for one county."""

    __mapper_args__ = {"polymorphic_identity": NodeKind.COUNTY_CENTER}


class VillageServicePoint(Node):
    """村级服务点: run by an agent, usually inside a village shop."""

    __mapper_args__ = {"polymorphic_identity": NodeKind.VILLAGE_POINT}


class DistributionCenter(Node):
    """配送中心: city-side hub serving a set of counties."""

    __mapper_args__ = {"polymorphic_identity": NodeKind.DISTRIBUTION_CENTER}
