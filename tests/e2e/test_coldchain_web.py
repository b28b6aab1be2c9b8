"""The cold chain over HTTP (issue 12, items 7 and 9): loggers send readings to
POST /api/v1/readings with their own token (or a staff token), partial results by item; county and
DC staff register loggers, upload CSV files from Excel and see and acknowledge their county's
excursions with the lots affected; messages in Chinese, never a 500, nothing half-written."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from sqlalchemy import select

from domain import Excursion, ExcursionLot, Role, TemperatureLogger, TemperatureReading
from services.logistics import coldchain
from tests.conftest import NOW, count
from tests.factories import cold_chain, cold_trip

READINGS = "/api/v1/readings"
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture()
def van(session, world):  # type: ignore[no-untyped-def]
    return cold_chain(session, world)


@pytest.fixture()
def trip(session, market, gateway, world, van, first_village, clock):  # type: ignore[no-untyped-def]
    return cold_trip(session, market, gateway, world, van, first_village, clock)


@pytest.fixture()
def van_logger(session, world, van):  # type: ignore[no-untyped-def]
    return coldchain.register_logger(
        session, world.county_staff, serial="VAN-1", place=f"vehicle:{van.id}", storage_class="chilled"
    )


def items(serial: str, temps: list[float], start=None) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    start = start or NOW + 3 * H
    return [
        {"logger": serial, "at": (start + i * 10 * M).isoformat(), "celsius": t} for i, t in enumerate(temps)
    ]


def logger_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"}


class TestApi:
    def test_a_logger_sends_its_batch_and_a_resend_changes_nothing(self, client, session, trip, van_logger):
        body = {"readings": items("VAN-1", [3.0, 8.0, 8.5, 9.0, 8.0, 3.0])}
        first = client.post(READINGS, json=body, headers=logger_auth(van_logger.token))
        assert first.status_code == 200, first.get_json()
        answer = first.get_json()
        assert (answer["accepted"], answer["duplicates"], answer["errors"]) == (6, 0, [])
        (ex,) = answer["excursions"]
        assert ex["logger"] == "VAN-1" and ex["worst_celsius"] == 9.0 and ex["lots"] == 1
        again = client.post(READINGS, json=body, headers=logger_auth(van_logger.token)).get_json()
        assert (again["accepted"], again["duplicates"], again["excursions"]) == (0, 6, [])
        assert count(session, TemperatureReading) == 6 and count(session, Excursion) == 1

    def test_bad_items_come_back_by_index_in_chinese_the_rest_is_kept(
        self, client, session, world, trip, van_logger
    ):
        body = {
            "readings": [
                *items("VAN-1", [3.0]),
                {"logger": "VAN-1", "at": "2026-11-26 14:30", "celsius": 3.0},  # no offset
                {"logger": "VAN-1", "at": (NOW + 4 * H).isoformat(), "celsius": 500},
                {"logger": "GHOST-9", "at": (NOW + 4 * H).isoformat(), "celsius": 3.0},
            ]
        }
        answer = client.post(READINGS, json=body, headers=logger_auth(van_logger.token)).get_json()
        assert answer["accepted"] == 1 and answer["error_count"] == 3
        assert [e["index"] for e in answer["errors"]] == [1, 2, 3]
        messages = [e["message"] for e in answer["errors"]]
        assert "VAN-1" in messages[2]  # this token sends VAN-1's readings only
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in m) for m in messages), messages

    def test_a_staff_token_sends_for_the_loggers_that_person_manages(
        self, client, session, bearer, world, trip, van_logger
    ):
        body = {"readings": items("VAN-1", [3.0, 3.1])}
        ours = client.post(READINGS, json=body, headers=bearer(world.county_staff))
        assert ours.status_code == 200 and ours.get_json()["accepted"] == 2
        theirs = client.post(READINGS, json=body, headers=bearer(world.county_staff_sd)).get_json()
        assert theirs["accepted"] == 0 and [e["index"] for e in theirs["errors"]] == [0, 1]
        assert client.post(READINGS, json=body, headers=bearer(world.agent)).status_code == 403

    def test_no_token_a_wrong_token_or_a_switched_off_logger(self, client, session, trip, van_logger):
        body = {"readings": items("VAN-1", [3.0])}
        assert client.post(READINGS, json=body).status_code == 401
        assert client.post(READINGS, json=body, headers=logger_auth("lgr_nope")).status_code == 401
        van_logger.logger.active = False
        session.commit()
        assert client.post(READINGS, json=body, headers=logger_auth(van_logger.token)).status_code == 401

    @pytest.mark.parametrize("body", [{"readings": []}, {"readings": "3.0"}, {}, {"readings": [1] * 10_001}])
    def test_a_batch_that_cannot_be_read_is_a_422(self, client, session, van_logger, body):
        resp = client.post(READINGS, json=body, headers=logger_auth(van_logger.token))
        assert resp.status_code == 422, resp.get_json()
        assert resp.get_json()["message"] and count(session, TemperatureReading) == 0


def gbk(rows: list[tuple[str, str, str]], header: str = "记录仪编号,采集时间,温度(℃)") -> bytes:
    return "\r\n".join([header] + [",".join(r) for r in rows]).encode("gbk")


def local(at) -> str:  # type: ignore[no-untyped-def]
    return (at + 8 * H).strftime("%Y/%m/%d %H:%M")


def form_of(serial: str, van) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"serial": serial, "place": f"vehicle:{van.id}", "storage_class": "chilled"}


class TestPages:
    def test_staff_register_a_logger_and_see_its_token_once(self, as_user, session, world, van):
        page = as_user(world.county_staff)
        form = page.get("/coldchain/loggers").get_data(as_text=True)
        assert "登记记录仪" in form and "粤M·L0001" in form
        made = page.post("/coldchain/loggers", data=form_of("VAN-7", van))
        assert made.status_code == 201
        text = made.get_data(as_text=True)
        (logger,) = session.scalars(select(TemperatureLogger))
        token = text.split('<code class="token" style="word-break: break-all">')[1].split("<")[0]
        assert coldchain.authenticate_logger(session, token).id == logger.id
        assert token not in page.get("/coldchain/loggers").get_data(as_text=True)
        twice = page.post("/coldchain/loggers", data=form_of("VAN-7", van))
        assert twice.status_code == 409 and "已登记" in twice.get_data(as_text=True)
        # The token lost: a new one, the old one stops working.
        renewed = page.post(f"/coldchain/loggers/{logger.id}/token")
        assert renewed.status_code == 200 and "旧令牌已失效" in renewed.get_data(as_text=True)
        fresh = renewed.get_data(as_text=True).split('<code class="token" style="word-break: break-all">')[1]
        assert coldchain.authenticate_logger(session, fresh.split("<")[0]).id == logger.id
        assert coldchain.authenticate_logger(session, token) is None
        assert as_user(world.county_staff_sd).post(f"/coldchain/loggers/{logger.id}/token").status_code == 404
        # 顺德's staff cannot mount one in 梅县's van.
        other = as_user(world.county_staff_sd).post("/coldchain/loggers", data=form_of("VAN-8", van))
        assert other.status_code == 403 and count(session, TemperatureLogger) == 1

    def test_a_gbk_csv_upload_then_the_excursion_acknowledged(
        self, as_user, session, world, trip, van_logger
    ):
        page = as_user(world.county_staff)
        temps = ["3.0", "8.0", "8.0", "8.5", "8.0", "2.5"]
        rows = [("VAN-1", local(NOW + 3 * H + i * 10 * M), t) for i, t in enumerate(temps)]
        done = page.post(
            "/coldchain/upload",
            data={"file": (BytesIO(gbk(rows)), "记录仪导出.csv")},
            content_type="multipart/form-data",
        )
        assert done.status_code == 200, done.get_data(as_text=True)
        assert "已保存 6 条读数" in done.get_data(as_text=True)
        listing = page.get("/coldchain/excursions").get_data(as_text=True)
        (ex,) = session.scalars(select(Excursion))
        assert "VAN-1" in listing and trip.code in listing and "0～4℃" in listing
        for _ in range(2):  # the second click changes nothing
            assert page.post(f"/coldchain/excursions/{ex.id}/acknowledge").status_code == 302
        session.refresh(ex)
        assert ex.acknowledged_by_id == world.county_staff.id
        assert "没有未处理的温度异常" in page.get("/coldchain/excursions").get_data(as_text=True)
        assert count(session, ExcursionLot) == 1

    @pytest.mark.parametrize(
        ("data", "says"),
        [
            (gbk([("VAN-1", "2026/11/26 12:00", "3.0")], header="编号,时间,读数"), "记录仪编号"),
            (gbk([("VAN-1", "2026/11/26 12:00", "3.0"), ("VAN-1", "2026/11/26 12:10", "95")]), "第 3 行"),
            (gbk([("NOBODY", "2026/11/26 12:00", "3.0")]), "NOBODY"),
        ],
    )
    def test_a_bad_file_is_a_form_error_in_chinese_and_nothing_is_written(
        self, as_user, session, world, trip, van_logger, data, says
    ):
        resp = as_user(world.county_staff).post(
            "/coldchain/upload", data={"file": (BytesIO(data), "t.csv")}, content_type="multipart/form-data"
        )
        assert resp.status_code == 422
        text = resp.get_data(as_text=True)
        assert says in text and "field-error" in text, text
        assert count(session, TemperatureReading) == 0

    def test_people_without_a_node_have_no_cold_chain_pages(self, as_user, make_user, world):
        page = as_user(make_user(Role.BUYER))
        for url in ("/coldchain/excursions", "/coldchain/loggers", "/coldchain/upload"):
            assert page.get(url).status_code == 403
        assert as_user(world.agent).get("/coldchain/excursions").status_code == 403
