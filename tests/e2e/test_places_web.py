"""The places pages over HTTP: the public directory, the staff list, the 'new' wizard without
JavaScript, and the edit page, each within the visitor's scope. Chinese is the default language,
so these tests look at status codes, structure and data, not at English text."""

from __future__ import annotations

import re

import pytest

from domain import Node, NodeKind, Role
from services import places
from tests.factories import (
    COUNTY_X,
    COUNTY_Y,
    SHENZHEN_LONGGANG,
    node_count,
    snapshot,
)


def point_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-point-id="(\d+)"', html)}


def field_has_error(html: str, field: str) -> bool:
    """Whether the form shows an error message right under this field (before the next label)."""
    after = html.split(f'id="{field}"', 1)[1]
    return 'class="field-error"' in re.split(r"<label|<fieldset|<button", after, maxsplit=1)[0]


def node_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-node-id="(\d+)"', html)}


class TestPublicDirectory:
    def test_lists_open_points_with_place_hours_phone_and_cold_storage(self, client, net):
        resp = client.get("/points")
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert {net.point_a.id, net.point_b.id, net.point_c.id} <= point_ids(html)
        assert net.point_a.division.short_name in html
        assert "08:00-20:00" in html and 'href="tel:0753-2781221"' in html
        assert 'class="tag cold"' in html  # point C has cold storage

    def test_filters_by_county(self, client, net):
        html = client.get(f"/points?county={COUNTY_Y}").get_data(as_text=True)
        assert point_ids(html) == {net.point_c.id}
        assert f'<option selected value="{COUNTY_Y}">' in html

    @pytest.mark.parametrize("county", ["999999", "<script>", "4414", "4414'--"])
    def test_an_unknown_county_shows_a_field_error_not_a_failure(self, client, net, county):
        resp = client.get("/points", query_string={"county": county})
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert 'class="field-error"' in html
        assert "<script>" not in html.split("<main", 1)[1]

    def test_closed_points_are_not_listed(self, client, session, admin, net):
        places.update_node(session, admin, net.point_b.id, {"active": False})
        assert net.point_b.id not in point_ids(client.get("/points").get_data(as_text=True))
        assert client.get(f"/points/{net.point_b.id}").status_code == 404

    def test_detail_shows_the_serving_center_and_an_approximate_position(self, client, net):
        resp = client.get(f"/points/{net.point_a.id}")
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert net.center_x.name in html
        assert 'class="hint approx"' in html
        assert net.point_a.division.parent.name in html  # the town

    @pytest.mark.parametrize("path", ["/points/0", "/points/99999999", "/points/99999999999999999999"])
    def test_unknown_points_are_404(self, client, net, path):
        assert client.get(path).status_code == 404

    def test_centers_have_no_public_point_page(self, client, net):
        assert client.get(f"/points/{net.center_x.id}").status_code == 404

    def test_the_agents_own_phone_is_never_shown(self, client, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id, name="甲村代办员")
        for path in ("/points", f"/points/{net.point_a.id}"):
            html = client.get(path).get_data(as_text=True)
            assert agent.phone not in html and "甲村代办员" not in html


class TestManagedList:
    def test_anonymous_visitors_are_sent_to_log_in(self, client):
        resp = client.get("/manage/nodes")
        assert resp.status_code == 302 and "/auth/login" in resp.location

    def test_users_without_a_scope_get_403(self, as_user, make_user):
        assert as_user(make_user(Role.BUYER, Role.FARMER)).get("/manage/nodes").status_code == 403

    def test_county_staff_see_their_county_and_not_the_other(self, as_user, make_user, net):
        client = as_user(make_user(Role.COUNTY_STAFF, county_code=COUNTY_X))
        html = client.get("/manage/nodes").get_data(as_text=True)
        assert node_ids(html) == {net.center_x.id, net.point_a.id, net.point_b.id}
        assert re.findall(r"/manage/nodes/new\?kind=(\w+)", html) == ["village_point"]

    def test_admins_see_everything_and_may_open_every_kind(self, as_user, admin, net):
        html = as_user(admin).get("/manage/nodes").get_data(as_text=True)
        assert {net.center_y.id, net.point_c.id, net.dc.id} <= node_ids(html)
        assert sorted(re.findall(r"/manage/nodes/new\?kind=(\w+)", html)) == sorted(k.value for k in NodeKind)

    def test_the_kind_filter(self, as_user, admin, net):
        client = as_user(admin)
        html = client.get("/manage/nodes?kind=distribution_center").get_data(as_text=True)
        assert net.dc.id in node_ids(html) and net.point_a.id not in node_ids(html)
        resp = client.get("/manage/nodes?kind=castle")
        assert resp.status_code == 200 and 'class="field-error"' in resp.get_data(as_text=True)

    def test_an_agent_sees_only_their_point(self, as_user, make_user, net):
        html = (
            as_user(make_user(Role.AGENT, node_id=net.point_b.id)).get("/manage/nodes").get_data(as_text=True)
        )
        assert node_ids(html) == {net.point_b.id}
        assert "/manage/nodes/new" not in html


class TestEditingAcrossScopes:
    def test_the_agent_of_village_a_gets_403_on_village_bs_point(self, session, as_user, make_user, net):
        client = as_user(make_user(Role.AGENT, node_id=net.point_a.id))
        before = snapshot(session, net.point_b.id)
        assert client.get(f"/manage/nodes/{net.point_b.id}").status_code == 403
        resp = client.post(f"/manage/nodes/{net.point_b.id}", data={"opening_hours": "00:00-01:00"})
        assert resp.status_code == 403
        assert snapshot(session, net.point_b.id) == before

    def test_county_staff_of_x_get_403_on_county_ys_pages(self, session, as_user, make_user, net):
        client = as_user(make_user(Role.COUNTY_STAFF, county_code=COUNTY_X))
        for node in (net.point_c, net.center_y, net.dc):
            before = snapshot(session, node.id)
            assert client.get(f"/manage/nodes/{node.id}").status_code == 403
            assert client.post(f"/manage/nodes/{node.id}", data={"name": "被改了"}).status_code == 403
            assert snapshot(session, node.id) == before

    def test_an_agent_sees_and_changes_only_hours_phone_and_description(
        self, session, as_user, make_user, net
    ):
        client = as_user(make_user(Role.AGENT, node_id=net.point_a.id))
        html = client.get(f"/manage/nodes/{net.point_a.id}").get_data(as_text=True)
        assert 'name="opening_hours"' in html and 'name="phone"' in html
        assert 'name="name"' not in html and 'name="active"' not in html
        # A crafted post with the other fields: those are ignored, the rest saved.
        resp = client.post(
            f"/manage/nodes/{net.point_a.id}",
            data={
                "name": "我改的名字",
                "has_cold_storage": "y",
                "opening_hours": "06:00-22:00",
                "phone": "13900007777",
                "description": "代收快递",
            },
        )
        assert resp.status_code == 302
        row = snapshot(session, net.point_a.id)
        assert (row["name"], row["active"], row["has_cold_storage"]) == ("甲村服务点", True, False)
        assert (row["opening_hours"], row["phone"]) == ("06:00-22:00", "13900007777")

    def test_dc_staff_edit_their_center_without_the_served_counties(self, session, as_user, make_user, net):
        client = as_user(make_user(Role.DC_STAFF, node_id=net.dc.id))
        html = client.get(f"/manage/nodes/{net.dc.id}").get_data(as_text=True)
        assert 'name="served_county_codes"' not in html
        resp = client.post(
            f"/manage/nodes/{net.dc.id}",
            data={"opening_hours": "00:00-24:00", "served_county_codes": [COUNTY_X]},
        )
        assert resp.status_code == 302
        row = snapshot(session, net.dc.id)
        assert row["opening_hours"] == "00:00-24:00" and row["served"] == [COUNTY_X, COUNTY_Y]

    def test_admins_change_names_status_and_served_counties(self, session, as_user, admin, net):
        client = as_user(admin)
        html = client.get(f"/manage/nodes/{net.dc.id}").get_data(as_text=True)
        assert 'name="served_county_codes"' in html and "<optgroup" in html
        resp = client.post(
            f"/manage/nodes/{net.dc.id}",
            data={"name": "深圳龙岗配送中心", "served_county_codes": [COUNTY_Y], "active": "y"},
        )
        assert resp.status_code == 302
        row = snapshot(session, net.dc.id)
        assert (row["name"], row["served"], row["active"]) == ("深圳龙岗配送中心", [COUNTY_Y], True)

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"name": "甲村", "opening_hours": "早八晚八"}, "opening_hours"),
            ({"name": "<b>甲村</b>"}, "name"),
            ({"name": "甲村", "latitude": "39.9", "longitude": "116.4"}, "latitude"),  # 北京
            ({"name": "甲村", "phone": "12345"}, "phone"),
        ],
    )
    def test_bad_input_keeps_the_form_shows_the_error_and_writes_nothing(
        self, session, as_user, admin, net, data, field
    ):
        client = as_user(admin)
        before = snapshot(session, net.point_a.id)
        resp = client.post(f"/manage/nodes/{net.point_a.id}", data={"active": "y", **data})
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert field_has_error(html, field)
        value = data[field]
        assert value.replace("<", "&lt;").replace(">", "&gt;") in html  # the input is kept, escaped
        assert snapshot(session, net.point_a.id) == before

    def test_history_shows_who_changed_what_with_masked_phones(self, session, as_user, make_user, net):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X, name="县中心小李")
        client = as_user(staff)
        client.post(
            f"/manage/nodes/{net.point_a.id}",
            data={"name": "甲村服务点", "opening_hours": "07:00-19:00", "active": "y"},
        )
        html = client.get(f"/manage/nodes/{net.point_a.id}").get_data(as_text=True)
        history = html.split('class="card history"', 1)[1]
        assert "县中心小李" in history and "07:00-19:00" in history
        assert f"{staff.phone[:3]}****{staff.phone[-4:]}" in history
        assert staff.phone not in html


class TestOpeningANodeWithoutJavaScript:
    def test_the_picker_goes_city_county_town_village_then_the_form(self, as_user, admin, first_village):
        client = as_user(admin)
        village = first_village(COUNTY_Y, 2)
        steps = [
            ({}, "city"),
            ({"city": village.code[:4]}, "county"),
            ({"city": village.code[:4], "county": village.code[:6]}, "town"),
            ({"city": village.code[:4], "county": village.code[:6], "town": village.code[:9]}, "village"),
        ]
        for args, last in steps:
            resp = client.get("/manage/nodes/new", query_string={"kind": "village_point", **args})
            assert resp.status_code == 200
            html = resp.get_data(as_text=True)
            assert re.findall(r'<select id="pick-\w+" name="(\w+)"', html)[-1] == last
            assert 'name="division_code"' not in html
        args = {**steps[-1][0], "village": village.code}
        html = client.get("/manage/nodes/new", query_string={"kind": "village_point", **args}).get_data(
            as_text=True
        )
        assert f'name="division_code" type="hidden" value="{village.code}"' in html

    def test_posting_the_form_opens_the_point_and_goes_to_its_page(
        self, session, as_user, make_user, first_village
    ):
        client = as_user(make_user(Role.COUNTY_STAFF, county_code=COUNTY_Y))
        village = first_village(COUNTY_Y, 3)
        resp = client.post(
            "/manage/nodes/new?kind=village_point",
            data={
                "division_code": village.code,
                "name": "新开的村级服务点",
                "opening_hours": "08:00-18:00",
                "phone": "0753-7777777",
            },
        )
        assert resp.status_code == 302
        node_id = int(resp.location.rsplit("/", 1)[1])
        node = session.get(Node, node_id)
        assert (node.kind, node.division_code, node.opening_hours) == (
            NodeKind.VILLAGE_POINT,
            village.code,
            "08:00-18:00",
        )

    def test_county_staff_pick_only_in_their_county_and_open_only_points(self, as_user, make_user):
        client = as_user(make_user(Role.COUNTY_STAFF, county_code=COUNTY_Y))
        html = client.get(
            "/manage/nodes/new", query_string={"kind": "village_point", "city": COUNTY_Y[:4]}
        ).get_data(as_text=True)
        county_select = html.split('name="county"', 1)[1].split("</select>", 1)[0]
        assert re.findall(r'value="(\d+)"', county_select) == [COUNTY_Y]
        assert client.get("/manage/nodes/new?kind=county_center").status_code == 403

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"division_code": COUNTY_Y + "100", "name": "镇上的服务点"}, "division_code"),  # a town
            ({"division_code": "", "name": "哪里都不是"}, "division_code"),
            ({"name": "<i>服务点</i>"}, "name"),
            ({"name": ""}, "name"),
            ({"name": "好名字", "opening_hours": "全天"}, "opening_hours"),
            ({"name": "好名字", "longitude": "100", "latitude": "23"}, "longitude"),  # 云南
        ],
    )
    def test_bad_input_writes_nothing_and_answers_with_a_message(
        self, session, as_user, admin, first_village, data, field
    ):
        client = as_user(admin)
        village = first_village(COUNTY_Y)
        before = node_count(session)
        resp = client.post(
            "/manage/nodes/new?kind=village_point", data={"division_code": village.code, **data}
        )
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        if field == "division_code":  # a hidden field: its message stands above the form
            details = html.split('class="card details"', 1)[1]
            assert details.index('class="field-error"') < details.index("<form")
        else:
            assert field_has_error(html, field)
        assert node_count(session) == before

    def test_a_distribution_center_with_its_counties(self, session, as_user, admin):
        client = as_user(admin)
        html = client.get(
            "/manage/nodes/new",
            query_string={"kind": "distribution_center", "city": "4403", "county": SHENZHEN_LONGGANG},
        ).get_data(as_text=True)
        assert 'name="served_county_codes"' in html
        resp = client.post(
            f"/manage/nodes/new?kind=distribution_center&city=4403&county={SHENZHEN_LONGGANG}",
            data={
                "division_code": SHENZHEN_LONGGANG,
                "name": "深圳第二配送中心",
                "served_county_codes": [COUNTY_X, COUNTY_Y],
            },
        )
        assert resp.status_code == 302
        node = session.get(Node, int(resp.location.rsplit("/", 1)[1]))
        assert [d.code for d in node.served_counties] == [COUNTY_X, COUNTY_Y]

    def test_unknown_kinds_and_outsiders_get_error_pages_not_failures(self, as_user, make_user, admin):
        assert as_user(admin).get("/manage/nodes/new?kind=castle").status_code == 422
        assert as_user(admin).get("/manage/nodes/new").status_code == 422
        assert as_user(make_user(Role.FARMER)).get("/manage/nodes/new?kind=village_point").status_code == 403
