"""The cold chain (issue 12, item 7): readings stored and attributed to the lots in a vehicle or a
cold store, excursions beyond the grace period marking those lots and alerting staff, idempotent
resends, and CSV uploads from Chinese Excel all or nothing (services/logistics/coldchain.py), on
both databases.

The world: a 梅县 farmer's lot handed in at their point at NOW, carried to the 梅县 county center,
then in a refrigerated van based there to the 梅州 DC, whose cold store has a logger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain import (
    Excursion,
    ExcursionLot,
    Notification,
    NotificationEvent,
    StorageClass,
    TemperatureReading,
)
from services.errors import Forbidden, ValidationError
from services.logistics import coldchain
from services.logistics.coldchain import Source
from tests.conftest import NOW, count
from tests.factories import cold_chain, cold_trip

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture()
def van(session, world):  # type: ignore[no-untyped-def]
    return cold_chain(session, world)


@pytest.fixture()
def trip(session, market, gateway, world, van, first_village, clock):  # type: ignore[no-untyped-def]
    """The lot: in the van +3 h … +5 h, in the DC's store +5 h … +9 h; the clock at +10 h."""
    return cold_trip(session, market, gateway, world, van, first_village, clock)


@pytest.fixture()
def loggers(session, world, van):  # type: ignore[no-untyped-def]
    """A chilled logger in the van (registered by 梅县's staff) and one in the DC's cold store (by
    the DC's staff)."""
    in_van = coldchain.register_logger(
        session, world.county_staff, serial="VAN-1", place=f"vehicle:{van.id}", storage_class="chilled"
    )
    in_store = coldchain.register_logger(
        session, world.dc_staff, serial="DC-COLD-1", place=f"node:{world.dc.id}", storage_class="chilled"
    )
    return in_van, in_store


def batch(serial: str, start: datetime, temps: list[float], step: timedelta = 10 * M) -> list[dict]:  # type: ignore[type-arg]
    return [
        {"logger": serial, "at": (start + i * step).isoformat(), "celsius": t} for i, t in enumerate(temps)
    ]


def alerts(session) -> list[Notification]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(select(Notification).where(Notification.event == NotificationEvent.COLD_EXCURSION))
    )


class TestAttribution:
    def test_the_lot_is_in_the_van_on_its_leg_then_in_the_dc_s_store(self, session, world, van, trip):
        in_van = coldchain.lots_in(session, vehicle_id=van.id, start=NOW + 3.5 * H, end=NOW + 3.5 * H)
        assert [s.lot_id for s in in_van] == [trip.id]
        assert in_van[0].start == NOW + 3 * H and in_van[0].end == NOW + 5 * H
        # Arrived at +5 h: from then on it is in the store, no longer in the van.
        assert coldchain.lots_in(session, vehicle_id=van.id, start=NOW + 5 * H, end=NOW + 6 * H) == []
        assert coldchain.lots_in(session, vehicle_id=van.id, start=NOW, end=NOW + 2.9 * H) == []
        in_store = coldchain.lots_in(session, node_id=world.dc.id, start=NOW + 5 * H, end=NOW + 5 * H)
        assert [(s.lot_id, s.start, s.end) for s in in_store] == [(trip.id, NOW + 5 * H, NOW + 9 * H)]
        assert coldchain.lots_in(session, node_id=world.dc.id, start=NOW + 9 * H, end=NOW + 10 * H) == []
        # At its origin point from the intake until it left; at the center between its legs.
        at_point = coldchain.lots_in(session, node_id=world.point.id, start=NOW, end=NOW + 0.5 * H)
        assert [s.lot_id for s in at_point] == [trip.id]
        at_center = coldchain.lots_in(
            session, node_id=world.center.id, start=NOW + 2.5 * H, end=NOW + 2.5 * H
        )
        assert [(s.start, s.end) for s in at_center] == [(NOW + 2 * H, NOW + 3 * H)]

    def test_a_lot_s_readings_are_those_of_its_path_only(self, session, world, trip, loggers):
        _in_van, in_store = loggers
        c = Source(user=world.county_staff)
        coldchain.ingest_batch(
            session,
            c,
            batch("VAN-1", NOW + 2 * H, [2.0])
            + batch("VAN-1", NOW + 4 * H, [3.0])
            + batch("VAN-1", NOW + 6 * H, [1.0]),
        )
        coldchain.ingest_batch(
            session,
            Source(logger=in_store.logger),
            batch("DC-COLD-1", NOW + 4 * H, [2.5]) + batch("DC-COLD-1", NOW + 7 * H, [3.5]),
        )
        got = [(r.serial, r.at, r.celsius_tenths) for r in coldchain.readings_for_lot(session, trip)]
        assert got == [("VAN-1", NOW + 4 * H, 30), ("DC-COLD-1", NOW + 7 * H, 35)]


class TestExcursions:
    def test_beyond_the_grace_period_marks_the_lot_aboard_and_alerts_the_county_staff(
        self, session, world, trip, loggers
    ):
        in_van, _store = loggers
        # Every 10 minutes from +3 h: 8 ℃ from +3:30 to +4:10, back to 3 ℃ at +4:20: 50 minutes.
        temps = [3.0, 3.5, 3.2, 8.0, 9.5, 8.5, 8.1, 8.0, 3.0, 2.8]
        result = coldchain.ingest_batch(
            session, Source(logger=in_van.logger), batch("VAN-1", NOW + 3 * H, temps)
        )
        assert result.accepted == 10 and result.errors == []
        (ex,) = session.scalars(select(Excursion))
        assert (ex.started_at, ex.ended_at, ex.minutes, ex.worst_tenths) == (
            NOW + 3.5 * H,
            NOW + 4 * H + 20 * M,
            50,
            95,
        )
        assert (ex.min_tenths, ex.max_tenths, ex.storage_class) == (80, 95, StorageClass.CHILLED)
        assert ex.county_code == world.center.county_code
        assert session.scalars(select(ExcursionLot.lot_id)).all() == [trip.id]
        (alert,) = alerts(session)
        assert alert.user_id == world.county_staff.id and alert.order_id is None
        from services import notify

        text = notify.render(session, alert, None)  # type: ignore[arg-type]
        assert "VAN-1" in text and "0～4℃" in text and "9.5℃" in text and "1个批次" in text

    def test_within_the_grace_period_nothing_is_raised(self, session, world, trip, loggers):
        _van, in_store = loggers
        # A door opened at +6 h: 7 ℃ for 20 minutes, then back.
        temps = [2.0, 7.0, 7.5, 2.5, 2.0]
        coldchain.ingest_batch(
            session, Source(logger=in_store.logger), batch("DC-COLD-1", NOW + 6 * H, temps)
        )
        assert count(session, Excursion) == 0 and alerts(session) == []

    def test_an_excursion_in_the_store_marks_the_lots_stored_then_not_those_gone(
        self, session, world, trip, loggers
    ):
        _van, in_store = loggers
        # In the store 5 h … 9 h; the excursion from +9:15 is after the lot left.
        c = Source(logger=in_store.logger)
        coldchain.ingest_batch(session, c, batch("DC-COLD-1", NOW + 6 * H, [2.0, 6.0, 6.0, 6.0, 6.0, 2.0]))
        coldchain.ingest_batch(
            session, c, batch("DC-COLD-1", NOW + 9 * H + 5 * M, [2.0, 6.0, 6.0, 6.0, 6.0, 2.0])
        )
        first, second = session.scalars(select(Excursion).order_by(Excursion.started_at))
        links = session.execute(select(ExcursionLot.excursion_id, ExcursionLot.lot_id)).all()
        assert links == [(first.id, trip.id)]
        # The DC's staff and 梅江's county staff (none here) are told; 梅县's staff are not.
        assert {a.user_id for a in alerts(session)} == {world.dc_staff.id}
        assert second.id != first.id

    def test_a_resent_batch_writes_nothing_and_alerts_once(self, session, world, trip, loggers):
        in_van, _store = loggers
        items = batch("VAN-1", NOW + 3 * H, [3.0, 8.0, 8.0, 8.0, 8.0, 3.0])
        first = coldchain.ingest_batch(session, Source(logger=in_van.logger), items)
        again = coldchain.ingest_batch(session, Source(logger=in_van.logger), items)
        assert (first.accepted, again.accepted, again.duplicates) == (6, 0, 6)
        assert count(session, TemperatureReading) == 6
        assert count(session, Excursion) == 1 and len(alerts(session)) == 1

    def test_readings_sent_late_join_the_excursion_they_belong_to(self, session, world, trip, loggers):
        in_van, _store = loggers
        c = Source(logger=in_van.logger)
        coldchain.ingest_batch(session, c, batch("VAN-1", NOW + 3 * H, [3.0, 8.0, 8.0]))  # open-ended, 20 min
        assert count(session, Excursion) == 0
        coldchain.ingest_batch(session, c, batch("VAN-1", NOW + 3.5 * H, [8.0, 8.0, 3.0]))
        (ex,) = session.scalars(select(Excursion))
        assert (ex.started_at, ex.ended_at, ex.open_ended) == (
            NOW + 3 * H + 10 * M,
            NOW + 3 * H + 50 * M,
            False,
        )
        # Acknowledged, then a reading inside it corrected nothing: still one, still acknowledged.
        coldchain.acknowledge(session, world.county_staff, ex.id)
        coldchain.acknowledge(session, world.county_staff, ex.id)
        coldchain.ingest_batch(session, c, batch("VAN-1", NOW + 3 * H + 25 * M, [9.0]))
        (ex,) = session.scalars(select(Excursion))
        assert ex.acknowledged_by_id == world.county_staff.id and ex.worst_tenths == 90

    def test_a_different_temperature_for_a_stored_instant_is_refused_the_rest_kept(
        self, session, world, trip, loggers
    ):
        in_van, _store = loggers
        c = Source(logger=in_van.logger)
        coldchain.ingest_batch(session, c, batch("VAN-1", NOW + 3 * H, [3.0]))
        result = coldchain.ingest_batch(session, c, batch("VAN-1", NOW + 3 * H, [3.5, 3.0]))
        assert result.accepted == 1 and [e.index for e in result.errors] == [0]
        assert "3.0" in str(result.errors[0].message)


class TestBatches:
    def test_bad_items_are_reported_by_index_and_the_good_ones_kept(self, session, world, trip, loggers):
        in_van, _store = loggers
        items = [
            {"logger": "VAN-1", "at": (NOW + 3 * H).isoformat(), "celsius": 2.0},
            {"logger": "VAN-1", "at": "yesterday", "celsius": 2.0},
            {"logger": "VAN-1", "at": (NOW + 4 * H).isoformat(), "celsius": 150},
            {"logger": "NOBODY", "at": (NOW + 4 * H).isoformat(), "celsius": 2.0},
            {"logger": "DC-COLD-1", "at": (NOW + 4 * H).isoformat(), "celsius": 2.0},
            {"logger": "VAN-1", "at": (NOW + 5 * H).isoformat(), "celsius": "3.1℃"},
        ]
        by_logger = coldchain.ingest_batch(session, Source(logger=in_van.logger), items)
        assert by_logger.accepted == 2 and [e.index for e in by_logger.errors] == [1, 2, 3, 4]
        # 梅县's staff manage the van's logger, not the DC's: "unknown or not yours".
        by_staff = coldchain.ingest_batch(session, Source(user=world.county_staff), items)
        assert by_staff.duplicates == 2 and [e.index for e in by_staff.errors] == [1, 2, 3, 4]
        assert "NOBODY" in str(by_staff.errors[2].message)

    def test_someone_who_manages_no_logger_may_not_send(self, session, market, world):
        with pytest.raises(Forbidden):
            coldchain.ingest_batch(
                session, Source(user=market.buyer), [{"logger": "X", "at": NOW.isoformat(), "celsius": 1}]
            )
        with pytest.raises(Forbidden):
            coldchain.ingest_batch(
                session, Source(user=world.agent), [{"logger": "X", "at": NOW.isoformat(), "celsius": 1}]
            )


def gbk_csv(rows: list[tuple[str, str, str]], header: str = "记录仪编号,采集时间,温度(℃),湿度(%)") -> bytes:
    lines = [header] + [f"{a},{b},{c},55" for a, b, c in rows]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def local(at: datetime) -> str:
    """A time as Chinese Excel writes it: China time, no offset."""
    return (at + 8 * H).astimezone(UTC).strftime("%Y/%m/%d %H:%M")


class TestCsv:
    def test_a_gbk_file_from_excel_is_read_and_its_excursion_found(
        self, session, world, trip, loggers, clock
    ):
        start = NOW + 3 * H
        rows = [
            ("VAN-1", local(start + i * 10 * M), t)
            for i, t in enumerate(["3.0", "8.0", "8.2", "8.0", "8.0", "－1.0"])
        ]
        # "－1.0" (a full-width minus from a Chinese keyboard) is out of range too: below 0.
        rows[-1] = ("VAN-1", local(start + 50 * M), "2.0")
        result = coldchain.ingest_csv(session, world.county_staff, gbk_csv(rows))
        assert result.accepted == 6
        (ex,) = session.scalars(select(Excursion))
        assert ex.started_at == start + 10 * M and ex.minutes == 40
        assert session.scalars(select(ExcursionLot.lot_id)).all() == [trip.id]

    def test_wrong_columns_say_which_and_write_nothing(self, session, world, loggers):
        data = gbk_csv([("VAN-1", local(NOW), "3.0")], header="编号,时间,读数")
        with pytest.raises(ValidationError) as err:
            coldchain.ingest_csv(session, world.county_staff, data)
        assert "记录仪编号" in str(err.value.message) and "读数" in str(err.value.message)
        assert count(session, TemperatureReading) == 0

    def test_one_absurd_temperature_refuses_the_whole_file(self, session, world, loggers):
        rows = [("VAN-1", local(NOW + i * 10 * M), "3.0") for i in range(5)]
        rows[3] = ("VAN-1", local(NOW + 30 * M), "300")
        with pytest.raises(ValidationError) as err:
            coldchain.ingest_csv(session, world.county_staff, gbk_csv(rows))
        assert "row 5" in str(err.value.message) and "300" in str(err.value.message)
        assert count(session, TemperatureReading) == 0

    def test_a_logger_not_one_s_own_refuses_the_whole_file(self, session, world, loggers):
        rows = [("VAN-1", local(NOW), "3.0"), ("DC-COLD-1", local(NOW), "3.0")]
        with pytest.raises(ValidationError) as err:
            coldchain.ingest_csv(session, world.county_staff, gbk_csv(rows))
        assert "DC-COLD-1" in str(err.value.message)
        assert session.scalar(select(func.count()).select_from(TemperatureReading)) == 0


class TestLoggers:
    def test_staff_register_loggers_of_their_own_nodes_only(self, session, world, van):
        from services.errors import Conflict

        with pytest.raises(Forbidden):
            coldchain.register_logger(
                session,
                world.county_staff_sd,
                serial="X1",
                place=f"vehicle:{van.id}",
                storage_class="chilled",
            )
        with pytest.raises(ValidationError):  # the center has no cold store
            coldchain.register_logger(
                session,
                world.county_staff,
                serial="X1",
                place=f"node:{world.center.id}",
                storage_class="chilled",
            )
        made = coldchain.register_logger(
            session, world.county_staff, serial="Ｘ１", place=f"vehicle:{van.id}", storage_class="frozen"
        )
        assert made.logger.serial == "X1" and made.token.startswith("lgr_")
        assert made.logger.token_hash != made.token
        assert coldchain.authenticate_logger(session, made.token).id == made.logger.id
        assert coldchain.authenticate_logger(session, made.token + "x") is None
        with pytest.raises(Conflict):
            coldchain.register_logger(
                session, world.county_staff, serial="X1", place=f"vehicle:{van.id}", storage_class="frozen"
            )
        assert [lg.serial for lg in coldchain.visible_loggers(session, world.county_staff)] == ["X1"]
        assert coldchain.visible_loggers(session, world.dc_staff) == []

    def test_open_excursions_by_county_and_acknowledged_by_its_staff(
        self, session, world, admin, trip, loggers
    ):
        in_van, _store = loggers
        coldchain.ingest_batch(
            session, Source(logger=in_van.logger), batch("VAN-1", NOW + 3 * H, [3.0, 8.0, 8.0, 8.0, 8.0, 3.0])
        )
        (view,) = coldchain.open_excursions(session, world.county_staff)
        assert [lot.id for lot in view.lots] == [trip.id] and view.can_acknowledge
        assert coldchain.open_excursions(session, world.county_staff_sd) == []
        (seen,) = coldchain.open_excursions(session, admin)
        assert not seen.can_acknowledge
        with pytest.raises(Forbidden):
            coldchain.acknowledge(session, admin, view.excursion.id)
        coldchain.acknowledge(session, world.county_staff, view.excursion.id)
        assert coldchain.open_excursions(session, world.county_staff) == []


class TestSilentLoggers:
    def test_a_logger_silent_for_hours_alerts_its_staff_once(self, session, world, trip, loggers, clock):
        from contextlib import nullcontext

        from services import jobs

        in_van, in_store = loggers
        coldchain.ingest_batch(session, Source(logger=in_van.logger), batch("VAN-1", NOW + 9 * H, [3.0]))
        coldchain.ingest_batch(
            session, Source(logger=in_store.logger), batch("DC-COLD-1", NOW + 9.9 * H, [3.0])
        )
        clock.set(NOW + 11.5 * H)
        report = jobs.run_job(lambda: nullcontext(session), "flag-silent-loggers", context=jobs.JobContext())
        assert report.ok and report.result == {"silent": 1, "alerts": 1}
        (alert,) = session.scalars(
            select(Notification).where(Notification.event == NotificationEvent.LOGGER_SILENT)
        )
        assert alert.user_id == world.county_staff.id and alert.params["serial"] == "VAN-1"
        again = coldchain.flag_silent_loggers(session, after=2 * H)
        assert again == {"silent": 1, "alerts": 0}
