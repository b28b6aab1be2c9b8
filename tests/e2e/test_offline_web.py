"""What the server does for the agent's offline queue (marketplace/web/offline): the service
worker at the site root with its settings, the fresh CSRF token, redirects as JSON for a form sent
by offline.js (a replay applied once, a refusal kept as the page with its message, a logged-out
replay never taken for done), the pages marked for the offline cache, the script only for agents.
The queue itself runs in the browser: tests/browser/test_offline.py."""

from __future__ import annotations

import json

import pytest

from domain import Role, Villager
from tests.conftest import count
from tests.factories import World, build_world

SUBMIT = {"X-Offline-Submit": "replay"}


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


def registration(w: World, key: str, name: str = "王秀英") -> dict[str, str]:
    return {
        "key": key,
        "name": name,
        "village_code": w.village.code,
        "phone": "",
        "notes": "",
        "consent_method": "in_person",
        "submit": "1",
    }


def test_the_service_worker_is_served_from_the_root_with_its_settings(client):
    resp = client.get("/sw.js")
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == "no-cache"
    first, rest = resp.get_data(as_text=True).split("\n", 1)
    assert first.startswith("self.OFFLINE_CONFIG = ") and first.endswith(";")
    config = json.loads(first.removeprefix("self.OFFLINE_CONFIG = ").rstrip(";"))
    assert config["core"].startswith("/static/js/offline.js?v=")
    assert config["pages"] == ["/workspace", "/agent/", "/scan"]
    assert config["clear"] == ["/auth/login", "/auth/logout"]
    assert (config["offline"], config["csrf"], config["static"]) == ("/offline", "/offline/csrf", "/static/")
    assert len(config["version"]) == 12
    assert "importScripts(C.core)" in rest
    assert client.get("/offline").status_code == 200


def test_a_fresh_csrf_token_for_the_logged_in_only(client, as_user, world):
    anonymous = client.get("/offline/csrf")
    assert anonymous.status_code == 401 and anonymous.headers["Cache-Control"] == "no-store"
    resp = as_user(world.agent).get("/offline/csrf")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    data = resp.get_json()
    assert data["user"] == world.agent.id and data["field"] == "csrf_token" and data["token"]


def test_only_an_agent_gets_the_queue_and_the_cacheable_pages(as_user, world):
    agent = as_user(world.agent)
    page = agent.get("/agent/villagers/")
    html = page.get_data(as_text=True)
    assert page.headers.get("X-Offline-Cacheable") == "1"
    assert 'id="offline-queue"' in html and "/static/js/offline.js?v=" in html
    assert "data-offline-label=" in html and "data-offline-skip" in html
    assert agent.get("/workspace").headers.get("X-Offline-Cacheable") == "1"
    assert "X-Offline-Cacheable" not in agent.get("/").headers  # not an agent's page
    buyer = as_user(world.buyer)
    page = buyer.get("/workspace")
    assert "X-Offline-Cacheable" not in page.headers
    assert "offline.js" not in page.get_data(as_text=True)
    assert "offline-queue" not in page.get_data(as_text=True)


def test_a_replay_gets_its_redirect_as_json_and_is_applied_once(as_user, session, world):
    agent = as_user(world.agent)
    form = registration(world, "0123456789abcdef0123456789abcdef")
    first = agent.post("/agent/villagers/", data=form, headers=SUBMIT)
    assert first.status_code == 200, first.get_data(as_text=True)
    location = first.get_json()["location"]
    assert "/agent/villagers/" in location and first.headers["X-Offline-Location"] == location
    assert "Location" not in first.headers and first.headers["Cache-Control"] == "no-store"
    # The answer was lost and the queue sends it again: the first result, nothing new.
    again = agent.post("/agent/villagers/", data=form, headers=SUBMIT)
    assert again.status_code == 200 and again.get_json()["location"] == location
    assert count(session, Villager) == 1
    # The flash message waits in the session for the page the script then opens.
    assert "已登记" in agent.get(location).get_data(as_text=True)
    # Without the header nothing changes: the redirect as before.
    plain = agent.post("/agent/villagers/", data=form)
    assert plain.status_code == 302 and plain.headers["Location"] == location


def test_a_refused_replay_keeps_the_page_and_its_message(as_user, session, world):
    agent = as_user(world.agent)
    first = agent.post("/agent/villagers/", data=registration(world, "a" * 32), headers=SUBMIT)
    assert first.status_code == 200
    dup = agent.post("/agent/villagers/", data=registration(world, "b" * 32), headers=SUBMIT)
    assert dup.status_code == 409
    assert 'role="alert"' in dup.get_data(as_text=True) and "已登记" in dup.get_data(as_text=True)
    assert count(session, Villager) == 1


def test_a_logged_out_replay_is_401_never_done(client, session, world):
    resp = client.post("/agent/villagers/", data=registration(world, "c" * 32), headers=SUBMIT)
    assert resp.status_code == 401
    assert resp.get_json()["login"].startswith("/auth/login")
    assert count(session, Villager) == 0


def test_people_who_work_at_a_node_get_the_queue_buyers_and_farmers_do_not(as_user, make_user, world):
    """Everyone who scans at a node (authz.works_at) keeps working offline: county and DC staff
    as well as agents; their scan page may be kept by the service worker."""
    county = as_user(make_user(Role.COUNTY_STAFF, county_code=world.point.county_code))
    dc = make_user(Role.DC_STAFF, node_id=world.point.id)  # the scope does not matter here
    for staff in (county, as_user(dc)):
        assert "offline-queue" in staff.get("/workspace").get_data(as_text=True)
    scan_page = as_user(world.agent).get("/scan")
    assert scan_page.status_code == 200 and scan_page.headers.get("X-Offline-Cacheable") == "1"
    for other in (make_user(Role.BUYER), make_user(Role.FARMER)):
        page = as_user(other).get("/workspace")
        assert "offline-queue" not in page.get_data(as_text=True)
        assert "X-Offline-Cacheable" not in page.headers
