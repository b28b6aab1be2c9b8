"""Rules of the places service that need no database: field validation, place paths, the village
picker's levels, and which of an agent's points serves a village."""

from __future__ import annotations

import math

import pytest

from domain import Division, DivisionLevel, NodeKind, VillageServicePoint
from services import places
from services.errors import ValidationError

ALL_FIELDS = places.OPERATOR_FIELDS | places.ADMIN_FIELDS


def errors_of(data: dict) -> dict:
    with pytest.raises(ValidationError) as exc:
        places._clean_fields(data, ALL_FIELDS)
    return exc.value.field_errors


class TestNodeFieldValidation:
    def test_good_input_is_cleaned(self):
        out = places._clean_fields(
            {
                "name": "  大黄村电商服务站 ",
                "phone": "0753 2781221",
                "opening_hours": "08：00—20：00",
                "has_cold_storage": "on",
                "active": False,
                "longitude": "116.08",
                "latitude": 24.27,
                "unknown": "ignored",
            },
            ALL_FIELDS,
        )
        assert out == {
            "name": "大黄村电商服务站",
            "phone": "07532781221",
            "opening_hours": "08:00-20:00",
            "has_cold_storage": True,
            "active": False,
            "longitude": 116.08,
            "latitude": 24.27,
        }

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"opening_hours": "8-20"}, "opening_hours"),
            ({"opening_hours": "20:00-08:00"}, "opening_hours"),
            ({"name": "<b>店</b>"}, "name"),
            ({"name": ""}, "name"),
            ({"name": ["list"]}, "name"),
            ({"description": "x" * 1001}, "description"),
            ({"address": "村\x00口"}, "address"),
            ({"phone": "555-1234"}, "phone"),
            ({"longitude": "121.5", "latitude": "31.2"}, "longitude"),  # Shanghai
            ({"longitude": "113.2", "latitude": "40"}, "latitude"),
            ({"longitude": "东经113", "latitude": "23"}, "longitude"),
            ({"longitude": math.inf, "latitude": "23"}, "longitude"),
            ({"longitude": True, "latitude": "23"}, "longitude"),
            ({"longitude": "113.2", "latitude": ""}, "latitude"),
            ({"latitude": "23.1"}, "longitude"),
            ({"has_cold_storage": "perhaps"}, "has_cold_storage"),
            ({"active": None}, "active"),
        ],
    )
    def test_bad_input_is_named_by_field(self, data, field):
        errors = errors_of(data)
        assert field in errors
        assert all(str(m) for m in errors[field])

    def test_fields_outside_the_allowed_set_are_ignored(self):
        assert places._clean_fields({"name": "<b>x</b>", "phone": "13800000000"}, places.OPERATOR_FIELDS) == {
            "phone": "13800000000"
        }

    def test_kinds_are_parsed_or_refused(self):
        assert places.parse_kind("village_point") == NodeKind.VILLAGE_POINT
        for bad in ("", None, "VILLAGE_POINT", "warehouse"):
            with pytest.raises(ValidationError):
                places.parse_kind(bad)


class TestPlacePaths:
    def test_the_chain_runs_from_the_city_down_and_leaves_the_province_out(self):
        province = Division(code="44", name="广东省", level=DivisionLevel.PROVINCE)
        city = Division(code="4414", name="梅州市", level=DivisionLevel.CITY, parent=province)
        county = Division(code="441403", name="梅县区", level=DivisionLevel.COUNTY, parent=city)
        town = Division(code="441403100", name="松口镇", level=DivisionLevel.TOWN, parent=county)
        village = Division(code="441403100221", name="大黄村委会", level=DivisionLevel.VILLAGE, parent=town)
        assert [d.name for d in places.division_chain(village)] == [
            "梅州市",
            "梅县区",
            "松口镇",
            "大黄村委会",
        ]
        assert places.division_chain(None) == []
        assert village.short_name == "大黄村"


class TestPickerSelection:
    def test_a_village_code_opens_every_level(self):
        assert places.picker_selection("441403100221") == {
            "city": "4414",
            "county": "441403",
            "town": "441403100",
            "village": "441403100221",
        }

    def test_nothing_chosen(self):
        assert places.picker_selection(None) == {}


def level(level: DivisionLevel, selected: str) -> places.PickerLevel:
    return places.PickerLevel(level=level, options=[], selected=selected)


class TestVillagePickerCode:
    def test_a_complete_choice_sends_the_village(self):
        picker = places.VillagePicker(
            levels=[
                level(DivisionLevel.CITY, "4414"),
                level(DivisionLevel.COUNTY, "441403"),
                level(DivisionLevel.TOWN, "441403100"),
                level(DivisionLevel.VILLAGE, "441403100221"),
            ],
            division=Division(code="441403100221", name="大黄村委会", level=DivisionLevel.VILLAGE),
        )
        assert picker.code == "441403100221"

    def test_a_half_made_choice_sends_its_deepest_level_and_none_sends_nothing(self):
        half = places.VillagePicker(
            levels=[level(DivisionLevel.CITY, "4414"), level(DivisionLevel.COUNTY, "")], division=None
        )
        assert half.code == "4414"
        assert places.VillagePicker(levels=[level(DivisionLevel.CITY, "")], division=None).code == ""


def group(point_id: int, town: str, villages: list[str]) -> places.EnrollmentVillages:
    point = VillageServicePoint(id=point_id, division_code=villages[0], county_code=town[:6])
    return places.EnrollmentVillages(
        point=point,
        villages=[Division(code=v, name=v, level=DivisionLevel.VILLAGE, parent_code=town) for v in villages],
    )


class TestEnrollmentPoint:
    def test_the_point_whose_town_the_village_is_in(self):
        groups = [
            group(1, "441403100", ["441403100221", "441403100222"]),
            group(2, "441403101", ["441403101201"]),
        ]
        assert places.enrollment_point(groups, "441403100222") == 1
        assert places.enrollment_point(groups, "441403101201") == 2

    def test_an_agent_with_one_point_acts_from_it_and_with_several_chooses(self):
        one = [group(7, "441403100", ["441403100221"])]
        assert places.enrollment_point(one, "441403999999") == 7
        several = [group(1, "441403100", ["441403100221"]), group(2, "441403101", ["441403101201"])]
        assert places.enrollment_point(several, "441403999999") is None
