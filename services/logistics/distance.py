"""The distance-matrix edge: metres and travel seconds between points, behind a Protocol.

Routing asks one question of the outside world: how far apart, and how long to drive, are these
points? `DistanceMatrix` is that question. `HaversineMatrix` answers it from coordinates alone
(great-circle distance times a road factor, at an average speed); a road-network provider (a
map vendor's distance-matrix API, an OSRM server on OpenStreetMap) answers it from real roads and
plugs in through `build_distance_matrix`, chosen by settings the way the payment gateway is.

One call returns both matrices because a road provider computes them together, in one request,
from the same roads: asking twice could mix two answers (traffic, a changed road graph).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# The IUGG mean Earth radius: the sphere that best fits the WGS-84 ellipsoid on average. Against
# the ellipsoidal distance the haversine error stays within about 0.5 %, far below the road factor's.
EARTH_RADIUS_M = 6_371_008.8

# Road distance over great-circle distance (the "circuity" or detour factor). Studies across
# countries find 1.2-1.4 on average (e.g. Ballou, Rahardja and Sakai 2002, "Selected country
# circuity factors for road travel distance estimation"). Rural Guangdong sits in the middle of
# that range: county and township trunk roads run fairly straight along the river valleys, while
# the last kilometres to a village wind through hills (Meizhou, Qingyuan, Shaoguan) and around
# fish ponds and paddies (the Pearl River Delta). 1.3 is the middle; a deployment measures its
# own from a few real trips and sets ROAD_FACTOR, or plugs in a road-network provider.
DEFAULT_ROAD_FACTOR = 1.3

# Average speed of a light truck over that mix of national roads, county roads and village lanes,
# stops at junctions and towns included.
DEFAULT_SPEED_KMH = 40.0


@dataclass(frozen=True)
class Point:
    """A position in WGS-84 degrees (what a phone's GPS and most Chinese map APIs return after
    conversion from GCJ-02)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise ValueError(f"not a position: lat {self.lat}, lon {self.lon}")


@dataclass(frozen=True)
class TravelMatrix:
    """Metres and driving seconds from each point to each point, in the order asked."""

    metres: tuple[tuple[int, ...], ...]
    seconds: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.metres)


class DistanceMatrix(Protocol):
    """How far apart, and how long to drive between, a list of points."""

    def matrix(self, points: Sequence[Point]) -> TravelMatrix:
        """The metres and seconds matrices over `points` (square, zero diagonal)."""
        ...


def great_circle_m(a: Point, b: Point) -> float:
    """The great-circle distance in metres (haversine formula, numerically stable for short
    distances, which village routes are made of)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class HaversineMatrix:
    """Distances from coordinates: great-circle metres times a road factor, driven at an average
    speed. Symmetric, zero on the diagonal, whole metres and seconds (rounded)."""

    def __init__(
        self, road_factor: float = DEFAULT_ROAD_FACTOR, speed_kmh: float = DEFAULT_SPEED_KMH
    ) -> None:
        if road_factor < 1.0:
            raise ValueError(f"a road is never shorter than the straight line: {road_factor}")
        if speed_kmh <= 0:
            raise ValueError(f"speed must be positive: {speed_kmh}")
        self.road_factor = road_factor
        self.speed_kmh = speed_kmh

    def matrix(self, points: Sequence[Point]) -> TravelMatrix:
        n = len(points)
        metres = [[0] * n for _ in range(n)]
        seconds = [[0] * n for _ in range(n)]
        metres_per_second = self.speed_kmh * 1000 / 3600
        for i in range(n):
            for j in range(i + 1, n):
                road = great_circle_m(points[i], points[j]) * self.road_factor
                metres[i][j] = metres[j][i] = round(road)
                seconds[i][j] = seconds[j][i] = round(road / metres_per_second)
        return TravelMatrix(
            metres=tuple(tuple(row) for row in metres),
            seconds=tuple(tuple(row) for row in seconds),
        )


def build_distance_matrix(settings: Mapping[str, Any]) -> DistanceMatrix:
    """The distance matrix DISTANCE_MATRIX names; "haversine" (the default) uses ROAD_FACTOR
    and ROAD_SPEED_KMH."""
    name = settings.get("DISTANCE_MATRIX", "haversine")
    if name == "haversine":
        return HaversineMatrix(
            road_factor=float(settings.get("ROAD_FACTOR", DEFAULT_ROAD_FACTOR)),
            speed_kmh=float(settings.get("ROAD_SPEED_KMH", DEFAULT_SPEED_KMH)),
        )
    raise ValueError(f"unknown DISTANCE_MATRIX {name!r}; only 'haversine' ships with the code")
