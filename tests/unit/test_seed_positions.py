"""The demo points' estimated positions (seed/positions.py): deterministic, spread, near."""

from __future__ import annotations

import math

import pytest

from seed import positions

COUNTY = (24.265926, 116.081656)  # 梅县区


class TestSpiral:
    def test_places_stay_within_the_radius_and_apart(self):
        spots = [positions.spiral(k, 20, 8.0) for k in range(20)]
        assert all(math.hypot(*s) <= 8.0 for s in spots)
        assert min(math.dist(a, b) for i, a in enumerate(spots) for b in spots[i + 1 :]) > 1.0

    def test_an_index_outside_the_count_is_refused(self):
        with pytest.raises(ValueError, match="index"):
            positions.spiral(3, 3, 1.0)


class TestEstimatedPosition:
    def test_the_same_divisions_give_the_same_position(self):
        towns = ["441403100", "441403101", "441403110"]
        villages = ["441403100221", "441403100222"]
        a = positions.estimated_position(COUNTY, towns, villages, "441403100221")
        assert a == positions.estimated_position(COUNTY, list(reversed(towns)), villages, "441403100221")
        assert a != positions.estimated_position(COUNTY, towns, villages, "441403100222")
        north, east = (
            (a[0] - COUNTY[0]) * 111.32,
            (a[1] - COUNTY[1]) * 111.32 * math.cos(math.radians(COUNTY[0])),
        )
        assert math.hypot(north, east) <= positions.TOWN_RADIUS_KM + positions.VILLAGE_RADIUS_KM
