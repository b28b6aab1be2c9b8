"""The seed data files: real Guangdong codes and names, a sensible network, a login per role.
Read from the files only (no database)."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from domain import Role
from seed.loader import DATA_DIR, demo_logins, read_json
from services.validation import check_opening_hours, normalize_contact_phone, normalize_phone


@pytest.fixture(scope="module")
def divisions() -> dict[str, dict[str, str]]:
    with (DATA_DIR / "divisions.csv").open(encoding="utf-8") as fh:
        return {row["code"]: row for row in csv.DictReader(fh)}


RURAL_CITIES = {"4414", "4418", "4408", "4416"}  # 梅州 清远 湛江 河源


class TestNetworkFiles:
    def test_village_points_stand_in_real_rural_villages_of_four_cities(self, divisions):
        points = read_json("village_points.json")
        assert len(points) >= 20
        assert len({p["village_code"] for p in points}) == len(points)
        for p in points:
            village = divisions[p["village_code"]]
            assert village["level"] == "village"
            assert village["name"] == p["village"]
            assert village["name"].endswith(("村委会", "村民委员会"))  # rural villages, not 居委会
        assert {p["village_code"][:4] for p in points} == RURAL_CITIES

    def test_each_county_with_points_has_a_county_center(self, divisions):
        centers = read_json("county_centers.json")
        assert len(centers) >= 3
        for c in centers:
            assert divisions[c["county_code"]]["level"] == "county"
            assert divisions[c["county_code"]]["name"] == c["county"]
        point_counties = {p["village_code"][:6] for p in read_json("village_points.json")}
        assert point_counties == {c["county_code"] for c in centers}

    def test_distribution_centers_in_guangzhou_and_shenzhen_serve_the_point_counties(self, divisions):
        dcs = read_json("distribution_centers.json")
        assert sorted(dc["county_code"][:4] for dc in dcs) == ["4401", "4403"]
        served = [code for dc in dcs for code in dc["served_county_codes"]]
        assert all(divisions[code]["level"] == "county" for code in served)
        point_counties = {p["village_code"][:6] for p in read_json("village_points.json")}
        assert set(served) == point_counties

    def test_details_pass_the_services_rules(self):
        nodes = [
            *read_json("county_centers.json"),
            *read_json("village_points.json"),
            *read_json("distribution_centers.json"),
        ]
        for node in nodes:
            assert check_opening_hours(node["opening_hours"]) == node["opening_hours"]
            assert normalize_contact_phone(node["phone"]) == node["phone"]
            assert 0 < len(node["name"]) <= 80
        assert len({n["phone"] for n in nodes}) == len(nodes)


class TestDemoUsersFile:
    def test_every_role_has_a_user_with_a_demo_phone(self):
        users = read_json("demo_users.json")
        assert {u["role"] for u in users} == {r.value for r in Role}
        phones = [u["phone"] for u in users]
        assert len(set(phones)) == len(phones)
        assert all(normalize_phone(p) == p and p.startswith(("13800", "13900")) for p in phones)
        assert Counter(u["role"] for u in users)["agent"] >= 3

    def test_scopes_refer_to_nodes_in_the_data(self):
        points = {p["village_code"] for p in read_json("village_points.json")}
        dcs = {d["county_code"] for d in read_json("distribution_centers.json")}
        centers = {c["county_code"] for c in read_json("county_centers.json")}
        for u in read_json("demo_users.json"):
            if u["role"] == "agent":
                assert u["village_code"] in points
            elif u["role"] == "dc_staff":
                assert u["distribution_center_county"] in dcs
            elif u["role"] == "county_staff":
                assert u["county_code"] in centers

    def test_the_logins_listing_names_each_scope(self):
        lines = demo_logins()
        assert len(lines) == len(read_json("demo_users.json"))
        by_phone = {phone: (role, scope) for role, phone, scope in lines}
        assert by_phone["13800000001"] == ("admin", "-")
        assert by_phone["13800000011"] == ("county_staff", "梅州市梅县区")
        assert by_phone["13800000031"][1].startswith("广州白云城乡配送中心")
