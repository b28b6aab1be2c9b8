"""The network of places through its services, on a real database: who may open and change
which node, what bad input is refused (writing nothing), the audit trail and the directory."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import AuditEvent, DivisionLevel, Node, NodeKind, Role
from services import places
from services.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from tests.factories import COUNTY_X, COUNTY_Y, COUNTY_Z, SHENZHEN_LONGGANG, snapshot


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Node)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


class TestOpeningNodes:
    def test_a_village_point_gets_its_county_center_and_an_approximate_position(self, session, net):
        assert net.point_a.county_code == COUNTY_X
        assert net.point_a.county_center_id == net.center_x.id
        assert net.point_a.coordinates_approximate is True
        county = places.get_division(session, COUNTY_X)
        assert (net.point_a.longitude, net.point_a.latitude) == (county.longitude, county.latitude)

    def test_a_county_center_opened_later_adopts_the_points_already_there(
        self, session, admin, first_village
    ):
        point = places.create_node(
            session,
            admin,
            NodeKind.VILLAGE_POINT,
            {"division_code": first_village(COUNTY_Z).code, "name": "连州某村服务点"},
        )
        assert point.county_center_id is None
        center = places.create_node(
            session, admin, NodeKind.COUNTY_CENTER, {"division_code": COUNTY_Z, "name": "连州市中心"}
        )
        session.expire_all()
        assert session.get(Node, point.id).county_center_id == center.id

    def test_exact_coordinates_are_kept_and_not_marked_approximate(self, session, admin, first_village):
        point = places.create_node(
            session,
            admin,
            NodeKind.VILLAGE_POINT,
            {
                "division_code": first_village(COUNTY_X, 2).code,
                "name": "定位准确的服务点",
                "longitude": "116.1",
                "latitude": "24.3",
            },
        )
        assert (point.longitude, point.latitude, point.coordinates_approximate) == (116.1, 24.3, False)

    def test_county_staff_open_points_in_their_county_only(self, session, make_user, first_village):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X)
        own = places.create_node(
            session,
            staff,
            NodeKind.VILLAGE_POINT,
            {"division_code": first_village(COUNTY_X).code, "name": "本县服务点"},
        )
        assert own.county_code == COUNTY_X
        before = counts(session)
        with pytest.raises(Forbidden):
            places.create_node(
                session,
                staff,
                NodeKind.VILLAGE_POINT,
                {"division_code": first_village(COUNTY_Y).code, "name": "外县服务点"},
            )
        with pytest.raises(Forbidden):
            places.create_node(
                session, staff, NodeKind.COUNTY_CENTER, {"division_code": COUNTY_X, "name": "中心"}
            )
        assert counts(session) == before

    @pytest.mark.parametrize("role", [Role.AGENT, Role.BUYER, Role.FARMER, Role.MERCHANT, Role.DC_STAFF])
    def test_other_roles_open_nothing(self, session, make_user, first_village, net, role):
        user = make_user(role, node_id=net.point_a.id if role == Role.AGENT else net.dc.id)
        before = counts(session)
        with pytest.raises(Forbidden):
            places.create_node(
                session,
                user,
                NodeKind.VILLAGE_POINT,
                {"division_code": first_village(COUNTY_X, 3).code, "name": "x"},
            )
        assert counts(session) == before

    def test_anonymous_is_asked_to_log_in(self, session, first_village):
        with pytest.raises(Unauthorized):
            places.create_node(
                session, None, NodeKind.VILLAGE_POINT, {"division_code": first_village(COUNTY_X).code}
            )

    def test_a_second_county_center_in_one_county_conflicts(self, session, admin, net):
        before = counts(session)
        with pytest.raises(Conflict):
            places.create_node(
                session, admin, NodeKind.COUNTY_CENTER, {"division_code": COUNTY_X, "name": "另一个中心"}
            )
        assert counts(session) == before

    def test_a_distribution_center_serves_the_chosen_counties(self, net):
        assert [d.code for d in net.dc.served_counties] == [COUNTY_X, COUNTY_Y]
        assert net.dc.county_code == SHENZHEN_LONGGANG


class TestWhoBeforeWhat:
    @pytest.mark.parametrize("kind", ["", "castle", NodeKind.VILLAGE_POINT])
    def test_someone_who_may_open_nothing_is_refused_whatever_they_sent(self, session, make_user, kind):
        """A buyer learns nothing from the form's checks: 403 before the kind or fields are read."""
        before = session.scalar(select(func.count()).select_from(Node))
        with pytest.raises(Forbidden):
            places.create_node(session, make_user(Role.BUYER), kind, {})
        assert session.scalar(select(func.count()).select_from(Node)) == before


class TestBadInputWritesNothing:
    @pytest.mark.parametrize(
        ("kind", "field", "overrides"),
        [
            # a town's code where a village is needed
            (NodeKind.VILLAGE_POINT, "division_code", {"division_code": COUNTY_X + "100"}),
            (NodeKind.VILLAGE_POINT, "division_code", {"division_code": COUNTY_X}),
            (NodeKind.COUNTY_CENTER, "division_code", {"division_code": "4414"}),
            (NodeKind.VILLAGE_POINT, "division_code", {"division_code": "999999999999"}),
            (NodeKind.VILLAGE_POINT, "division_code", {"division_code": "44\x0003"}),
            (NodeKind.VILLAGE_POINT, "opening_hours", {"opening_hours": "8点到20点"}),
            (NodeKind.VILLAGE_POINT, "opening_hours", {"opening_hours": "20:00-08:00"}),
            (NodeKind.VILLAGE_POINT, "opening_hours", {"opening_hours": "25:00-26:00"}),
            (NodeKind.VILLAGE_POINT, "longitude", {"longitude": "121.47", "latitude": "31.23"}),  # 上海
            (NodeKind.VILLAGE_POINT, "latitude", {"longitude": "113.2", "latitude": "nan"}),
            (NodeKind.VILLAGE_POINT, "latitude", {"longitude": "113.2"}),
            (NodeKind.VILLAGE_POINT, "name", {"name": "<script>alert(1)</script>"}),
            (NodeKind.VILLAGE_POINT, "name", {"name": "   "}),
            (NodeKind.VILLAGE_POINT, "name", {"name": "村" * 81}),
            (NodeKind.VILLAGE_POINT, "name", {"name": 12345}),
            (NodeKind.VILLAGE_POINT, "phone", {"phone": "12345"}),
            (NodeKind.VILLAGE_POINT, "has_cold_storage", {"has_cold_storage": "maybe"}),
            (NodeKind.DISTRIBUTION_CENTER, "served_county_codes", {"division_code": SHENZHEN_LONGGANG}),
        ],
    )
    def test_refused_with_a_message_on_the_field(self, session, admin, first_village, kind, field, overrides):
        data = {"division_code": first_village(COUNTY_X).code, "name": "好名字"}
        if kind != NodeKind.VILLAGE_POINT:
            data["division_code"] = COUNTY_X
        data.update(overrides)
        served = [COUNTY_X + "100"] if kind == NodeKind.DISTRIBUTION_CENTER else ()  # a town, not a county
        before = counts(session)
        with pytest.raises(ValidationError) as exc:
            places.create_node(session, admin, kind, data, served_county_codes=served)
        assert field in exc.value.field_errors
        assert all(str(m) for m in exc.value.field_errors[field])
        assert counts(session) == before

    def test_an_unknown_kind_is_a_validation_error(self, session, admin):
        with pytest.raises(ValidationError):
            places.create_node(session, admin, "warehouse", {"division_code": COUNTY_X, "name": "x"})  # type: ignore[arg-type]

    def test_an_invalid_edit_changes_nothing(self, session, admin, net):
        before = snapshot(session, net.point_a.id)
        with pytest.raises(ValidationError) as exc:
            places.update_node(
                session,
                admin,
                net.point_a.id,
                {"name": "新名字", "opening_hours": "早上八点", "latitude": "99", "longitude": "116"},
            )
        assert {"opening_hours", "latitude"} <= exc.value.field_errors.keys()
        assert snapshot(session, net.point_a.id) == before

    def test_bad_served_counties_change_nothing(self, session, admin, net):
        before = snapshot(session, net.dc.id)
        with pytest.raises(ValidationError):
            places.update_node(
                session, admin, net.dc.id, {"name": "改名"}, served_county_codes=[COUNTY_X, "441403100"]
            )
        assert snapshot(session, net.dc.id) == before


class TestEditingWithinScope:
    def test_the_agent_of_a_point_changes_its_hours_phone_and_description(self, session, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id)
        places.update_node(
            session,
            agent,
            net.point_a.id,
            {"opening_hours": "07:00-21:00", "phone": "13900009999", "description": "代收快递"},
        )
        row = snapshot(session, net.point_a.id)
        assert (row["opening_hours"], row["phone"], row["description"]) == (
            "07:00-21:00",
            "13900009999",
            "代收快递",
        )
        assert row["updated_by_id"] == agent.id

    def test_the_agent_of_village_a_cannot_edit_village_bs_point(self, session, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id)
        before = snapshot(session, net.point_b.id)
        with pytest.raises(Forbidden):
            places.update_node(session, agent, net.point_b.id, {"opening_hours": "00:00-01:00"})
        assert snapshot(session, net.point_b.id) == before

    @pytest.mark.parametrize(
        "change", [{"name": "我改的名字"}, {"active": False}, {"has_cold_storage": True}, {"address": "别处"}]
    )
    def test_an_agent_cannot_change_what_only_staff_may(self, session, make_user, net, change):
        agent = make_user(Role.AGENT, node_id=net.point_a.id)
        before = snapshot(session, net.point_a.id)
        with pytest.raises(Forbidden):
            places.update_node(session, agent, net.point_a.id, {**change, "opening_hours": "06:00-22:00"})
        assert snapshot(session, net.point_a.id) == before

    def test_an_agent_may_send_staff_fields_unchanged(self, session, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id)
        places.update_node(
            session, agent, net.point_a.id, {"name": net.point_a.name, "opening_hours": "06:00-22:00"}
        )
        assert snapshot(session, net.point_a.id)["opening_hours"] == "06:00-22:00"

    def test_county_staff_edit_everything_in_their_county_and_nothing_outside(self, session, make_user, net):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X)
        places.update_node(session, staff, net.point_a.id, {"name": "甲村新名", "active": False})
        row = snapshot(session, net.point_a.id)
        assert (row["name"], row["active"]) == ("甲村新名", False)
        for other in (net.point_c, net.center_y, net.dc):
            before = snapshot(session, other.id)
            with pytest.raises(Forbidden):
                places.update_node(session, staff, other.id, {"name": "不该改"})
            assert snapshot(session, other.id) == before

    def test_dc_staff_change_their_centers_hours_but_not_its_counties(self, session, make_user, net):
        staff = make_user(Role.DC_STAFF, node_id=net.dc.id)
        places.update_node(session, staff, net.dc.id, {"opening_hours": "00:00-24:00"})
        before = snapshot(session, net.dc.id)
        assert before["opening_hours"] == "00:00-24:00"
        with pytest.raises(Forbidden):
            places.update_node(session, staff, net.dc.id, {}, served_county_codes=[COUNTY_X])
        with pytest.raises(Forbidden):
            places.update_node(session, staff, net.point_a.id, {"opening_hours": "08:00-09:00"})
        assert snapshot(session, net.dc.id) == before

    def test_admins_change_the_counties_a_dc_serves(self, session, admin, net):
        places.update_node(session, admin, net.dc.id, {}, served_county_codes=[COUNTY_Z, COUNTY_X])
        assert snapshot(session, net.dc.id)["served"] == [COUNTY_X, COUNTY_Z]

    def test_clearing_coordinates_falls_back_to_the_county_position(self, session, admin, net):
        places.update_node(session, admin, net.point_a.id, {"longitude": "116.2", "latitude": "24.4"})
        assert snapshot(session, net.point_a.id)["coordinates_approximate"] is False
        places.update_node(session, admin, net.point_a.id, {"longitude": "", "latitude": ""})
        row = snapshot(session, net.point_a.id)
        county = places.get_division(session, COUNTY_X)
        assert (row["longitude"], row["latitude"], row["coordinates_approximate"]) == (
            county.longitude,
            county.latitude,
            True,
        )

    def test_an_unknown_node_is_not_found(self, session, admin):
        for node_id in (0, 987654, 2**40):
            with pytest.raises(NotFound):
                places.update_node(session, admin, node_id, {"name": "x"})


class TestAuditTrail:
    def test_opening_and_each_change_record_who_and_what(self, session, make_user, admin, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id, name="甲村代办员")
        places.update_node(session, agent, net.point_a.id, {"opening_hours": "06:30-21:30"})
        history = places.node_history(session, agent, net.point_a.id)
        assert [e.action for e in history] == ["update", "create"]
        assert history[0].actor_id == agent.id
        assert history[0].changes == {"opening_hours": "06:30-21:30"}
        assert history[1].actor_id == admin.id
        assert history[1].changes["division_code"] == net.point_a.division_code

    def test_saving_without_changes_records_nothing(self, session, admin, net):
        before = counts(session)
        places.update_node(session, admin, net.point_a.id, {"name": net.point_a.name})
        assert counts(session) == before

    def test_the_editor_view_names_the_people_behind_each_change(self, session, make_user, admin, net):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X, name="县中心小李")
        places.update_node(session, staff, net.point_a.id, {"description": "新描述"})
        editor = places.node_editor(session, staff, net.point_a.id)
        assert [h.actor.display_name for h in editor.history if h.actor] == ["县中心小李", "省平台管理员"]
        assert editor.fields == places.OPERATOR_FIELDS | places.ADMIN_FIELDS

    def test_history_and_editor_are_closed_to_people_outside_the_scope(self, session, make_user, net):
        for user in (
            make_user(Role.AGENT, node_id=net.point_b.id),
            make_user(Role.COUNTY_STAFF, county_code=COUNTY_Y),
            make_user(Role.BUYER),
        ):
            with pytest.raises(Forbidden):
                places.node_history(session, user, net.point_a.id)
            with pytest.raises(Forbidden):
                places.node_editor(session, user, net.point_a.id)

    def test_an_agent_edits_only_the_operator_fields(self, session, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_a.id)
        editor = places.node_editor(session, agent, net.point_a.id)
        assert editor.fields == places.OPERATOR_FIELDS
        assert editor.can_change_served_counties is False


class TestManagedLists:
    def ids(self, nodes) -> set[int]:  # type: ignore[no-untyped-def]
        return {n.id for n in nodes}

    def test_admins_see_every_node(self, session, admin, net):
        assert self.ids(places.list_managed_nodes(session, admin)) >= {
            net.center_x.id,
            net.center_y.id,
            net.point_a.id,
            net.point_b.id,
            net.point_c.id,
            net.dc.id,
        }

    def test_county_staff_see_their_county_only(self, session, make_user, net):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_X)
        assert self.ids(places.list_managed_nodes(session, staff)) == {
            net.center_x.id,
            net.point_a.id,
            net.point_b.id,
        }
        points = places.list_managed_nodes(session, staff, kind=NodeKind.VILLAGE_POINT)
        assert self.ids(points) == {net.point_a.id, net.point_b.id}

    def test_agents_and_dc_staff_see_their_own_node(self, session, make_user, net):
        agent = make_user(Role.AGENT, node_id=net.point_b.id)
        dc_staff = make_user(Role.DC_STAFF, node_id=net.dc.id)
        assert self.ids(places.list_managed_nodes(session, agent)) == {net.point_b.id}
        assert self.ids(places.list_managed_nodes(session, dc_staff)) == {net.dc.id}

    def test_people_without_a_scope_are_refused(self, session, make_user, net):
        with pytest.raises(Forbidden):
            places.list_managed_nodes(session, make_user(Role.BUYER, Role.FARMER))
        with pytest.raises(Unauthorized):
            places.list_managed_nodes(session, None)

    def test_who_may_open_what(self, make_user, admin):
        assert places.creatable_kinds(admin) == list(NodeKind)
        assert places.creatable_kinds(make_user(Role.COUNTY_STAFF, county_code=COUNTY_X)) == [
            NodeKind.VILLAGE_POINT
        ]
        assert places.creatable_kinds(make_user(Role.MERCHANT)) == []
        assert places.creatable_kinds(None) == []


class TestPublicDirectory:
    def test_only_counties_with_open_points_are_offered(self, session, admin, net):
        def ours() -> list[str]:
            return [d.code for d in places.counties_with_points(session) if d.code in (COUNTY_X, COUNTY_Y)]

        assert ours() == [COUNTY_X, COUNTY_Y]
        places.update_node(session, admin, net.point_c.id, {"active": False})
        assert ours() == [COUNTY_X]

    def test_the_directory_filters_by_county_and_gives_place_paths(self, session, net):
        entries = places.village_point_directory(session, COUNTY_Y)
        assert [e.node.id for e in entries] == [net.point_c.id]
        levels = [d.level for d in entries[0].path]
        assert levels == [DivisionLevel.CITY, DivisionLevel.COUNTY, DivisionLevel.TOWN, DivisionLevel.VILLAGE]
        assert entries[0].path[0].name == "梅州市"
        everything = {e.node.id for e in places.village_point_directory(session)}
        assert everything >= {net.point_a.id, net.point_b.id, net.point_c.id}

    def test_closed_points_and_centers_have_no_public_page(self, session, admin, net):
        assert places.public_village_point(session, net.point_a.id).node.id == net.point_a.id
        places.update_node(session, admin, net.point_a.id, {"active": False})
        for node_id in (net.point_a.id, net.center_x.id, net.dc.id, 10**12):
            with pytest.raises(NotFound):
                places.public_village_point(session, node_id)

    def test_division_path_runs_from_city_to_village(self, session, first_village):
        village = first_village(COUNTY_Y)
        path = places.division_path(session, village.code)
        assert [d.code for d in path] == [village.code[:4], village.code[:6], village.code[:9], village.code]

    def test_centers_are_listed_with_their_counties(self, session, net):
        centers = [n.id for n in places.list_centers(session, NodeKind.COUNTY_CENTER)]
        assert centers.index(net.center_x.id) < centers.index(net.center_y.id)
        dcs = {n.id: n for n in places.list_centers(session, NodeKind.DISTRIBUTION_CENTER)}
        assert [d.code for d in dcs[net.dc.id].served_counties] == [COUNTY_X, COUNTY_Y]


class TestBrowsingDivisions:
    def test_without_arguments_the_cities(self, session):
        cities = places.browse_divisions(session)
        assert len(cities) == 21
        assert {c.level for c in cities} == {DivisionLevel.CITY}

    def test_children_of_a_county_are_its_towns(self, session):
        towns = places.browse_divisions(session, parent_code=COUNTY_Y)
        assert towns and all(t.code.startswith(COUNTY_Y) and t.level == DivisionLevel.TOWN for t in towns)

    def test_villages_need_a_parent_and_parents_must_exist(self, session):
        with pytest.raises(ValidationError):
            places.browse_divisions(session, level=DivisionLevel.VILLAGE)
        with pytest.raises(NotFound):
            places.browse_divisions(session, parent_code="449999")
        with pytest.raises(NotFound):
            places.get_division(session, "abc")


class TestDivisionPicker:
    def test_an_admin_goes_city_county_town_village(self, session, admin, first_village):
        village = first_village(COUNTY_Y)
        picker = places.division_picker(session, admin, "village_point", {})
        assert [lvl.level for lvl in picker.levels] == [DivisionLevel.CITY]
        assert len(picker.levels[0].options) == 21
        steps = {"city": village.code[:4], "county": village.code[:6], "town": village.code[:9]}
        picker = places.division_picker(session, admin, "village_point", steps)
        assert [lvl.selected for lvl in picker.levels] == [*steps.values(), ""]
        assert picker.division is None
        picker = places.division_picker(session, admin, "village_point", {**steps, "village": village.code})
        assert picker.division is not None and picker.division.code == village.code
        assert [d.code for d in picker.path][-1] == village.code

    def test_a_pick_that_does_not_belong_under_the_level_above_is_dropped(self, session, admin):
        picker = places.division_picker(session, admin, "village_point", {"city": "4418", "county": COUNTY_X})
        assert [lvl.selected for lvl in picker.levels] == ["4418", ""]

    def test_centers_stop_at_the_county(self, session, admin):
        picker = places.division_picker(session, admin, "county_center", {"city": "4414", "county": COUNTY_X})
        assert picker.division is not None and picker.division.code == COUNTY_X
        assert len(picker.levels) == 2

    def test_county_staff_only_see_their_county(self, session, make_user):
        staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY_Y)
        picker = places.division_picker(session, staff, "village_point", {"city": "4414"})
        assert [d.code for d in picker.levels[0].options] == ["4414"]
        assert [d.code for d in picker.levels[1].options] == [COUNTY_Y]
        with pytest.raises(Forbidden):
            places.division_picker(session, staff, "county_center", {})

    def test_bad_kinds_and_outsiders_are_refused(self, session, admin, make_user):
        with pytest.raises(ValidationError):
            places.division_picker(session, admin, "castle", {})
        with pytest.raises(Forbidden):
            places.division_picker(session, make_user(Role.AGENT), "village_point", {})
