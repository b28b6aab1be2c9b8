"""The demo data: loaded through the services, complete, and idempotent (a second run adds and
changes nothing)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from domain import AuditEvent, Node, NodeKind, Role, User
from marketplace.config import PROJECT_ROOT
from seed.loader import DEMO_PASSWORD, load_all, read_json
from services import accounts
from tests.factories import database_state


@pytest.fixture()
def seeded(session):  # type: ignore[no-untyped-def]
    return load_all(session)


def demo_users(session) -> dict[str, User]:  # type: ignore[no-untyped-def]
    return {
        u["phone"]: accounts.find_user_by_phone(session, u["phone"]) for u in read_json("demo_users.json")
    }


class TestLoadingTheDemoData:
    def test_the_first_run_adds_the_network_and_the_demo_users(self, session, seeded):
        points = read_json("village_points.json")
        assert seeded["divisions"] == 0  # the harness imported them already
        assert seeded["county_centers"] == len(read_json("county_centers.json")) >= 3
        assert seeded["village_points"] == len(points) >= 20
        assert seeded["distribution_centers"] == 2
        assert seeded["users"] == len(read_json("demo_users.json"))
        seeded_points = session.scalars(select(Node).where(Node.kind == NodeKind.VILLAGE_POINT)).all()
        assert {p.division_code for p in seeded_points} >= {p["village_code"] for p in points}
        assert len({p["village_code"][:4] for p in points}) >= 4
        self.every_point_is_served_by_its_county_center(session)
        self.the_demo_hubs_have_vehicles_with_their_city_s_plates(session, seeded)
        self.the_audit_trail_names_the_admin(session, seeded)

    def test_a_second_run_adds_nothing_and_changes_nothing(self, session, seeded):
        before = database_state(session)
        again = load_all(session)
        assert set(again.values()) == {0}
        assert database_state(session) == before

    def the_demo_hubs_have_vehicles_with_their_city_s_plates(self, session, seeded):  # type: ignore[no-untyped-def]
        from domain import Vehicle

        vehicles = session.scalars(select(Vehicle)).all()
        assert seeded["vehicles"] == len(read_json("vehicles.json")) == len(vehicles) >= 5
        plate_of_city = {"4414": "粤M", "4418": "粤R", "4408": "粤G", "4401": "粤A", "4403": "粤B"}
        for vehicle in vehicles:
            assert vehicle.plate.startswith(plate_of_city[vehicle.node.county_code[:4]])
        assert any(v.refrigerated for v in vehicles if v.node.kind == NodeKind.COUNTY_CENTER)

    def every_point_is_served_by_its_county_center(self, session):  # type: ignore[no-untyped-def]
        for entry in read_json("village_points.json"):
            point = session.scalar(
                select(Node).where(
                    Node.kind == NodeKind.VILLAGE_POINT, Node.division_code == entry["village_code"]
                )
            )
            assert point is not None and point.county_center is not None
            assert point.county_center.county_code == entry["village_code"][:6]
            assert point.coordinates_approximate is True

    def the_audit_trail_names_the_admin(self, session, seeded):  # type: ignore[no-untyped-def]
        """The data went through the services, so the audit trail names the seeded admin."""
        admin = accounts.find_user_by_phone(session, "13800000001")
        node_ids = session.scalars(select(Node.id).where(Node.updated_by_id == admin.id)).all()
        audited = session.scalars(
            select(AuditEvent.entity_id).where(
                AuditEvent.entity_type == "node",
                AuditEvent.action == "create",
                AuditEvent.actor_id == admin.id,
            )
        ).all()
        assert len(node_ids) == seeded["county_centers"] + seeded["village_points"] + 2
        assert {str(i) for i in node_ids} <= set(audited)


class TestDemoUsers:
    def test_every_role_has_a_demo_user_who_can_log_in_with_the_right_scope(self, session, seeded, policy):
        users = demo_users(session)
        held = {g.role for u in users.values() for g in u.grants}
        assert held == set(Role)
        some = next(iter(users))
        assert accounts.authenticate(session, some, DEMO_PASSWORD, policy).phone == some
        for entry in read_json("demo_users.json"):
            (grant,) = users[entry["phone"]].grants
            assert grant.role == Role(entry["role"])
            if entry["role"] == "agent":
                assert grant.node.kind == NodeKind.VILLAGE_POINT
                assert grant.node.division_code == entry["village_code"]
            elif entry["role"] == "dc_staff":
                assert grant.node.kind == NodeKind.DISTRIBUTION_CENTER
                assert grant.node.county_code == entry["distribution_center_county"]
            elif entry["role"] == "county_staff":
                assert grant.county_code == entry["county_code"]
            else:
                assert grant.node_id is None and grant.county_code is None


class TestLoginsListing:
    def test_logins_are_printed_from_the_data_file_without_a_database(self, tmp_path):
        env = dict(
            os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/absent/nowhere.db", INSTANCE_PATH=str(tmp_path)
        )
        out = subprocess.run(
            [sys.executable, "-m", "seed.loader", "--logins"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
        assert len(out) == len(read_json("demo_users.json"))
        assert {line.split()[0] for line in out} == {r.value for r in Role}
        agent = next(line for line in out if line.startswith("agent"))
        assert "13800000021" in agent and "梅州市梅县区" in agent
        assert not (tmp_path / "absent").exists()


class TestDemoPointPositionsAndSchedules:
    def test_each_point_sits_inside_its_county_apart_from_the_others_and_is_marked_estimated(
        self, session, seeded
    ):
        from domain import Division
        from seed.positions import TOWN_RADIUS_KM, VILLAGE_RADIUS_KM
        from services.logistics.distance import Point, great_circle_m

        points = session.scalars(select(Node).where(Node.kind == NodeKind.VILLAGE_POINT)).all()
        spots = set()
        for point in points:
            county = session.get(Division, point.county_code)
            away_km = (
                great_circle_m(
                    Point(point.latitude, point.longitude), Point(county.latitude, county.longitude)
                )
                / 1000
            )
            assert 0 < away_km <= TOWN_RADIUS_KM + VILLAGE_RADIUS_KM + 0.01
            assert point.coordinates_approximate is True  # an estimate, not a survey
            spots.add((point.latitude, point.longitude))
        assert len(spots) == len(points)

    def test_points_get_their_delivery_days_and_cut_offs(self, session, seeded):
        for entry in read_json("village_points.json"):
            point = session.scalar(
                select(Node).where(
                    Node.kind == NodeKind.VILLAGE_POINT, Node.division_code == entry["village_code"]
                )
            )
            assert point.delivery_days == entry["delivery_days"]
            assert point.cutoff_time.strftime("%H:%M") == entry["cutoff_time"]
            assert point.ready_time.strftime("%H:%M") == entry["ready_time"]
