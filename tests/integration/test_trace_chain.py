"""A lot's events as an SM3 hash chain (services/logistics/trace.py): the intake starts it, each
scan of its parcel extends it in the scan's transaction, and `verify_lot` catches a changed,
removed or rewritten event, and a scan row edited after the fact. On both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from domain import Lot, LotEvent, Scan
from services.logistics import chain, scans, trace
from services.orders import checkout
from tests.factories import carry, city_address, handed_in


@pytest.fixture()
def travelled(session, market, gateway, world, first_village, clock):  # type: ignore[no-untyped-def]
    """Two lots (two products) handed in, carried to a city door and delivered."""
    sub = handed_in(
        session, market, gateway, world, {"梅县蜜柚": 2, "梅县金柚": 1}, address=city_address(first_village)
    )
    clock.advance(timedelta(hours=2))
    carry(session, sub)
    scans.record_scan(session, world.dc_staff_fs, sub.number, "delivered", checkout.new_idempotency_key())
    return sub


def lots_of(session, sub) -> list[Lot]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Lot).where(Lot.sub_order_id == sub.id).order_by(Lot.id)))


def events_of(session, lot) -> list[LotEvent]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id).order_by(LotEvent.seq)))


class TestTheChainGrowsWithTheParcel:
    def test_each_lot_has_its_intake_then_every_scan_and_it_verifies(self, session, travelled):
        shipment = scans.shipment_of(session, travelled)
        assert shipment is not None
        moves = [s for s in scans.timeline(session, shipment) if s.kind != "collected"]
        lots = lots_of(session, travelled)
        assert len(lots) == 2
        for lot in lots:
            events = events_of(session, lot)
            assert [e.kind for e in events] == ["received"] + [s.kind.value for s in moves]
            assert [e.scan_id for e in events[1:]] == [s.id for s in moves]
            assert events[0].prev_hash == chain.genesis(lot.code) and lot.chain_head == events[-1].hash
            assert (
                events[0].event["weight_g"] == lot.weight_g and events[0].event["node"]["id"] == lot.node_id
            )
            check = trace.verify_lot(session, lot)
            assert check.ok and check.chain.count == len(events)
            # No person in the public chain: no names, phones or notes.
            assert all(
                set(e.event)
                <= {"type", "lot", "at", "node", "product", "grade", "weight_g", "quantity", "scan"}
                for e in events
            )
        # The two lots' chains are their own (each starts from its own genesis).
        assert {e.hash for e in events_of(session, lots[0])}.isdisjoint(
            e.hash for e in events_of(session, lots[1])
        )

    def test_a_repeated_scan_adds_no_event(self, session, market, gateway, world, clock):
        sub = handed_in(session, market, gateway, world, {"梅县蜜柚": 1})
        (lot,) = lots_of(session, sub)
        first_key = checkout.new_idempotency_key()
        scans.record_scan(session, world.agent, sub.number, "departed", first_key, node_id=world.point.id)
        before = len(events_of(session, lot))
        scans.record_scan(session, world.agent, sub.number, "departed", first_key, node_id=world.point.id)
        scans.record_scan(
            session,
            world.agent,
            sub.number,
            "departed",
            checkout.new_idempotency_key(),
            node_id=world.point.id,
        )
        assert len(events_of(session, lot)) == before == 2


class TestTamperingIsCaught:
    def test_an_event_changed_in_place_breaks_the_chain_there(self, session, travelled):
        lot = lots_of(session, travelled)[0]
        third = events_of(session, lot)[2]
        forged = dict(third.event, at="2026-11-20T00:00:00.000000Z")
        session.execute(
            update(LotEvent).where(LotEvent.id == third.id).values(body=chain.canonical(forged).decode())
        )
        session.commit()
        session.expire_all()
        check = trace.verify_lot(session, lot)
        assert not check.ok and check.chain.broken_at == 2 and check.chain.reason == chain.Break.HASH_MISMATCH
        assert "3" in str(check.message)

    def test_the_newest_events_removed_are_caught_by_the_head(self, session, travelled):
        lot = lots_of(session, travelled)[0]
        events = events_of(session, lot)
        session.delete(events[-1])
        session.commit()
        check = trace.verify_lot(session, lot)
        assert not check.ok and check.chain.reason == chain.Break.HEAD_MISMATCH

    def test_a_scan_row_edited_after_the_fact_no_longer_matches_its_event(self, session, travelled):
        lot = lots_of(session, travelled)[0]
        events = events_of(session, lot)
        session.execute(
            update(Scan)
            .where(Scan.id == events[3].scan_id)
            .values(scanned_at=events[3].happened_at - timedelta(days=1))
        )
        session.commit()
        session.expire_all()
        check = trace.verify_lot(session, lot)
        assert check.chain.ok and not check.ok and check.source_mismatch_at == 3
        assert "4" in str(check.message)

    def test_a_lot_re_graded_after_the_fact_no_longer_matches_its_received_event(self, session, travelled):
        lot = lots_of(session, travelled)[0]
        session.execute(update(Lot).where(Lot.id == lot.id).values(weight_g=lot.weight_g + 500))
        session.commit()
        session.expire_all()
        check = trace.verify_lot(session, lot)
        assert check.chain.ok and check.source_mismatch_at == 0


class TestThePublicTrace:
    def test_the_trace_shows_the_chain_s_steps_and_verdict(self, session, travelled, market):
        lot = lots_of(session, travelled)[0]
        seen = trace.lot_trace(session, lot.code.lower())
        assert seen.check.ok and seen.steps[0].kind == "received" and seen.steps[-1].kind == "delivered"
        assert seen.steps[1].node and seen.steps[-1].node == ""  # delivered at the door
        assert seen.farmer == "梅县柚园"  # the shop's name, never the farmer's own (梅县柚农)

    def test_an_unknown_code_is_not_found(self, session):
        from services.errors import NotFound

        with pytest.raises(NotFound):
            trace.lot_trace(session, "NOSUCHLOT0000000")
