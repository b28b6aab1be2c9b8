"""A campaign's report for admins (issue 13, item 7), computed from the orders every time it is
asked for, with its CSV (UTF-8 with a BOM) and Excel files (services/exports.py).

Which sales are the campaign's. An order line is the campaign's when its order was placed inside
the window (starts_at ≤ Order.created_at < ends_at) and either the campaign holds something of it
(a `CampaignHold`: the line got one of its discounts) or its product is an approved item of the
campaign (a line of a campaign product sold at list price, its quota or budget gone, is still the
campaign's sale). A line is paid when its sub-order was paid: any status but pending_payment and
cancelled (an unpaid order that expired or was cancelled, or a pre-sale authorisation released
before capture). Refunded sub-orders stay paid: the figures are what was sold at checkout.

The figures:
- orders placed / paid / awaiting payment / cancelled: distinct orders (checkouts) with a campaign
  line, by the state of those lines' sub-orders (paid if any is paid; awaiting payment if none is
  paid and one still waits; otherwise cancelled, e.g. expired unpaid);
- conversion: orders paid ÷ orders placed, the checkout conversion. A conversion from product
  views to orders needs page-view counts, which the product does not record yet;
- units: the paid lines' quantities (and of them, the units sold at a campaign unit price);
- list value: the paid lines at list price (line_fen); this campaign's discounts on them (from
  each line's `discounts`, with the platform's and the sellers' shares); other discounts (another
  campaign's overlapping 满减 or first-order discount); GMV: what buyers paid for those lines at
  checkout (paid_fen = list − all discounts), before refunds and without shipping;
- refunds, reported apart from GMV: the money refunded (succeeded refunds) on the sub-orders
  holding paid campaign lines, and how many sub-orders. A refund is of a sub-order, so this
  includes any other goods and shipping in those sub-orders;
- buyers: distinct buyers of record of the paid orders (a proxy order's villager: their account
  when they have one, else the villager, never the agent who placed it); new when they have no
  paid order on the platform placed before the window opened (their first order is inside the
  window), else returning;
- units and GMV by county of origin: the product's county (products.county_code), named with its
  city (茂名市高州市); products without a county under "" (unknown);
- subsidy, from the campaign's holds (all of them, whenever placed): spent = committed holds'
  subsidy less what refunds gave back; held = by orders not paid yet; returned = given back by
  refunds; left = budget − spent − held (spent + held is Campaign.subsidy_used_fen);
- uplift: the same products (approved items' and those of the campaign's lines) in the period
  of equal length just before the window, against the window so far: paid units and GMV of all
  their lines placed in [start − elapsed, start) and in [start, start + elapsed), elapsed being
  the window up to now; the change in per cent (None when nothing sold before, or before the
  window opened).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from domain import (
    CampaignHold,
    CampaignItem,
    CampaignState,
    Division,
    DivisionLevel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Refund,
    RefundStatus,
    ReservationStatus,
    SignupStatus,
    SubOrder,
    User,
    clock,
)
from services import authz, exports
from services.campaigns.manage import get_campaign

UNPAID = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit
_T = TypeVar("_T")


@dataclass(frozen=True)
class CountySales:
    county_code: str  # "" when the product has no county
    name: str  # the city and county, 茂名市高州市; "" when unknown
    units: int
    gmv_fen: int


@dataclass(frozen=True)
class Uplift:
    """The same products before the window and in the window so far (periods of equal length)."""

    before_start: datetime
    start: datetime
    end: datetime  # start + elapsed: the window's end, or now while it runs
    units_before: int
    gmv_before_fen: int
    units_during: int
    gmv_during_fen: int

    @property
    def units_change(self) -> Decimal | None:
        return change(self.units_during, self.units_before)

    @property
    def gmv_change(self) -> Decimal | None:
        return change(self.gmv_during_fen, self.gmv_before_fen)


@dataclass(frozen=True)
class Report:
    campaign_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    state: CampaignState
    as_of: datetime
    orders_placed: int
    orders_paid: int
    orders_awaiting: int
    orders_cancelled: int
    units: int
    discounted_units: int
    list_fen: int
    discount_fen: int  # this campaign's discounts on the paid lines
    platform_fen: int  # of which the platform funds
    seller_fen: int  # of which the sellers fund
    other_discount_fen: int  # other campaigns' discounts on the same lines
    gmv_fen: int
    refunded_fen: int
    refunded_sub_orders: int
    buyers_new: int
    buyers_returning: int
    counties: tuple[CountySales, ...]
    budget_fen: int
    subsidy_spent_fen: int
    subsidy_held_fen: int
    subsidy_returned_fen: int
    uplift: Uplift | None

    @property
    def buyers(self) -> int:
        return self.buyers_new + self.buyers_returning

    @property
    def subsidy_left_fen(self) -> int:
        return self.budget_fen - self.subsidy_spent_fen - self.subsidy_held_fen

    @property
    def conversion(self) -> Decimal | None:
        """Orders paid ÷ orders placed, in per cent to one decimal; None with no orders."""
        return percent(self.orders_paid, self.orders_placed)


def percent(part: int, whole: int) -> Decimal | None:
    """part ÷ whole in per cent, one decimal, rounded half up; None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def change(now: int, before: int) -> Decimal | None:
    """The change from `before` to `now` in per cent, one decimal; None when before is 0."""
    return percent(now - before, before)


def _chunks(ids: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def campaign_report(
    session: Session, actor: User | None, campaign_id: Any, now: datetime | None = None
) -> Report:
    """The campaign's report as of `now` (admins only; NotFound for an unknown campaign)."""
    authz.require_campaigns(actor)
    campaign = get_campaign(session, campaign_id)
    now = now or clock.now()
    cid = campaign.id
    approved = select(CampaignItem.product_id).where(
        CampaignItem.campaign_id == cid, CampaignItem.status == SignupStatus.APPROVED
    )
    held = select(CampaignHold.line_id).where(CampaignHold.campaign_id == cid)
    rows = session.execute(
        select(
            OrderLine.product_id,
            OrderLine.quantity,
            OrderLine.discounted_units,
            OrderLine.line_fen,
            OrderLine.discount_fen,
            OrderLine.paid_fen,
            OrderLine.discounts,
            SubOrder.id.label("sub_order_id"),
            SubOrder.status,
            Order.id.label("order_id"),
            Order.buyer_id,
            Order.villager_id,
            Order.placed_by_id,
            Product.county_code,
        )
        .join(SubOrder, OrderLine.sub_order_id == SubOrder.id)
        .join(Order, SubOrder.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(
            Order.created_at >= campaign.starts_at,
            Order.created_at < campaign.ends_at,
            or_(OrderLine.product_id.in_(approved), OrderLine.id.in_(held)),
        )
        .order_by(OrderLine.id)
    ).all()

    order_state: dict[int, OrderStatus] = {}  # the "best" state of each order's campaign lines
    paid_buyers: set[int] = set()
    paid_villagers: set[int] = set()
    paid_subs: set[int] = set()
    products: set[int] = set(session.scalars(approved))
    units = discounted = list_fen = all_discounts = gmv = 0
    mine = platform = seller = 0
    by_county: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        products.add(row.product_id)
        order_state[row.order_id] = _better(order_state.get(row.order_id), row.status)
        if row.status in UNPAID:
            continue
        if row.villager_id is not None and row.buyer_id == row.placed_by_id:
            paid_villagers.add(row.villager_id)  # an agent's villager without an account
        else:
            paid_buyers.add(row.buyer_id)
        paid_subs.add(row.sub_order_id)
        units += row.quantity
        discounted += row.discounted_units
        list_fen += row.line_fen
        all_discounts += row.discount_fen
        gmv += row.paid_fen
        for d in row.discounts or ():
            if int(d["campaign_id"]) == cid:
                mine += int(d["amount_fen"])
                platform += int(d["platform_fen"])
                seller += int(d["seller_fen"])
        totals = by_county[row.county_code or ""]
        totals[0] += row.quantity
        totals[1] += row.paid_fen

    returning = _returning(session, Order.buyer_id, sorted(paid_buyers), campaign.starts_at)
    returning += _returning(session, Order.villager_id, sorted(paid_villagers), campaign.starts_at)
    refunded, refunded_subs = _refunds(session, sorted(paid_subs))
    spent, held_fen, returned = _subsidy(session, cid)
    counties = _counties(session, by_county)
    elapsed = min(now, campaign.ends_at) - campaign.starts_at
    uplift = None
    if elapsed > timedelta(0):
        start = campaign.starts_at
        before_units, before_gmv = _sales(session, sorted(products), start - elapsed, start)
        during_units, during_gmv = _sales(session, sorted(products), start, start + elapsed)
        uplift = Uplift(
            start - elapsed, start, start + elapsed, before_units, before_gmv, during_units, during_gmv
        )
    states = list(order_state.values())
    return Report(
        campaign_id=cid,
        name=campaign.name,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        state=campaign.state(now),
        as_of=now,
        orders_placed=len(states),
        orders_paid=sum(1 for s in states if s not in UNPAID),
        orders_awaiting=sum(1 for s in states if s == OrderStatus.PENDING_PAYMENT),
        orders_cancelled=sum(1 for s in states if s == OrderStatus.CANCELLED),
        units=units,
        discounted_units=discounted,
        list_fen=list_fen,
        discount_fen=mine,
        platform_fen=platform,
        seller_fen=seller,
        other_discount_fen=all_discounts - mine,
        gmv_fen=gmv,
        refunded_fen=refunded,
        refunded_sub_orders=refunded_subs,
        buyers_new=len(paid_buyers) + len(paid_villagers) - returning,
        buyers_returning=returning,
        counties=counties,
        budget_fen=campaign.budget_fen,
        subsidy_spent_fen=spent,
        subsidy_held_fen=held_fen,
        subsidy_returned_fen=returned,
        uplift=uplift,
    )


def _better(current: OrderStatus | None, status: OrderStatus) -> OrderStatus:
    """An order is paid if any of its campaign lines is, else awaiting payment if one waits."""
    if current is None:
        return status
    rank = {OrderStatus.CANCELLED: 0, OrderStatus.PENDING_PAYMENT: 1}
    return status if rank.get(status, 2) > rank.get(current, 2) else current


def _paid_order() -> Any:
    """Orders with a paid sub-order (correlated EXISTS)."""
    return select(SubOrder.id).where(SubOrder.order_id == Order.id, SubOrder.status.not_in(UNPAID)).exists()


def _returning(session: Session, column: Any, ids: Sequence[int], before: datetime) -> int:
    """How many of these buyers (Order.buyer_id) or villagers (Order.villager_id) have a paid
    order placed before `before`."""
    found: set[int] = set()
    for chunk in _chunks(ids):
        stmt = select(column).where(column.in_(chunk), Order.created_at < before, _paid_order()).distinct()
        if column is Order.buyer_id:  # not an agent's orders for villagers without an account
            stmt = stmt.where(~and_(Order.villager_id.is_not(None), Order.buyer_id == Order.placed_by_id))
        found.update(session.scalars(stmt))
    return len(found)


def _refunds(session: Session, sub_order_ids: Sequence[int]) -> tuple[int, int]:
    """Money refunded (succeeded refunds) on these sub-orders, and how many were refunded."""
    total = 0
    subs: set[int] = set()
    for chunk in _chunks(sub_order_ids):
        for sub_id, amount in session.execute(
            select(Refund.sub_order_id, Refund.amount_fen).where(
                Refund.sub_order_id.in_(chunk), Refund.status == RefundStatus.SUCCEEDED
            )
        ):
            total += amount
            subs.add(sub_id)
    return total, len(subs)


def _subsidy(session: Session, campaign_id: int) -> tuple[int, int, int]:
    """(spent, held, returned) from the campaign's holds."""
    spent = held = returned = 0
    for status, subsidy, back in session.execute(
        select(CampaignHold.status, CampaignHold.subsidy_fen, CampaignHold.returned_fen).where(
            CampaignHold.campaign_id == campaign_id, CampaignHold.status != ReservationStatus.RELEASED
        )
    ):
        if status == ReservationStatus.COMMITTED:
            spent += subsidy - back
            returned += back
        else:
            held += subsidy - back
    return spent, held, returned


def _counties(session: Session, by_county: dict[str, list[int]]) -> tuple[CountySales, ...]:
    codes = sorted(c for c in by_county if c)
    names: dict[str, str] = {}
    if codes:
        for division in session.scalars(select(Division).where(Division.code.in_(codes))):
            parent = division.parent
            city = parent.name if parent is not None and parent.level == DivisionLevel.CITY else ""
            names[division.code] = city + division.name
    rows = [CountySales(code, names.get(code, ""), units, gmv) for code, (units, gmv) in by_county.items()]
    return tuple(sorted(rows, key=lambda r: (-r.units, -r.gmv_fen, r.county_code)))


def _sales(session: Session, product_ids: Sequence[int], start: datetime, end: datetime) -> tuple[int, int]:
    """Paid units and GMV (paid_fen) of these products' lines in orders placed in [start, end)."""
    units = gmv = 0
    for chunk in _chunks(product_ids):
        for qty, paid in session.execute(
            select(OrderLine.quantity, OrderLine.paid_fen)
            .join(SubOrder, OrderLine.sub_order_id == SubOrder.id)
            .join(Order, SubOrder.order_id == Order.id)
            .where(
                OrderLine.product_id.in_(chunk),
                Order.created_at >= start,
                Order.created_at < end,
                SubOrder.status.not_in(UNPAID),
            )
        ):
            units += qty
            gmv += paid
    return units, gmv


# --- the files ----------------------------------------------------------------------------------
# Their headers are Chinese whatever the page's language: the files go to the province's office.

STATE_NAMES = {
    CampaignState.DRAFT: "草稿",
    CampaignState.SCHEDULED: "未开始",
    CampaignState.RUNNING: "进行中",
    CampaignState.ENDED: "已结束",
    CampaignState.CANCELLED: "已取消",
}
COUNTY_HEADER = ("产地县区代码", "产地县区", "成交件数", "成交额（元）")
UNKNOWN_COUNTY = "未知产地"

# (label, kind, value): kind "int", "fen" (money), "pct" (per cent, one decimal), "text".
Figure = tuple[str, str, Any]


def _local(moment: datetime) -> str:
    return moment.astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M:%S")


def figures(report: Report) -> list[Figure]:
    """The report's figures in the files' order, with their Chinese labels."""
    rows: list[Figure] = [
        ("活动编号", "int", report.campaign_id),
        ("活动名称", "text", report.name),
        ("开始时间", "text", _local(report.starts_at)),
        ("结束时间", "text", _local(report.ends_at)),
        ("状态", "text", STATE_NAMES[report.state]),
        ("统计时间", "text", _local(report.as_of)),
        ("下单订单数", "int", report.orders_placed),
        ("支付订单数", "int", report.orders_paid),
        ("待支付订单数", "int", report.orders_awaiting),
        ("取消或超时未付订单数", "int", report.orders_cancelled),
        ("支付转化率（%）", "pct", report.conversion),
        ("成交件数", "int", report.units),
        ("其中活动价件数", "int", report.discounted_units),
        ("原价金额（元）", "fen", report.list_fen),
        ("本活动优惠（元）", "fen", report.discount_fen),
        ("其中平台补贴（元）", "fen", report.platform_fen),
        ("其中卖家让利（元）", "fen", report.seller_fen),
        ("其他优惠（元）", "fen", report.other_discount_fen),
        ("成交额GMV（元）", "fen", report.gmv_fen),
        ("退款子订单数", "int", report.refunded_sub_orders),
        ("退款金额（元）", "fen", report.refunded_fen),
        ("支付买家数", "int", report.buyers),
        ("新买家数", "int", report.buyers_new),
        ("老买家数", "int", report.buyers_returning),
        ("补贴预算（元）", "fen", report.budget_fen),
        ("已用补贴（元）", "fen", report.subsidy_spent_fen),
        ("待支付订单占用补贴（元）", "fen", report.subsidy_held_fen),
        ("退款退回补贴（元）", "fen", report.subsidy_returned_fen),
        ("剩余补贴（元）", "fen", report.subsidy_left_fen),
    ]
    up = report.uplift
    if up is not None:
        rows += [
            ("对比期开始", "text", _local(up.before_start)),
            ("对比期结束", "text", _local(up.start)),
            ("活动期统计至", "text", _local(up.end)),
            ("对比期成交件数", "int", up.units_before),
            ("活动期成交件数", "int", up.units_during),
            ("件数增长（%）", "pct", up.units_change),
            ("对比期成交额（元）", "fen", up.gmv_before_fen),
            ("活动期成交额（元）", "fen", up.gmv_during_fen),
            ("成交额增长（%）", "pct", up.gmv_change),
        ]
    return rows


def _csv_value(kind: str, value: Any) -> Any:
    if value is None:
        return ""
    if kind == "fen":
        return exports.yuan_text(value)
    if kind == "pct":
        return f"{value:.1f}"
    return value


def report_csv(report: Report) -> bytes:
    """The report as CSV, UTF-8 with a BOM: the figures (指标, 数值), a blank line, then units and
    GMV by county of origin."""
    rows: list[Iterable[Any]] = [("指标", "数值")]
    rows += [(label, _csv_value(kind, value)) for label, kind, value in figures(report)]
    rows.append(())
    rows.append(COUNTY_HEADER)
    rows += [
        (c.county_code, c.name or UNKNOWN_COUNTY, c.units, exports.yuan_text(c.gmv_fen))
        for c in report.counties
    ]
    return exports.csv_bytes([list(r) for r in rows])


def report_xlsx(report: Report) -> bytes:
    """The report as an Excel workbook: the figures on the first sheet (amounts and per cents as
    numbers), units and GMV by county of origin on the second."""
    wb, ws = exports.new_workbook("活动报表")
    exports.header_row(ws, 1, ("指标", "数值"))
    for r, (label, kind, value) in enumerate(figures(report), start=2):
        exports.text_cell(ws, r, 1, label)
        if value is None:
            continue
        if kind == "fen":
            exports.money_cell(ws, r, 2, value)
        elif kind == "text":
            exports.text_cell(ws, r, 2, value)
        else:
            cell = ws.cell(row=r, column=2, value=value)
            if kind == "pct":
                cell.number_format = "0.0"
    exports.set_widths(ws, (26, 24))
    ws.freeze_panes = "A2"
    sheet = wb.create_sheet("产地")
    exports.header_row(sheet, 1, COUNTY_HEADER)
    for r, c in enumerate(report.counties, start=2):
        exports.text_cell(sheet, r, 1, c.county_code)
        exports.text_cell(sheet, r, 2, c.name or UNKNOWN_COUNTY)
        sheet.cell(row=r, column=3, value=c.units)
        exports.money_cell(sheet, r, 4, c.gmv_fen)
    total = len(report.counties) + 2
    exports.bold_cell(sheet.cell(row=total, column=1, value="合计"))
    exports.bold_cell(sheet.cell(row=total, column=3, value=sum(c.units for c in report.counties)))
    exports.money_cell(sheet, total, 4, sum(c.gmv_fen for c in report.counties), bold=True)
    exports.set_widths(sheet, (14, 24, 12, 16))
    sheet.freeze_panes = "A2"
    return exports.workbook_bytes(wb)
