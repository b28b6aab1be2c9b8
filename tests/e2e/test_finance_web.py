"""The finance pages over HTTP: an admin sees the books, builds a payout batch, downloads the
bank's files and marks the batch paid; nobody else gets in; a bad holding period writes nothing."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from openpyxl import load_workbook

from domain import (
    LedgerTransaction,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Role,
    SellerKind,
    SellerProfile,
    clock,
)
from services import ledger
from tests.conftest import NOW, count
from tests.factories import DIVISION, RECENTLY, add_seller, add_user, paid_and_completed

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def batch_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-batch-id="(\d+)"', page)]


@pytest.fixture()
def books(session, make_user):  # type: ignore[no-untyped-def]
    """An admin, a buyer, and two sellers owed money for sub-orders completed 10 days ago."""

    class Books:
        pass

    b = Books()
    b.admin = make_user(Role.ADMIN)
    b.buyer = make_user(Role.BUYER)
    b.seller = make_user(Role.FARMER)  # one who can log in
    session.add(
        SellerProfile(
            user_id=b.seller.id, kind=SellerKind.FARMER, shop_name="梅县金柚园", division_code=DIVISION
        )
    )
    b.other = add_seller(session, "平远脐橙合作社")
    buyer = add_user(session)
    paid_and_completed(session, buyer, b.seller, items=12_345, commission=1_000, shipping=99)
    paid_and_completed(session, buyer, b.other, items=50_000, commission=2_500)
    paid_and_completed(session, buyer, b.other, items=7_000, at=RECENTLY)  # still held
    session.commit()
    return b


class TestAdminFlow:
    def test_an_admin_builds_downloads_and_marks_paid_a_batch(self, session, books, as_user):
        client = as_user(books.admin)
        page = client.get("/finance/")
        assert page.status_code == 200
        text = html(page)
        assert 'data-account="buyer_payments_clearing"' in text
        assert f'data-account="seller_payable:{books.seller.id}"' in text
        assert 'data-fen="0"' in text  # the trial balance
        owed = text.split('class="sellers-total"', 1)[1].split("</tr>", 1)[0]
        assert "¥658.45" in owed  # 113.45 + 475.00 + 70.00 (held, still owed)
        assert batch_ids(text) == []

        resp = client.post("/finance/", data={"holding_days": "7"})
        assert resp.status_code == 302
        [batch] = ledger.list_batches(session, books.admin)
        assert resp.headers["Location"].endswith(f"/finance/batches/{batch.id}")
        assert {p.seller_id: p.amount_fen for p in batch.payouts} == {
            books.seller.id: 11_345,
            books.other.id: 47_500,
        }

        page = html(client.get(f"/finance/batches/{batch.id}"))
        assert "梅县金柚园" in page and "¥113.45" in page and "¥588.45" in page
        assert books.seller.phone not in page  # masked on the page
        assert f"{books.seller.phone[:3]}****{books.seller.phone[-4:]}" in page
        assert batch_ids(html(client.get("/finance/"))) == [batch.id]

        resp = client.get(f"/finance/batches/{batch.id}.csv")
        assert resp.status_code == 200
        assert resp.mimetype == "text/csv"
        assert resp.headers["Content-Disposition"] == f'attachment; filename="payout-batch-{batch.id}.csv"'
        rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
        assert rows[0][4] == "金额（元）"
        assert {r[2]: r[4] for r in rows[1:]} == {"梅县金柚园": "113.45", "平远脐橙合作社": "475.00"}
        assert books.seller.phone in {r[3] for r in rows[1:]}  # the bank gets the real number

        resp = client.get(f"/finance/batches/{batch.id}.xlsx")
        assert resp.status_code == 200 and resp.mimetype == XLSX
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        ws = load_workbook(io.BytesIO(resp.data)).active
        values = list(ws.iter_rows(values_only=True))
        assert values[-1][0] == "合计" and Decimal(str(values[-1][4])) == Decimal("588.45")

        assert f'action="/finance/batches/{batch.id}/paid"' in page
        resp = client.post(f"/finance/batches/{batch.id}/paid")
        assert resp.status_code == 302
        session.refresh(batch)
        assert batch.status == PayoutBatchStatus.PAID
        assert ledger.seller_payable(session, books.seller.id) == 0
        assert ledger.seller_payable(session, books.other.id) == 7_000  # the held sub-order
        assert "/paid" not in html(client.get(f"/finance/batches/{batch.id}"))
        # Pressing the button again (a second tab, a double tap) changes nothing.
        payouts_posted = count(session, LedgerTransaction, LedgerTransaction.kind == "payout")
        assert client.post(f"/finance/batches/{batch.id}/paid").status_code == 302
        assert count(session, LedgerTransaction, LedgerTransaction.kind == "payout") == payouts_posted == 2

    def test_nothing_to_pay_says_so_and_makes_no_batch(self, session, make_user, as_user):
        client = as_user(make_user(Role.ADMIN))
        resp = client.post("/finance/", data={"holding_days": "7"}, follow_redirects=True)
        assert resp.status_code == 200 and 'class="flash flash-info"' in html(resp)
        assert count(session, PayoutBatch) == 0

    @pytest.mark.parametrize("days", ["-1", "abc", "", "1.5", "366"])
    def test_a_bad_holding_period_is_a_form_error_and_writes_nothing(self, session, books, as_user, days):
        client = as_user(books.admin)
        resp = client.post("/finance/", data={"holding_days": days})
        assert resp.status_code == 422
        page = html(resp)
        assert 'class="field-error"' in page.split('id="holding_days"', 1)[1].split("<button", 1)[0]
        tag = re.search(r'<input[^>]*name="holding_days"[^>]*>', page)
        assert tag is not None and f'value="{days}"' in tag.group()  # what they typed stays
        assert count(session, PayoutBatch) == 0 and count(session, Payout) == 0

    def test_an_unknown_batch_is_not_found(self, books, as_user):
        client = as_user(books.admin)
        for path in (
            "/finance/batches/999999",
            "/finance/batches/999999.csv",
            "/finance/batches/999999.xlsx",
        ):
            assert client.get(path).status_code == 404
        assert client.post("/finance/batches/999999/paid").status_code == 404


class TestWhateverTheDate:
    """The page reads the product's clock, not the machine's: on 2026-12-01 it once took the
    machine's date, so the sub-order completed "recently" (before NOW) had left its hold."""

    @pytest.mark.parametrize("machine_date", ["2026-11-26 12:00", "2026-12-01 09:00", "2027-11-26 12:00"])
    def test_a_sub_order_within_the_holding_period_stays_out_of_the_batch(
        self, session, books, as_user, machine_date
    ):
        with time_machine.travel(datetime.fromisoformat(machine_date).replace(tzinfo=clock.CHINA)):
            client = as_user(books.admin)
            assert client.post("/finance/", data={"holding_days": "7"}).status_code == 302
        [batch] = ledger.list_batches(session, books.admin)
        assert {p.seller_id: p.amount_fen for p in batch.payouts} == {
            books.seller.id: 11_345,
            books.other.id: 47_500,  # 54_500 would include the held 70.00
        }
        assert timedelta(0) <= batch.cutoff - (NOW - timedelta(days=7)) < timedelta(minutes=5)


class TestOthersStayOut:
    def test_a_buyer_or_seller_gets_403_everywhere_and_nothing_is_written(self, session, books, as_user):
        batch = ledger.create_payout_batch(session, books.admin, now=NOW)
        assert batch is not None
        for user in (books.buyer, books.seller):
            client = as_user(user)
            assert client.get("/finance/").status_code == 403
            assert client.post("/finance/", data={"holding_days": "0"}).status_code == 403
            for suffix in ("", ".csv", ".xlsx"):
                assert client.get(f"/finance/batches/{batch.id}{suffix}").status_code == 403
            assert client.post(f"/finance/batches/{batch.id}/paid").status_code == 403
        session.refresh(batch)
        assert batch.status == PayoutBatchStatus.OPEN
        assert count(session, PayoutBatch) == 1

    def test_anonymous_visitors_are_sent_to_log_in(self, client):
        resp = client.get("/finance/")
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]

    def test_the_mark_paid_form_needs_its_csrf_token(self, session, books, as_user, app, monkeypatch):
        batch = ledger.create_payout_batch(session, books.admin, now=NOW)
        assert batch is not None
        client = as_user(books.admin)
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        assert client.post(f"/finance/batches/{batch.id}/paid").status_code == 400
        assert client.post("/finance/", data={"holding_days": "0"}).status_code == 400
        session.refresh(batch)
        assert batch.status == PayoutBatchStatus.OPEN and count(session, PayoutBatch) == 1
