"""The places API over HTTP: public reads, token-authenticated writes within scope, and JSON
errors {code, message, errors} for bad input (never a 500, nothing written)."""

from __future__ import annotations

import pytest

from domain import Node, NodeKind, Role
from tests.factories import (
    COUNTY_X,
    COUNTY_Y,
    SHENZHEN_LONGGANG,
    node_count,
    snapshot,
)


def assert_error(resp, status: int, code: str, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert field in body["errors"], body
        assert all(isinstance(m, str) and m for m in body["errors"][field])
    return body


class TestDivisions:
    def test_without_arguments_the_21_cities(self, client):
        resp = client.get("/api/v1/divisions")
        assert resp.status_code == 200
        cities = resp.get_json()
        assert len(cities) == 21 and {c["level"] for c in cities} == {"city"}
        assert {"code": "4414", "name": "梅州市"}.items() <= next(
            c for c in cities if c["code"] == "4414"
        ).items()

    def test_children_and_level_filters(self, client):
        towns = client.get(f"/api/v1/divisions?parent_code={COUNTY_Y}").get_json()
        assert towns and all(t["parent_code"] == COUNTY_Y and t["level"] == "town" for t in towns)
        counties = client.get("/api/v1/divisions?level=county").get_json()
        assert len(counties) == 124

    def test_one_division_with_its_path(self, client, first_village):
        village = first_village(COUNTY_X)
        body = client.get(f"/api/v1/divisions/{village.code}").get_json()
        assert body["name"] == village.name and body["level"] == "village"
        assert [p["code"] for p in body["path"]] == [
            village.code[:4],
            village.code[:6],
            village.code[:9],
            village.code,
        ]

    @pytest.mark.parametrize(
        ("query", "status", "code", "field"),
        [
            ("level=village", 422, "validation_error", "parent_code"),
            ("level=hamlet", 422, "validation_error", "level"),
            ("parent_code=44x", 422, "validation_error", "parent_code"),
            ("parent_code=449999", 404, "not_found", None),
        ],
    )
    def test_bad_queries_are_json_errors(self, client, query, status, code, field):
        assert_error(client.get(f"/api/v1/divisions?{query}"), status, code, field)

    @pytest.mark.parametrize("code", ["999999", "abc", "4414%00", "1" * 40])
    def test_unknown_codes_are_404(self, client, code):
        assert_error(client.get(f"/api/v1/divisions/{code}"), 404, "not_found")


class TestPublicNodes:
    def test_village_points_by_county_with_their_center(self, client, net):
        points = client.get(f"/api/v1/village-points?county_code={COUNTY_X}").get_json()
        assert [p["id"] for p in points] == [net.point_a.id, net.point_b.id]
        a = points[0]
        assert a["county_center"]["id"] == net.center_x.id
        assert a["phone"] == "0753-2781221" and a["opening_hours"] == "08:00-20:00"
        assert a["coordinates_approximate"] is True
        assert [p["level"] for p in a["path"]] == ["city", "county", "town", "village"]

    def test_one_point_and_the_404s(self, client, net):
        body = client.get(f"/api/v1/village-points/{net.point_c.id}").get_json()
        assert body["id"] == net.point_c.id and body["has_cold_storage"] is True
        assert_error(client.get(f"/api/v1/village-points/{net.center_x.id}"), 404, "not_found")
        assert_error(client.get("/api/v1/village-points/99999999999999999999"), 404, "not_found")

    def test_a_bad_county_code_is_422(self, client):
        assert_error(
            client.get("/api/v1/village-points?county_code=4414"), 422, "validation_error", "county_code"
        )

    def test_county_and_distribution_centers(self, client, net):
        centers = {c["id"] for c in client.get("/api/v1/county-centers").get_json()}
        assert {net.center_x.id, net.center_y.id} <= centers and net.point_a.id not in centers
        dcs = {d["id"]: d for d in client.get("/api/v1/distribution-centers").get_json()}
        assert [c["code"] for c in dcs[net.dc.id]["served_counties"]] == [COUNTY_X, COUNTY_Y]


class TestWritingWithTokens:
    def test_county_staff_open_a_point_in_their_county(
        self, client, session, make_user, bearer, first_village
    ):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X)
        village = first_village(COUNTY_X, 4)
        resp = client.post(
            "/api/v1/nodes",
            headers=bearer(staff),
            json={
                "kind": "village_point",
                "division_code": village.code,
                "name": "接口开的服务点",
                "opening_hours": "08:00-20:00",
                "longitude": 116.7,
                "latitude": 24.35,
            },
        )
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        assert (body["kind"], body["division_code"], body["coordinates_approximate"]) == (
            "village_point",
            village.code,
            False,
        )
        assert session.get(Node, body["id"]).updated_by_id == staff.id

    def test_out_of_scope_writes_are_403_and_write_nothing(
        self, client, session, make_user, bearer, net, first_village
    ):
        headers = bearer(make_user(Role.COUNTY_STAFF, county_code=COUNTY_X))
        before = node_count(session)
        for body in (
            {"kind": "village_point", "division_code": first_village(COUNTY_Y).code, "name": "外县"},
            {"kind": "county_center", "division_code": COUNTY_X, "name": "中心"},
        ):
            assert_error(client.post("/api/v1/nodes", headers=headers, json=body), 403, "forbidden")
        assert node_count(session) == before
        row = snapshot(session, net.point_c.id)
        resp = client.patch(f"/api/v1/nodes/{net.point_c.id}", headers=headers, json={"name": "改"})
        assert_error(resp, 403, "forbidden")
        assert snapshot(session, net.point_c.id) == row

    def test_the_agent_of_a_changes_a_but_not_b_and_not_the_name(
        self, client, session, make_user, bearer, net
    ):
        headers = bearer(make_user(Role.AGENT, node_id=net.point_a.id))
        resp = client.patch(
            f"/api/v1/nodes/{net.point_a.id}", headers=headers, json={"opening_hours": "06:00-22:00"}
        )
        assert resp.status_code == 200 and resp.get_json()["opening_hours"] == "06:00-22:00"
        before_b = snapshot(session, net.point_b.id)
        resp = client.patch(
            f"/api/v1/nodes/{net.point_b.id}", headers=headers, json={"opening_hours": "06:00-22:00"}
        )
        assert_error(resp, 403, "forbidden")
        assert snapshot(session, net.point_b.id) == before_b
        before_a = snapshot(session, net.point_a.id)
        for change in ({"name": "代办员改名"}, {"active": False}):
            resp = client.patch(f"/api/v1/nodes/{net.point_a.id}", headers=headers, json=change)
            assert_error(resp, 403, "forbidden")
        assert snapshot(session, net.point_a.id) == before_a

    def test_admins_open_a_distribution_center_with_its_counties(self, client, admin, bearer):
        resp = client.post(
            "/api/v1/nodes",
            headers=bearer(admin),
            json={
                "kind": "distribution_center",
                "division_code": SHENZHEN_LONGGANG,
                "name": "深圳第三配送中心",
                "has_cold_storage": True,
                "served_county_codes": [COUNTY_Y, COUNTY_X],
            },
        )
        assert resp.status_code == 201
        assert [c["code"] for c in resp.get_json()["served_counties"]] == [COUNTY_X, COUNTY_Y]

    def test_without_a_token_writes_are_401_even_before_the_body_is_read(self, client, admin, net):
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
            assert_error(client.post("/api/v1/nodes", headers=headers, json={"kind": 1}), 401, "unauthorized")
            resp = client.patch(f"/api/v1/nodes/{net.point_a.id}", headers=headers, json={"name": "x"})
            assert_error(resp, 401, "unauthorized")

    def test_a_browser_session_is_not_enough_to_write(self, app, admin, net):
        from tests.conftest import login

        browser = app.test_client()
        assert login(browser, admin.phone).status_code == 302
        resp = browser.patch(f"/api/v1/nodes/{net.point_a.id}", json={"name": "跨站请求"})
        assert_error(resp, 401, "unauthorized")

    def test_an_unknown_node_is_404(self, client, admin, bearer):
        resp = client.patch("/api/v1/nodes/987654321", headers=bearer(admin), json={"name": "x"})
        assert_error(resp, 404, "not_found")


class TestBadBodies:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"division_code": "{town}", "name": "镇上"}, "division_code"),  # a town, not a village
            ({"name": "缺地点"}, "division_code"),
            ({"division_code": "{village}"}, "name"),
            ({"division_code": "{village}", "name": "<img src=x onerror=alert(1)>"}, "name"),
            ({"division_code": "{village}", "name": "好", "opening_hours": "8am-8pm"}, "opening_hours"),
            ({"division_code": "{village}", "name": "好", "longitude": 139.7, "latitude": 35.7}, "longitude"),
            ({"division_code": "{village}", "name": "好", "longitude": "NaN", "latitude": 23}, "longitude"),
            ({"division_code": "{village}", "name": "好", "latitude": 23.1}, "longitude"),
            ({"division_code": "{village}", "name": "好", "phone": "110"}, "phone"),
            ({"division_code": "{village}", "name": 42}, "name"),
            (
                {"division_code": "{village}", "name": "好", "has_cold_storage": "sometimes"},
                "has_cold_storage",
            ),
            ({"division_code": "{village}", "name": "好", "owner": "me"}, "owner"),
            ({"kind": "castle", "division_code": "{village}", "name": "好"}, "kind"),
        ],
    )
    def test_bad_create_bodies_are_422_with_the_field_and_write_nothing(
        self, client, session, admin, bearer, first_village, body, field
    ):
        village = first_village(COUNTY_X)
        body = {
            "kind": "village_point",
            **{
                k: (v.format(village=village.code, town=village.code[:9]) if isinstance(v, str) else v)
                for k, v in body.items()
            },
        }
        before = node_count(session)
        resp = client.post("/api/v1/nodes", headers=bearer(admin), json=body)
        assert_error(resp, 422, "validation_error", field)
        assert node_count(session) == before

    @pytest.mark.parametrize(
        "payload",
        ["not json", "[1, 2]", '{"name": '],
    )
    def test_malformed_json_is_a_4xx_json_error(self, client, admin, bearer, net, payload):
        headers = {**bearer(admin), "Content-Type": "application/json"}
        resp = client.patch(f"/api/v1/nodes/{net.point_a.id}", headers=headers, data=payload)
        assert 400 <= resp.status_code < 500
        assert resp.get_json()["code"] in ("bad_request", "validation_error")

    def test_a_bad_update_writes_nothing(self, client, session, admin, bearer, net):
        before = snapshot(session, net.point_a.id)
        resp = client.patch(
            f"/api/v1/nodes/{net.point_a.id}",
            headers=bearer(admin),
            json={"name": "新名", "opening_hours": "25:00-26:00", "served_county_codes": [COUNTY_X]},
        )
        assert_error(resp, 422, "validation_error", "opening_hours")
        assert snapshot(session, net.point_a.id) == before


class TestOpenApi:
    def test_every_places_endpoint_is_documented(self, client):
        spec = client.get("/api/openapi.json").get_json()
        paths = spec["paths"]
        expected = {
            "/api/v1/divisions": {"get"},
            "/api/v1/divisions/{code}": {"get"},
            "/api/v1/village-points": {"get"},
            "/api/v1/village-points/{point_id}": {"get"},
            "/api/v1/county-centers": {"get"},
            "/api/v1/distribution-centers": {"get"},
            "/api/v1/nodes": {"post"},
            "/api/v1/nodes/{node_id}": {"patch"},
        }
        for path, methods in expected.items():
            assert methods <= set(paths[path]), path
        post = paths["/api/v1/nodes"]["post"]
        assert post["security"] == [{"bearerAuth": []}]
        assert {"201", "401", "403", "422"} <= set(post["responses"])
        assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/NodeCreate")
        kind = spec["components"]["schemas"]["NodeCreate"]["properties"]["kind"]
        assert NodeKind.VILLAGE_POINT.value in kind["enum"]
