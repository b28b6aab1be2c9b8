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

from domain import Lot, LotEvent, TemperatureLogger
from services.logistics import chain, scans
from services.orders import checkout
from tests.conftest import PROJECT_ROOT
from tests.factories import carry, city_address, handed_in

SCHEMA = Path(os.environ.get("EPCIS_SCHEMA", PROJECT_ROOT / ".venv/share/epcis/EPCIS-JSON-Schema.json"))


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


class TestTheColdChainOnTheTrace:
    """The lot in a refrigerated van whose logger saw 50 minutes above 4 ℃ while it was aboard."""

    @pytest.fixture()
    def cold_lot(self, session, market, gateway, world, first_village, clock):  # type: ignore[no-untyped-def]
        from services.logistics import coldchain
        from services.logistics.coldchain import Source
        from tests.conftest import NOW
        from tests.factories import cold_chain, cold_trip

        van = cold_chain(session, world)
        lot = cold_trip(session, market, gateway, world, van, first_village, clock)
        logger = coldchain.register_logger(
            session, world.county_staff, serial="VAN-T", place=f"vehicle:{van.id}", storage_class="chilled"
        )
        temps = [3.0, 3.5, 3.2, 8.0, 9.5, 8.5, 8.1, 8.0, 3.0, 2.8]
        start = NOW + timedelta(hours=3)
        readings = [
            {"logger": "VAN-T", "at": (start + i * timedelta(minutes=10)).isoformat(), "celsius": t}
            for i, t in enumerate(temps)
        ]
        result = coldchain.ingest_batch(session, Source(logger=logger.logger), readings)
        assert result.accepted == 10
        session.commit()
        return lot

    def test_the_excursion_is_in_the_chain_once_and_it_verifies(self, session, cold_lot):
        from services.logistics import coldchain, trace
        from services.logistics.coldchain import Source

        kinds = [e.kind for e in session.scalars(select(LotEvent).where(LotEvent.lot_id == cold_lot.id))]
        assert kinds.count("excursion") == 1
        assert trace.verify_lot(session, cold_lot).ok
        # The same readings again: nothing new in the chain.
        logger = session.scalars(select(TemperatureLogger)).one()
        again = [
            {"logger": "VAN-T", "at": r.at.isoformat(), "celsius": r.celsius_tenths / 10}
            for r in coldchain.readings_for_lot(session, cold_lot)
        ]
        coldchain.ingest_batch(session, Source(logger=logger), again)
        assert [
            e.kind for e in session.scalars(select(LotEvent).where(LotEvent.lot_id == cold_lot.id))
        ].count("excursion") == 1

    def test_the_page_draws_the_temperatures_with_the_excursion(self, client, cold_lot):
        text = client.get(f"/t/{cold_lot.code}").get_data(as_text=True)
        assert (
            'data-verified="yes"' in text and 'data-readings="10"' in text and 'data-excursions="1"' in text
        )
        assert (
            '<svg class="temperature-chart"' in text and 'class="excursion"' in text and "<polyline" in text
        )
        assert "9.5 ℃" in text and "50" in text and 'data-kind="excursion"' in text

    def test_the_epcis_export_carries_the_excursion_as_sensor_data(self, client, cold_lot):
        document = json.loads(client.get(f"/api/v1/trace/{cold_lot.code}/epcis").get_data(as_text=True))
        validator = jsonschema_rs.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
        assert [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)] == []
        (cold,) = [e for e in document["epcisBody"]["eventList"] if "sensorElementList" in e]
        (report,) = cold["sensorElementList"][0]["sensorReport"]
        assert report == {
            "type": "Temperature",
            "minValue": 8.0,
            "maxValue": 9.5,
            "uom": "CEL",
            "exception": "ALARM_CONDITION",
        }
        assert cold["sensorElementList"][0]["sensorMetadata"]["deviceID"].endswith(":logger:VAN-T")
