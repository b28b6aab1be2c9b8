"""The distance-matrix edge: great-circle distances, the road factor and speed, the matrix's
shape, and choosing the implementation from settings."""

from __future__ import annotations

import pytest

from services.logistics.distance import (
    DEFAULT_ROAD_FACTOR,
    DistanceMatrix,
    HaversineMatrix,
    Point,
    build_distance_matrix,
    great_circle_m,
)

# City seats from seed/data/coordinates.csv.
GUANGZHOU = Point(lat=23.12911, lon=113.264385)
MEIZHOU = Point(lat=24.288578, lon=116.122523)
MEIXIAN = Point(lat=24.265926, lon=116.081656)
# The WGS-84 ellipsoidal (Vincenty) distance between the two seats above: 318.494 km.
GUANGZHOU_MEIZHOU_M = 318_494


class TestGreatCircle:
    def test_guangzhou_to_meizhou_is_within_one_percent_of_the_ellipsoidal_distance(self):
        assert great_circle_m(GUANGZHOU, MEIZHOU) == pytest.approx(GUANGZHOU_MEIZHOU_M, rel=0.01)

    def test_a_point_is_zero_metres_from_itself(self):
        assert great_circle_m(MEIZHOU, MEIZHOU) == 0

    def test_is_the_same_both_ways(self):
        assert great_circle_m(GUANGZHOU, MEIZHOU) == pytest.approx(great_circle_m(MEIZHOU, GUANGZHOU))

    def test_a_position_off_the_globe_is_refused(self):
        with pytest.raises(ValueError):
            Point(lat=124.3, lon=116.1)


class TestHaversineMatrix:
    def test_is_square_symmetric_with_a_zero_diagonal(self):
        points = [GUANGZHOU, MEIZHOU, MEIXIAN, Point(24.0, 115.8)]
        travel = HaversineMatrix().matrix(points)
        for matrix in (travel.metres, travel.seconds):
            assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)
            for i in range(4):
                assert matrix[i][i] == 0
                for j in range(4):
                    assert matrix[i][j] == matrix[j][i]
                    assert isinstance(matrix[i][j], int)

    def test_road_metres_are_the_great_circle_times_the_road_factor(self):
        travel = HaversineMatrix(road_factor=1.3).matrix([GUANGZHOU, MEIZHOU])
        assert travel.metres[0][1] == round(great_circle_m(GUANGZHOU, MEIZHOU) * 1.3)

    def test_seconds_follow_the_average_speed(self):
        travel = HaversineMatrix(road_factor=1.0, speed_kmh=36).matrix([GUANGZHOU, MEIZHOU])
        assert travel.seconds[0][1] == round(travel.metres[0][1] / 10)  # 36 km/h = 10 m/s

    def test_no_points_give_an_empty_matrix(self):
        assert len(HaversineMatrix().matrix([])) == 0

    @pytest.mark.parametrize(("factor", "speed"), [(0.9, 40), (1.3, 0), (1.3, -5)])
    def test_a_road_shorter_than_the_line_or_no_speed_is_refused(self, factor, speed):
        with pytest.raises(ValueError):
            HaversineMatrix(road_factor=factor, speed_kmh=speed)


class TestBuildDistanceMatrix:
    def test_haversine_with_the_rural_road_factor_is_the_default(self):
        built = build_distance_matrix({})
        assert isinstance(built, HaversineMatrix)
        assert built.road_factor == DEFAULT_ROAD_FACTOR == 1.3

    def test_settings_choose_road_factor_and_speed(self):
        built = build_distance_matrix(
            {"DISTANCE_MATRIX": "haversine", "ROAD_FACTOR": "1.45", "ROAD_SPEED_KMH": 30}
        )
        assert isinstance(built, HaversineMatrix)
        assert (built.road_factor, built.speed_kmh) == (1.45, 30.0)

    def test_an_unknown_provider_is_refused_by_name(self):
        with pytest.raises(ValueError, match="amap"):
            build_distance_matrix({"DISTANCE_MATRIX": "amap"})

    def test_any_object_with_a_matrix_method_fits_the_interface(self):
        def use(distances: DistanceMatrix) -> int:
            return distances.matrix([GUANGZHOU, MEIZHOU]).metres[0][1]

        assert use(HaversineMatrix(road_factor=1.0)) == round(great_circle_m(GUANGZHOU, MEIZHOU))
