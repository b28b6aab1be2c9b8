"""A lot's public trace after its journey (issue 12, item 8): the page /t/<code> and the API show
every event of its SM3 chain and whether it verifies (and say so when it does not), and the EPCIS
2.0 export validates against GS1's EPCIS JSON Schema (fetched by `make epcis-schema`)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import jsonschema_rs
import pytest
from sqlalchemy import select, update

from domain import Lot, LotEvent
from services.logistics import chain, scans
from services.orders import checkout
from tests.conftest import PROJECT_ROOT
from tests.factories import Logistics, build_logistics, carry, city_address, handed_in

SCHEMA = Path(os.environ.get("EPCIS_SCHEMA", PROJECT_ROOT / ".venv/share/epcis/EPCIS-JSON-Schema.json"))


@pytest.fixture()
def world(session, admin, make_user, market, point, agent) -> Logistics:  # type: ignore[no-untyped-def]
    return build_logistics(session, admin, make_user, point, agent)


@pytest.fixture()
def lot(session, market, gateway, world, first_village, clock) -> Lot:  # type: ignore[no-untyped-def]
    """梅县 pomelos handed in, carried to a 佛山 door and delivered there."""
    sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 2}, address=city_address(first_village))
    clock.advance(timedelta(hours=3))
    carry(session, sub)
    scans.record_scan(session, world.dc_staff_fs, sub.number, "delivered", checkout.new_idempotency_key())
    found = session.scalar(select(Lot).where(Lot.sub_order_id == sub.id))
    assert found is not None
    return found


def test_the_page_shows_every_step_and_that_the_chain_verifies(client, session, lot, world):
    page = client.get(f"/t/{lot.code}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-verified="yes"' in text and "已验证" in text
    kinds = [k for k in ("received", "departed", "arrived", "delivered") if f'data-kind="{k}"' in text]
    assert kinds == ["received", "departed", "arrived", "delivered"]
    assert text.count('data-kind="departed"') == 4 and world.dc.name in text and "送货上门" in text
    assert world.agent.display_name not in text  # nobody's name


def test_a_tampered_event_is_shown_as_not_verified(client, session, lot):
    second = session.scalar(select(LotEvent).where(LotEvent.lot_id == lot.id, LotEvent.seq == 2))
    assert second is not None
    forged = dict(second.event, node=None)
    session.execute(
        update(LotEvent).where(LotEvent.id == second.id).values(body=chain.canonical(forged).decode())
    )
    session.commit()
    text = client.get(f"/t/{lot.code}").get_data(as_text=True)
    assert 'data-verified="no"' in text and "第 2 条" in text
    api = client.get(f"/api/v1/trace/{lot.code}").get_json()
    assert api["verified"] is False and "2" in api["verification"]


def test_the_api_gives_the_steps_with_their_hashes(client, session, lot):
    got = client.get(f"/api/v1/trace/{lot.code}").get_json()
    events = session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id).order_by(LotEvent.seq)).all()
    assert [s["hash"] for s in got["steps"]] == [e.hash for e in events]
    assert got["verified"] is True and got["chain_head"] == lot.chain_head == events[-1].hash
    assert got["steps"][-1]["kind"] == "delivered" and got["steps"][-1]["node"] == ""


def test_the_epcis_export_validates_against_gs1_s_schema(client, session, lot):
    assert SCHEMA.is_file(), f"GS1's EPCIS JSON Schema is missing at {SCHEMA}: run `make epcis-schema`"
    answer = client.get(f"/api/v1/trace/{lot.code}/epcis")
    assert answer.status_code == 200 and answer.mimetype == "application/ld+json"
    document = json.loads(answer.get_data(as_text=True))
    validator = jsonschema_rs.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    events = document["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events][:3] == ["commissioning", "departing", "arriving"]
    assert events[-1]["bizStep"] == "retail_selling" and all(e["type"] == "ObjectEvent" for e in events)
    assert {e["eventID"].rsplit("=", 1)[1] for e in events} == {
        e.hash for e in session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id))
    }
    # The schema is a real check: a document without its events' required fields fails it.
    broken = json.loads(json.dumps(document))
    del broken["epcisBody"]["eventList"][0]["eventTime"]
    assert not validator.is_valid(broken)
    assert client.get("/api/v1/trace/AAAAAAAAAAAAAAAA/epcis").status_code == 404
