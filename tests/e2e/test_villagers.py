"""Villagers over HTTP: the agent's pages (/agent/villagers) and the API (/api/v1/villagers):
register with consent, find by pinyin initials, duplicates refused with a Chinese 409, an
idempotent create, other points' agents refused, county staff see, strangers get 404."""

from __future__ import annotations

import pytest

from domain import Role, Villager
from tests.conftest import count
from tests.factories import COUNTY, World, build_world


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


def body(w: World, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"name": "王秀英", "village_code": w.village.code, "consent_method": "in_person", **extra}


class TestApi:
    def test_register_find_and_get(self, client, session, world, bearer):
        agent = bearer(world.agent)
        resp = client.post(
            "/api/v1/villagers", json=body(world, phone="13800000061", notes="送到女儿家"), headers=agent
        )
        assert resp.status_code == 201, resp.get_data(as_text=True)
        v = resp.get_json()
        assert (v["name"], v["phone"], v["notes"], v["full"], v["consent_method"]) == (
            "王秀英",
            "13800000061",
            "送到女儿家",
            True,
            "in_person",
        )
        found = client.get("/api/v1/villagers?q=wxy", headers=agent).get_json()
        assert [x["id"] for x in found] == [v["id"]]
        assert client.get("/api/v1/villagers?q=lds", headers=agent).get_json() == []
        got = client.get(f"/api/v1/villagers/{v['id']}", headers=agent)
        assert got.status_code == 200 and got.get_json()["phone"] == "13800000061"
        patched = client.patch(f"/api/v1/villagers/{v['id']}", json={"notes": "放在小卖部"}, headers=agent)
        assert patched.status_code == 200 and patched.get_json()["notes"] == "放在小卖部"

    def test_a_retried_create_returns_the_same_villager(self, client, session, world, bearer):
        agent = {**bearer(world.agent), "Idempotency-Key": "drop-1"}
        first = client.post("/api/v1/villagers", json=body(world), headers=agent)
        again = client.post("/api/v1/villagers", json=body(world), headers=agent)
        assert first.status_code == again.status_code == 201
        assert first.get_json()["id"] == again.get_json()["id"]
        assert count(session, Villager) == 1

    def test_registered_twice_is_409_in_chinese(self, client, session, world, bearer):
        agent = bearer(world.agent)
        assert client.post("/api/v1/villagers", json=body(world), headers=agent).status_code == 201
        resp = client.post("/api/v1/villagers", json=body(world), headers=agent)
        assert resp.status_code == 409
        data = resp.get_json()
        assert data["code"] == "conflict" or data["code"]
        assert "已登记" in data["message"], data
        assert count(session, Villager) == 1

    def test_a_village_outside_the_town_is_422(self, client, session, world, bearer):
        resp = client.post(
            "/api/v1/villagers",
            json=body(world, village_code=world.far_village.code),
            headers=bearer(world.agent),
        )
        assert resp.status_code == 422 and "village_code" in resp.get_json()["errors"]
        bad = client.post(
            "/api/v1/villagers", json=body(world, consent_method="nod"), headers=bearer(world.agent)
        )
        assert bad.status_code == 422 and "consent_method" in bad.get_json()["errors"]
        assert count(session, Villager) == 0

    def test_other_points_and_strangers(self, client, session, world, bearer, make_user):
        v = client.post(
            "/api/v1/villagers", json=body(world, phone="13800000061"), headers=bearer(world.agent)
        )
        vid = v.get_json()["id"]
        other = bearer(world.other_agent)
        assert client.get(f"/api/v1/villagers/{vid}", headers=other).status_code == 404
        assert client.patch(f"/api/v1/villagers/{vid}", json={"notes": "x"}, headers=other).status_code == 404
        assert client.get(f"/api/v1/villagers?point_id={world.point.id}", headers=other).status_code == 403
        resp = client.post(
            "/api/v1/villagers", json=body(world, name="李大山", point_id=world.point.id), headers=other
        )
        assert resp.status_code == 403
        assert client.get("/api/v1/villagers", headers=bearer(world.buyer)).status_code == 403
        assert client.get(f"/api/v1/villagers/{vid}", headers=bearer(world.buyer)).status_code == 404
        assert client.get("/api/v1/villagers").status_code == 401
        staff = bearer(make_user(Role.COUNTY_STAFF, county_code=COUNTY))
        got = client.get(f"/api/v1/villagers/{vid}", headers=staff).get_json()
        assert (got["name"], got["phone"], got["full"]) == ("王秀英", "13800000061", True)
        listed = client.get(f"/api/v1/villagers?point_id={world.point.id}", headers=staff).get_json()
        assert [x["id"] for x in listed] == [vid]
        assert client.patch(f"/api/v1/villagers/{vid}", json={"notes": "x"}, headers=staff).status_code == 403
        assert count(session, Villager) == 1

    def test_in_the_openapi_document(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        assert {"get", "post"} <= set(paths["/api/v1/villagers"])
        assert "409" in paths["/api/v1/villagers"]["post"]["responses"]
        assert {"get", "patch"} <= set(paths["/api/v1/villagers/{villager_id}"])


class TestPages:
    def test_agent_registers_and_finds_a_villager(self, as_user, session, world):
        client = as_user(world.agent)
        page = client.get("/agent/villagers/")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "登记村民" in html
        key = "0123456789abcdef0123456789abcdef"
        form = {
            "key": key,
            "name": "王秀英",
            "village_code": world.village.code,
            "phone": "",
            "notes": "送到女儿家",
            "consent_method": "paper",
            "submit": "1",
        }
        resp = client.post("/agent/villagers/", data=form)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        again = client.post("/agent/villagers/", data=form)  # the form resent: the same villager
        assert again.status_code == 302 and again.headers["Location"] == resp.headers["Location"]
        assert count(session, Villager) == 1
        dup = client.post("/agent/villagers/", data={**form, "key": "f" * 32})
        assert dup.status_code == 409 and "已登记" in dup.get_data(as_text=True)
        listed = client.get("/agent/villagers/?q=wxy").get_data(as_text=True)
        assert "王秀英" in listed and "送到女儿家" in listed
        shown = client.get(resp.headers["Location"])
        assert shown.status_code == 200 and "签了纸质同意书" in shown.get_data(as_text=True)

    def test_other_agents_and_buyers(self, as_user, session, world, make_user):
        from services import villagers

        v = villagers.register_villager(
            session, world.agent, villagers.VillagerInput(name="王秀英", village_code=world.village.code)
        )
        assert as_user(world.other_agent).get(f"/agent/villagers/{v.id}").status_code == 404
        assert as_user(world.buyer).get("/agent/villagers/").status_code == 403
        staff = as_user(make_user(Role.COUNTY_STAFF, county_code=COUNTY))
        assert "王秀英" in staff.get(f"/agent/villagers/?point={world.point.id}").get_data(as_text=True)
        assert staff.get(f"/agent/villagers/{v.id}").status_code == 200
