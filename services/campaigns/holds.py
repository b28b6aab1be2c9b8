"""What an order holds of its campaigns: flash-sale units of an item's quota and subsidy of a
campaign's budget, one `CampaignHold` per (order line, campaign).

They follow the line's stock reservation (services/orders/reservations.py calls these in the
same transaction): taken when the order is placed, committed when it is paid, released when it
expires or is cancelled unpaid (units back to the quota, subsidy back to the budget), re-taken
if a late payment arrives (or the payment is refunded, as for stock).

Taking is a conditional UPDATE, like stock: `quota_used + n <= quota` on the item's row and
`subsidy_used_fen + x <= budget_fen` on the campaign's, so no two checkouts can both take the
last unit or the last fen; rows are touched in id order (items, then campaigns) after the
products, so concurrent checkouts lock in one order and cannot deadlock. An item without a
quota and a seller-funded campaign are not touched at all.

Refunds. Subsidy goes back to the budget when units come back: a refund of the whole sub-order
returns all its subsidy, a refund of some units (refund_units) the subsidy of those units
exactly (promotions.refund_line); a refund of money only (compensation, units kept) returns
none. The quota is not given back by refunds: those units were sold at the campaign price.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update
from sqlalchemy.orm import Session

from domain import (
    Campaign,
    CampaignHold,
    CampaignItem,
    Order,
    OrderLine,
    Refund,
    RefundStatus,
    ReservationStatus,
    clock,
)
from services import rows as new_rows
from services.catalog import freshness
from services.errors import Conflict
from services.i18n import _
from services.orders.promotions import Discount, DiscountKind, LineBreakdown, refund_line


class QuotaGone(Conflict):
    code = "campaign_quota_gone"


class BudgetGone(Conflict):
    code = "campaign_budget_gone"


def quota_gone() -> QuotaGone:
    """The refusal when a flash sale's quota has no more units (the checkout's, the gate's, the
    door's in front of the API)."""
    return QuotaGone(_("The campaign price of this product has sold out. Please check the new price."))


@dataclass(frozen=True)
class HoldInput:
    line: OrderLine
    campaign_id: int
    item_id: int | None
    units: int
    subsidy_fen: int


def holds_for_line(line: OrderLine, item_ids: Mapping[int, int]) -> list[HoldInput]:
    """The holds of one written order line from its stored discounts: per campaign, the subsidy
    (platform fen) and, for the unit-price rule's campaign, its item and discounted units.
    `item_ids`: the item id of each unit-price rule's campaign on this line."""
    by_campaign: dict[int, int] = defaultdict(int)
    for d in line.discounts:
        by_campaign[int(d["campaign_id"])] += int(d["platform_fen"])
    return [
        HoldInput(
            line=line,
            campaign_id=campaign_id,
            item_id=item_ids.get(campaign_id),
            units=line.discounted_units if campaign_id in item_ids else 0,
            subsidy_fen=subsidy,
        )
        for campaign_id, subsidy in sorted(by_campaign.items())
    ]


def to_write(
    order: Order, holds: Iterable[HoldInput], now: datetime | None = None
) -> tuple[list[CampaignHold], list[new_rows.Statement]]:
    """The order's holds (the caller wrote its lines) and the INSERT that writes them, for
    rows.run_in_turn: the checkout sends it with its other writes in one round trip, before the
    UPDATEs of `take_statements` take their quota and subsidy (`taken` reads their answers), so
    that these rows are written before the contended ones (the product's stock, the quota) are
    locked. Nothing reads the rows back in the checkout: they stay out of the session."""
    now = now or clock.now()
    held = [
        CampaignHold(
            order_id=order.id,
            sub_order_id=h.line.sub_order_id,
            line_id=h.line.id,
            campaign_id=h.campaign_id,
            item_id=h.item_id,
            buyer_id=order.buyer_id,
            units=h.units,
            subsidy_fen=h.subsidy_fen,
            returned_fen=0,
            status=ReservationStatus.HELD,
            created_at=now,
            settled_at=None,
        )
        for h in holds
    ]
    if not held:
        return held, []
    values = [{name: getattr(hold, name) for name in _HOLD_COLUMNS} for hold in held]
    return held, [(_INSERT_HOLDS, values)]


_HOLD_COLUMNS = [c.key for c in new_rows.table(CampaignHold).c if not c.primary_key]
_INSERT_HOLDS = insert(new_rows.table(CampaignHold))


def _sums(rows: Iterable[CampaignHold]) -> tuple[dict[int, int], dict[int, int]]:
    units: dict[int, int] = defaultdict(int)
    subsidy: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.item_id is not None and row.units:
            units[row.item_id] += row.units
        if row.subsidy_fen - row.returned_fen:
            subsidy[row.campaign_id] += row.subsidy_fen - row.returned_fen
    return units, subsidy


def _take(session: Session, rows: list[CampaignHold]) -> None:
    taken(session, rows, new_rows.run_in_turn(session, take_statements(rows)))


def take_statements(rows: list[CampaignHold]) -> list[new_rows.Statement]:
    """The conditional UPDATEs that take the holds' quota units and subsidy, items then
    campaigns, each in id order (for rows.run_in_turn; `taken` reads their answers)."""
    units, subsidy = _sums(rows)
    statements: list[new_rows.Statement] = [
        (_TAKE_QUOTA, {"item_id": i, "units": units[i]}) for i in sorted(units)
    ]
    statements += [(_TAKE_BUDGET, {"campaign_id": c, "fen": subsidy[c]}) for c in sorted(subsidy)]
    return statements


def taken(session: Session, rows: list[CampaignHold], answers: list[list[tuple[Any, ...]]]) -> None:
    """What the UPDATEs of take_statements(rows) did: QuotaGone or BudgetGone when one took
    nothing (the caller rolls back)."""
    units, subsidy = _sums(rows)
    quotas, budgets = answers[: len(units)], answers[len(units) :]
    if not all(quotas):
        raise quota_gone()
    if not all(budgets):
        raise BudgetGone(_("The campaign's subsidy has run out. Please check the new price."))
    if any(quota is not None and used >= quota for ((used, quota),) in quotas):
        freshness.bump(session, "flash sale sold out")  # the cards say 已抢光 on the next request
    if any(used >= budget for ((used, budget),) in budgets):
        freshness.bump(session, "campaign budget spent")  # its subsidised prices are off now
    _expire(session, units, subsidy)


# Built once, on the tables (Core: no ORM bulk-update machinery), as the stock's (reservations.py):
# a flash sale's checkouts run them while they hold the contended rows.
_ITEMS = new_rows.table(CampaignItem).c
_TAKE_QUOTA = (
    update(new_rows.table(CampaignItem))
    .where(
        _ITEMS.id == bindparam("item_id"),
        _ITEMS.quota.is_(None) | (_ITEMS.quota_used + bindparam("units", type_=Integer) <= _ITEMS.quota),
    )
    .values(quota_used=_ITEMS.quota_used + bindparam("units", type_=Integer))
    .returning(_ITEMS.quota_used, _ITEMS.quota)
)
_CAMPAIGNS = new_rows.table(Campaign).c
_TAKE_BUDGET = (
    update(new_rows.table(Campaign))
    .where(
        _CAMPAIGNS.id == bindparam("campaign_id"),
        _CAMPAIGNS.subsidy_used_fen + bindparam("fen", type_=Integer) <= _CAMPAIGNS.budget_fen,
    )
    .values(subsidy_used_fen=_CAMPAIGNS.subsidy_used_fen + bindparam("fen", type_=Integer))
    .returning(_CAMPAIGNS.subsidy_used_fen, _CAMPAIGNS.budget_fen)
)


def _give_back(session: Session, units: Mapping[int, int], subsidy: Mapping[int, int]) -> None:
    if units:
        freshness.bump(session, "flash sale units back")
    if subsidy:
        freshness.bump(session, "campaign budget back")  # a spent budget's prices may be on again
    for item_id in sorted(units):
        session.execute(
            update(CampaignItem)
            .where(CampaignItem.id == item_id)
            .values(quota_used=CampaignItem.quota_used - units[item_id])
            .execution_options(synchronize_session=False)
        )
    for campaign_id in sorted(subsidy):
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(subsidy_used_fen=Campaign.subsidy_used_fen - subsidy[campaign_id])
            .execution_options(synchronize_session=False)
        )
    _expire(session, units, subsidy)


def _expire(session: Session, units: Mapping[int, int], subsidy: Mapping[int, int]) -> None:
    """Core UPDATEs bypass the identity map: loaded rows read their new numbers next time."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, CampaignItem) and obj.id in units:
            session.expire(obj, ["quota_used"])
        elif isinstance(obj, Campaign) and obj.id in subsidy:
            session.expire(obj, ["subsidy_used_fen"])


def _of(session: Session, order: Order, status: ReservationStatus) -> list[CampaignHold]:
    return list(
        session.scalars(
            select(CampaignHold)
            .where(CampaignHold.order_id == order.id, CampaignHold.status == status)
            .order_by(CampaignHold.id)
        )
    )


def commit(session: Session, order: Order, now: datetime | None = None) -> None:
    """The order is paid: its holds are spent."""
    now = now or clock.now()
    for row in _of(session, order, ReservationStatus.HELD):
        row.status = ReservationStatus.COMMITTED
        row.settled_at = now


def release(session: Session, order: Order, now: datetime | None = None) -> None:
    """The order will not be paid: its quota units and subsidy go back."""
    now = now or clock.now()
    rows = _of(session, order, ReservationStatus.HELD)
    _give_back(session, *_sums(rows))
    for row in rows:
        row.status = ReservationStatus.RELEASED
        row.settled_at = now


def retake(session: Session, order: Order, now: datetime | None = None) -> bool:
    """A late payment for a released order: take its quota and subsidy again, committed at once.
    False (nothing taken, the caller rolls back its savepoint) if they are gone."""
    rows = _of(session, order, ReservationStatus.RELEASED)
    if not rows:
        return True
    try:
        _take(session, rows)
    except (QuotaGone, BudgetGone):
        return False
    now = now or clock.now()
    for row in rows:
        row.status = ReservationStatus.COMMITTED
        row.settled_at = now
    return True


def return_subsidy(session: Session, returned: Mapping[tuple[int, int], int]) -> int:
    """Give subsidy back to the budgets, by (line id, campaign id): fen. Returns the total."""
    if not returned:
        return 0
    rows = session.scalars(
        select(CampaignHold)
        .where(CampaignHold.line_id.in_(sorted({line_id for line_id, _c in returned})))
        .order_by(CampaignHold.id)
    )
    back: dict[int, int] = defaultdict(int)
    total = 0
    for row in rows:
        fen = min(returned.get((row.line_id, row.campaign_id), 0), row.subsidy_fen - row.returned_fen)
        if fen <= 0 or row.status == ReservationStatus.RELEASED:
            continue
        row.returned_fen += fen
        total += fen
        back[row.campaign_id] += fen
    _give_back(session, {}, back)
    return total


def unreturned_subsidy(session: Session, sub_order_id: int) -> dict[tuple[int, int], int]:
    """What of a sub-order's subsidy has not been given back, by (line id, campaign id)."""
    rows = session.scalars(
        select(CampaignHold).where(
            CampaignHold.sub_order_id == sub_order_id, CampaignHold.status == ReservationStatus.COMMITTED
        )
    )
    return {
        (r.line_id, r.campaign_id): r.subsidy_fen - r.returned_fen
        for r in rows
        if r.subsidy_fen > r.returned_fen
    }


def discounts_json(breakdown: LineBreakdown | None) -> list[dict[str, Any]]:
    """A line's discounts as OrderLine.discounts stores them, in the engine's order."""
    if breakdown is None:
        return []
    return [
        {
            "rule": d.rule_id,
            "campaign_id": d.campaign_id,
            "kind": d.kind.value,
            "amount_fen": d.amount_fen,
            "platform_fen": d.platform_fen,
            "seller_fen": d.seller_fen,
        }
        for d in breakdown.discounts
    ]


def breakdown_of(line: OrderLine) -> LineBreakdown:
    """An order line's stored breakdown, as the engine's (for refunds of its units)."""
    return LineBreakdown(
        key=str(line.id),
        product_id=line.product_id,
        seller_id=0,
        quantity=line.quantity,
        unit_list_fen=line.unit_price_fen,
        discounts=tuple(
            Discount(
                d["rule"],
                int(d["campaign_id"]),
                DiscountKind(d["kind"]),
                int(d["amount_fen"]),
                int(d["platform_fen"]),
                int(d["seller_fen"]),
            )
            for d in line.discounts
        ),
        discounted_units=line.discounted_units,
    )


def subsidy_to_return(session: Session, refund: Refund, *, everything: bool) -> dict[tuple[int, int], int]:
    """What a refund gives back of the sub-order's subsidy, by (line id, campaign id): all that was
    not given back yet when it leaves nothing of the sub-order; for a refund of units (`units`),
    exactly those units' share (promotions.refund_line, after the units refunded before);
    nothing for a refund of money only."""
    if everything:
        return unreturned_subsidy(session, refund.sub_order_id)
    if not refund.units:
        return {}
    out: dict[tuple[int, int], int] = defaultdict(int)
    for line_id_text, units in sorted(refund.units.items()):
        line = session.get(OrderLine, int(line_id_text))
        if line is None or line.sub_order_id != refund.sub_order_id or not line.discounts:
            continue
        back = refund_line(
            breakdown_of(line), int(units), already_refunded=units_refunded(session, line, refund.id)
        )
        for d in back.discounts:
            out[(line.id, d.campaign_id)] += d.platform_fen
    return dict(out)


def units_refunded(
    session: Session, line: OrderLine, before_refund_id: int | None = None, *, pending: bool = False
) -> int:
    """Units of an order line refunded by succeeded refunds (other than `before_refund_id`): what
    a refund settling now comes after. With `pending`, refunds still pending count too: the units
    a new refund may no longer ask for (a refund sent while another is pending must not give the
    same units back twice); failed refunds never count."""
    statuses = (RefundStatus.SUCCEEDED, RefundStatus.PENDING) if pending else (RefundStatus.SUCCEEDED,)
    stmt = select(Refund.id, Refund.units).where(
        Refund.sub_order_id == line.sub_order_id, Refund.status.in_(statuses)
    )
    if before_refund_id is not None:
        stmt = stmt.where(Refund.id != before_refund_id)
    return sum(int((units or {}).get(str(line.id), 0)) for _id, units in session.execute(stmt))


def by_campaign(returned: Mapping[tuple[int, int], int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (_line, campaign_id), fen in returned.items():
        out[str(campaign_id)] += fen
    return dict(out)
