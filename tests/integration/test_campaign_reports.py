"""Issue 13 item 7: a campaign's report matches its orders. The lychee campaign of
tests/integration/test_campaigns.py (a 高州 lychee at ¥29.80 and 英德红茶 at ¥118, 满100减20 /
满200减50 across the campaign, paid by the platform, a ¥120 budget) with, on a controlled clock:

- before the window: the returning buyer buys 2 lychees at list (¥79.60, paid): the period
  before, for the uplift, and what makes that buyer returning;
- in the window: the new buyer's 4 lychees and a tea (the tier spans both sellers, paid), the
  returning buyer's 2 lychees (paid, ¥5 refunded as compensation), the returning buyer's lychee
  left unpaid until it expired, and the new buyer's pomelo (not in the campaign);
- the new buyer's lychee sub-order refunded in full: its subsidy goes back to the budget.

Every figure of the report is asserted against the orders, and the CSV and Excel files are read
back with the same numbers."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from domain import Campaign, CampaignState, Order, OrderLine, Role, SubOrder
from services.campaigns import manage, reports
from services.errors import Forbidden, NotFound, Unauthorized
from services.exports import yuan
from services.orders import checkout
from services.orders import manage as orders
from services.payments import service as payments
from tests.integration.conftest import GAOZHOU, campaign_input
from tests.integration.test_campaigns import END, SETTINGS, START

YINGDE = "441881"


class Sales:
    """The orders of the scenario, by name."""

    def __init__(self, **orders: Order) -> None:
        self.__dict__.update(orders)


@pytest.fixture()
def sales(session, market, lychee, campaign, gateway, admin, make_user, clock):  # type: ignore[no-untyped-def]
    new = make_user(Role.BUYER, name="新买家")
    returning = make_user(Role.BUYER, name="老买家")
    tea = market.product("英德红茶")

    def paid(items, buyer):  # type: ignore[no-untyped-def]
        return market.pay(market.place(items, SETTINGS, buyer=buyer), gateway)

    earlier = paid({lychee.id: 2}, returning)  # NOW: a day before the window
    clock.set(START + timedelta(hours=1))
    big = paid({lychee.id: 4, tea.id: 1}, new)
    clock.set(START + timedelta(hours=2))
    small = paid({lychee.id: 2}, returning)
    clock.set(START + timedelta(hours=3))
    expired = market.place({lychee.id: 1}, SETTINGS, buyer=returning)
    payments.ensure_intent(session, gateway, expired)
    result = payments.reconcile(
        session, gateway, now=clock.now() + SETTINGS.payment_window + timedelta(minutes=1)
    )
    assert result.expired == 1
    clock.set(START + timedelta(hours=4))
    other = paid({"梅县金柚": 1}, new)
    clock.set(START + timedelta(hours=5))
    sub = next(s for s in fresh(session, Order, big.id).sub_orders if s.seller_id == lychee.seller_id)
    orders.staff_refund(session, gateway, admin, sub.number, None, "荔枝坏了", checkout.new_idempotency_key())
    (small_sub,) = fresh(session, Order, small.id).sub_orders
    orders.staff_refund(
        session, gateway, admin, small_sub.number, 500, "补偿", checkout.new_idempotency_key()
    )
    session.expire_all()
    return Sales(earlier=earlier, big=big, small=small, expired=expired, other=other)


def fresh(session, model, id_):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(model, id_)


def lines_of(session, *orders_: Order) -> list[OrderLine]:  # type: ignore[no-untyped-def]
    ids = [o.id for o in orders_]
    return list(
        session.scalars(
            select(OrderLine).join(SubOrder).where(SubOrder.order_id.in_(ids)).order_by(OrderLine.id)
        )
    )


class TestTheReportMatchesTheOrders:
    def test_every_figure(self, session, admin, market, lychee, campaign, sales, clock):  # type: ignore[no-untyped-def]
        report = reports.campaign_report(session, admin, campaign.id, now=END + timedelta(days=1))
        tea = market.product("英德红茶")
        paid_lines = lines_of(session, sales.big, sales.small)
        # The orders: 4 lychees at ¥29.80 and a tea at ¥118 reach 满200减50 (the platform's ¥50,
        # split by what the lines cost); 2 lychees at ¥29.80 reach no tier.
        by_product = {(line.sub_order.order_id, line.product_id): line for line in paid_lines}
        big_lychee = by_product[(sales.big.id, lychee.id)]
        big_tea = by_product[(sales.big.id, tea.id)]
        small_lychee = by_product[(sales.small.id, lychee.id)]
        assert (big_lychee.line_fen, big_lychee.paid_fen, big_lychee.subsidy_fen) == (15920, 9407, 2513)
        assert (big_tea.line_fen, big_tea.paid_fen, big_tea.subsidy_fen) == (12800, 9313, 2487)
        assert (small_lychee.line_fen, small_lychee.paid_fen, small_lychee.subsidy_fen) == (7960, 5960, 0)

        assert report.state == CampaignState.ENDED
        assert (
            report.orders_placed,
            report.orders_paid,
            report.orders_awaiting,
            report.orders_cancelled,
        ) == (
            3,
            2,
            0,
            1,
        )
        assert report.conversion == Decimal("66.7")
        assert report.units == 7 == sum(line.quantity for line in paid_lines)
        assert report.discounted_units == 7
        assert report.list_fen == 36680 == sum(line.line_fen for line in paid_lines)
        assert report.discount_fen == 12000 == sum(line.discount_fen for line in paid_lines)
        assert (report.platform_fen, report.seller_fen, report.other_discount_fen) == (5000, 7000, 0)
        assert report.gmv_fen == 24680 == sum(line.paid_fen for line in paid_lines)
        assert report.gmv_fen == report.list_fen - report.discount_fen

        refunded = fresh(session, SubOrder, big_lychee.sub_order_id)
        assert refunded.refunded_fen == refunded.total_fen
        assert report.refunded_fen == refunded.total_fen + 500
        assert report.refunded_sub_orders == 2

        assert (report.buyers, report.buyers_new, report.buyers_returning) == (2, 1, 1)

        assert [(c.county_code, c.name, c.units, c.gmv_fen) for c in report.counties] == [
            (GAOZHOU, "茂名市高州市", 6, 9407 + 5960),
            (YINGDE, "清远市英德市", 1, 9313),
        ]

        # Subsidy: ¥50 taken by the big order, its lychee's ¥25.13 given back by the refund; the
        # expired order held none (no tier) and the money-only refund gives none back.
        assert report.budget_fen == 12000
        assert (report.subsidy_spent_fen, report.subsidy_held_fen, report.subsidy_returned_fen) == (
            2487,
            0,
            2513,
        )
        assert report.subsidy_left_fen == 12000 - 2487
        used = fresh(session, Campaign, campaign.id).subsidy_used_fen
        assert report.subsidy_spent_fen + report.subsidy_held_fen == used

        # Uplift: the 3.5 days before the window (the returning buyer's 2 lychees at list) against
        # the window.
        up = report.uplift
        assert up is not None
        assert (up.before_start, up.start, up.end) == (START - (END - START), START, END)
        assert (up.units_before, up.gmv_before_fen) == (2, 7960)
        assert (up.units_during, up.gmv_during_fen) == (7, 24680)
        assert up.units_change == Decimal("250.0")  # (7 − 2) / 2
        assert up.gmv_change == Decimal("210.1")  # (246.80 − 79.60) / 79.60 = 2.1005

    def test_while_running_the_uplift_compares_the_time_so_far(
        self, session, admin, lychee, campaign, sales, clock
    ):
        now = START + timedelta(hours=2, minutes=30)  # the big and the small order; not the expired
        report = reports.campaign_report(session, admin, campaign.id, now=now)
        assert report.state == CampaignState.RUNNING
        up = report.uplift
        assert up is not None
        assert (up.before_start, up.end) == (START - timedelta(hours=2, minutes=30), now)
        assert (up.units_before, up.units_during, up.gmv_during_fen) == (0, 7, 24680)
        assert up.units_change is None and up.gmv_change is None  # nothing sold just before

    def test_before_the_window_there_is_nothing_and_no_uplift(self, session, admin, campaign, clock):
        report = reports.campaign_report(session, admin, campaign.id)
        assert report.state == CampaignState.SCHEDULED
        assert (report.orders_placed, report.units, report.gmv_fen, report.counties) == (0, 0, 0, ())
        assert report.conversion is None and report.uplift is None
        assert report.subsidy_left_fen == report.budget_fen == 12000

    def test_an_unpaid_order_holds_subsidy_and_waits(self, session, admin, market, lychee, campaign, clock):
        clock.set(START + timedelta(minutes=10))
        tea = market.product("英德红茶")
        market.place({lychee.id: 4, tea.id: 1}, SETTINGS)
        report = reports.campaign_report(session, admin, campaign.id)
        assert (report.orders_placed, report.orders_paid, report.orders_awaiting) == (1, 0, 1)
        assert (report.units, report.gmv_fen, report.buyers) == (0, 0, 0)
        assert (report.subsidy_spent_fen, report.subsidy_held_fen) == (0, 5000)
        assert report.subsidy_left_fen == 7000
        assert report.conversion == Decimal("0.0")

    def test_only_admins_and_an_unknown_campaign_is_not_found(self, session, admin, market, campaign):
        with pytest.raises(Forbidden):
            reports.campaign_report(session, market.buyer, campaign.id)
        with pytest.raises(Unauthorized):
            reports.campaign_report(session, None, campaign.id)
        with pytest.raises(NotFound):
            reports.campaign_report(session, admin, campaign.id + 1000)
        with pytest.raises(NotFound):
            reports.campaign_report(session, admin, "abc")


def figures_of(csv_rows: list[list[str]]) -> tuple[dict[str, str], list[list[str]]]:
    blank = csv_rows.index([])
    assert csv_rows[0] == ["指标", "数值"]
    return dict(csv_rows[1:blank]), csv_rows[blank + 1 :]


class TestFiles:
    def test_the_csv_has_a_bom_and_the_report_s_numbers(self, session, admin, campaign, sales, clock):
        report = reports.campaign_report(session, admin, campaign.id, now=END + timedelta(days=1))
        data = reports.report_csv(report)
        assert data.startswith(codecs.BOM_UTF8)
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        figures, counties = figures_of(rows)
        assert figures["活动名称"] == "广货网上行·荔枝季"
        assert figures["开始时间"] == "2026-11-27 10:00:00" and figures["结束时间"] == "2026-11-30 22:00:00"
        assert figures["状态"] == "已结束"
        assert figures["成交额GMV（元）"] == "246.80"
        assert figures["原价金额（元）"] == "366.80"
        assert figures["本活动优惠（元）"] == "120.00"
        assert figures["其中平台补贴（元）"] == "50.00"
        assert (figures["下单订单数"], figures["支付订单数"], figures["取消或超时未付订单数"]) == (
            "3",
            "2",
            "1",
        )
        assert figures["支付转化率（%）"] == "66.7"
        assert (figures["成交件数"], figures["新买家数"], figures["老买家数"]) == ("7", "1", "1")
        assert figures["已用补贴（元）"] == "24.87"
        assert figures["剩余补贴（元）"] == "95.13"
        assert figures["退款金额（元）"] == f"{yuan(report.refunded_fen):.2f}"
        assert (figures["对比期成交件数"], figures["活动期成交件数"]) == ("2", "7")
        assert figures["成交额增长（%）"] == "210.1"
        assert counties == [
            ["产地县区代码", "产地县区", "成交件数", "成交额（元）"],
            [GAOZHOU, "茂名市高州市", "6", "153.67"],
            [YINGDE, "清远市英德市", "1", "93.13"],
        ]

    def test_the_workbook_opens_with_the_same_numbers(self, session, admin, campaign, sales, clock):
        report = reports.campaign_report(session, admin, campaign.id, now=END + timedelta(days=1))
        wb = load_workbook(io.BytesIO(reports.report_xlsx(report)))
        assert wb.sheetnames == ["活动报表", "产地"]
        sheet = {row[0]: row[1] for row in wb["活动报表"].iter_rows(min_row=2, values_only=True)}
        csv_figures, _ = figures_of(
            list(csv.reader(io.StringIO(reports.report_csv(report).decode("utf-8-sig"))))
        )
        assert list(sheet) == list(csv_figures)
        for label, kind, value in reports.figures(report):
            cell = sheet[label]
            if kind == "fen":
                assert Decimal(str(cell)) == yuan(value), label
            elif kind == "pct":
                assert Decimal(str(cell)).quantize(Decimal("0.1")) == value, label
            else:
                assert cell == value, label
        assert Decimal(str(sheet["成交额GMV（元）"])) == Decimal("246.80")
        counties = list(wb["产地"].iter_rows(values_only=True))
        assert counties[0] == ("产地县区代码", "产地县区", "成交件数", "成交额（元）")
        assert [(r[0], r[1], r[2], Decimal(str(r[3]))) for r in counties[1:]] == [
            (GAOZHOU, "茂名市高州市", 6, Decimal("153.67")),
            (YINGDE, "清远市英德市", 1, Decimal("93.13")),
            ("合计", None, 7, Decimal("246.80")),
        ]

    def test_a_name_that_looks_like_a_formula_stays_text(self, session, admin, clock):
        made = manage.create_campaign(session, admin, campaign_input(name="=HYPERLINK(1)"))
        report = reports.campaign_report(session, admin, made.id)
        rows = list(csv.reader(io.StringIO(reports.report_csv(report).decode("utf-8-sig"))))
        assert dict(rows[1:3])["活动名称"] == "'=HYPERLINK(1)"
        wb = load_workbook(io.BytesIO(reports.report_xlsx(report)))
        cell = wb["活动报表"]["B3"]
        assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")
