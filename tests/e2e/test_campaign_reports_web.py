"""A campaign's report over HTTP: the page, the CSV and the Excel file for admins, with the
campaign's figures and proper file names; 403 for a buyer, the log-in page for nobody, 404 for
an unknown campaign."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import quote

import pytest
from openpyxl import load_workbook

from domain import Role
from services.campaigns import manage
from services.exports import XLSX_TYPE
from tests.integration.test_campaigns import END, SETTINGS, START, campaign_input


@pytest.fixture()
def sold(session, admin, market, gateway, clock):  # type: ignore[no-untyped-def]
    """The tea in a campaign at ¥118 (满100减20 paid by the platform), one bought and paid."""
    made = manage.create_campaign(session, admin, campaign_input(name="英德红茶节"))
    manage.publish(session, admin, made.id)
    tea = market.product("英德红茶")
    item = manage.sign_up(
        session, market.shop.yingde_farmer, made.id, tea.id, manage.SignupInput(campaign_price_yuan="118")
    )
    manage.decide(session, admin, item.id, True)
    clock.set(START + timedelta(hours=1))
    market.pay(market.place({tea.id: 1}, SETTINGS), gateway)
    clock.set(END + timedelta(hours=1))
    return made


def test_an_admin_reads_the_page_and_downloads_both_files(admin, sold, as_user):  # type: ignore[no-untyped-def]
    client = as_user(admin)
    page = client.get(f"/admin/campaigns/{sold.id}/report")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "英德红茶节" in text
    assert 'class="num gmv" data-fen="9800"' in text  # 118 − 20
    assert (
        f"/admin/campaigns/{sold.id}/report.csv" in text and f"/admin/campaigns/{sold.id}/report.xlsx" in text
    )
    assert 'data-county="441881"' in text

    resp = client.get(f"/admin/campaigns/{sold.id}/report.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="campaign-{sold.id}-report.csv"; '
        f"filename*=UTF-8''{quote('英德红茶节-活动报表.csv', safe='')}"
    )
    assert resp.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert dict(r for r in rows if len(r) == 2)["成交额GMV（元）"] == "98.00"

    resp = client.get(f"/admin/campaigns/{sold.id}/report.xlsx")
    assert resp.status_code == 200 and resp.mimetype == XLSX_TYPE
    assert f'filename="campaign-{sold.id}-report.xlsx"' in resp.headers["Content-Disposition"]
    values = {
        r[0]: r[1] for r in load_workbook(io.BytesIO(resp.data))["活动报表"].iter_rows(values_only=True)
    }
    assert str(values["成交额GMV（元）"]) in ("98", "98.0", "98.00")


@pytest.mark.parametrize("suffix", ["", ".csv", ".xlsx"])
def test_a_buyer_is_refused_nobody_logs_in_and_an_unknown_campaign_is_not_found(  # type: ignore[no-untyped-def]
    admin, make_user, sold, as_user, client, suffix
):
    url = f"/admin/campaigns/{sold.id}/report{suffix}"
    assert as_user(make_user(Role.BUYER)).get(url).status_code == 403
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    assert as_user(admin).get(f"/admin/campaigns/{sold.id + 1000}/report{suffix}").status_code == 404
