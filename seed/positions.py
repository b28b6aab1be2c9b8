"""Estimated positions for the demo village points (issue 12, item 4).

The shared data (/work/shared/data/guangdong/) has coordinates down to the counties only: towns
and villages have none, and we do not invent them. A point sitting on its county's centroid makes
every village of a county the same place (routes and ETAs within a county become meaningless),
so the seed spreads them out deterministically, from the real division codes alone:

1. The county's towns, in code order, are laid on a sunflower (Vogel) spiral around the county's
   centroid: town k of n at distance TOWN_RADIUS_KM × √((k + ½) / n) and bearing k × the golden
   angle. The spiral fills a disc evenly, so towns of one county never share a spot and a county
   with more towns fills the same disc more densely; 8 km keeps every town within a plausible
   distance of the county seat (Guangdong's counties are ~30-60 km across).
2. The town's villages, in code order, on a second spiral of VILLAGE_RADIUS_KM (1 km) around the
   town's spot.

The same divisions give the same positions on every run and every machine (no randomness, no
hash). They are not surveyed: a point keeps `coordinates_approximate` true ("位置为估计") until
its agent or county staff sets the real position on the point's form ("use my position").
"""

from __future__ import annotations

import math

TOWN_RADIUS_KM = 8.0
VILLAGE_RADIUS_KM = 1.0
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))  # ≈ 137.5°
KM_PER_DEGREE_LATITUDE = 111.32


def spiral(index: int, count: int, radius_km: float) -> tuple[float, float]:
    """(north, east) in km of place `index` of `count` on a Vogel spiral of `radius_km`."""
    if not 0 <= index < count:
        raise ValueError(f"index {index} not in 0..{count - 1}")
    r = radius_km * math.sqrt((index + 0.5) / count)
    theta = index * GOLDEN_ANGLE
    return r * math.cos(theta), r * math.sin(theta)


def moved(latitude: float, longitude: float, north_km: float, east_km: float) -> tuple[float, float]:
    """(latitude, longitude) a few km away (flat-earth offset: exact enough within 10 km)."""
    lat = latitude + north_km / KM_PER_DEGREE_LATITUDE
    lon = longitude + east_km / (KM_PER_DEGREE_LATITUDE * math.cos(math.radians(latitude)))
    return round(lat, 6), round(lon, 6)


def estimated_position(
    county: tuple[float, float], towns: list[str], villages: list[str], village_code: str
) -> tuple[float, float]:
    """(latitude, longitude) of a village: its town's spot on the county's spiral, then its own on
    the town's. `towns`: the county's town codes; `villages`: the town's village codes."""
    towns, villages = sorted(towns), sorted(villages)
    town = towns.index(village_code[:9])
    lat, lon = moved(*county, *spiral(town, len(towns), TOWN_RADIUS_KM))
    return moved(lat, lon, *spiral(villages.index(village_code), len(villages), VILLAGE_RADIUS_KM))
