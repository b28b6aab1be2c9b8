"""Standing orders (定期代购, issue 11 item 8): a villager's regular need (fertilizer each month, rice
each week) set up by the agent of their point as a standing proxy order, confirmed cycle by cycle.

The standing order holds the villager, the items (product, quantity), how it is paid each time
(one of the proxy payment methods: services/proxy/orders.py METHODS), the cadence (weekly on a
weekday 0 Monday … 6 Sunday, or monthly on a day 1-28, every 1-12 weeks or months, from a start
date) and its status: active, paused or cancelled (for good).

Cycles. The `prepare-standing-orders` job (hourly, services/jobs.py) prepares a cycle for each
due date of an active standing order whose cut-off falls within the next STANDING_ORDER_PREPARE_DAYS
days (default 2): one row per standing order and due date (unique), so a rerun prepares nothing
twice. The same job marks prepared cycles past their cut-off expired: no order.

The cut-off. Until issue 12 brings the points' delivery days and cut-offs, a cycle's cut-off is
STANDING_ORDER_CUTOFF_HOUR (default 22) o'clock China time on the day before its due date; it is
stored on the cycle when prepared, so changing the setting moves only cycles prepared later.

The real order exists only once the agent confirms the cycle, before its cut-off: `confirm`
places it through services.proxy.orders.place with the cycle's own idempotency key (drawn when
the cycle is prepared), with the standing order's items (quantities adjustable for this cycle,
0 leaving a line out) and payment method: a double tap, a replay or a second agent of the point
places one order. A product no longer on sale or short of stock is refused by name, nothing
placed. Skipping a cycle is the agent's choice before the cut-off; pausing or cancelling the
standing order skips its prepared cycles that are still before their cut-off (resuming brings
back those skipped by the pause). After the cut-off, confirming or skipping is refused.

Who may do what: services/authz.py STANDING_ORDER_ACTIONS (the agent of the villager's point).
A standing order or cycle of another point is "not found"; setting one up for another point's
villager is forbidden (services.proxy.shopping.villager_for).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    Cadence,
    CycleStatus,
    Order,
    Role,
    StandingCycle,
    StandingOrder,
    StandingOrderLine,
    StandingStatus,
    User,
    clock,
)
from services import authz, villagers
from services.authz import StandingOrderAction, StandingOrderStanding
from services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationError
from services.i18n import _
from services.orders import cart as carts
from services.orders import checkout
from services.orders.checkout import OutOfStock, Placed
from services.orders.lookup import find_by_key
from services.orders.pricing import CheckoutSettings
from services.payments.gateway import PaymentGateway
from services.proxy import orders as proxy_orders
from services.proxy import shopping
from services.validation import check_text, parse_id, parse_int

CUTOFF_HOUR = 22  # STANDING_ORDER_CUTOFF_HOUR: the day before the due date, China time
PREPARE_DAYS = 2  # STANDING_ORDER_PREPARE_DAYS: cycles whose cut-off is this close are prepared
MAX_LINES = 20  # products in one standing order
MAX_EVERY = 12  # every 1-12 weeks or months
MAX_DAY_OF_MONTH = 28  # every month has it
MAX_START_DAYS = 366  # how far ahead a standing order may start

# How a cycle was skipped (StandingCycle.skip_reason).
SKIPPED_BY_AGENT = "agent"
SKIPPED_BY_PAUSE = "paused"
SKIPPED_BY_CANCEL = "cancelled"


class CutoffPassed(Conflict):
    code = "cutoff_passed"


# --- the cadence ---------------------------------------------------------------------------------


def _month_start(index: int, day: int) -> date:
    return date(index // 12, index % 12 + 1, day)


def iter_due_dates(standing: StandingOrder, on_or_after: date) -> Iterator[date]:
    """The standing order's due dates from `on_or_after` (and its start date) on, in order."""
    start = standing.start_date
    low = max(on_or_after, start)
    every = standing.repeat_every
    if standing.cadence == Cadence.WEEKLY:
        assert standing.weekday is not None
        anchor = start + timedelta(days=(standing.weekday - start.weekday()) % 7)
        step = 7 * every
        gap = (low - anchor).days
        due = anchor + timedelta(days=-(-gap // step) * step if gap > 0 else 0)
        while True:
            yield due
            due += timedelta(days=step)
    assert standing.day_of_month is not None
    day = standing.day_of_month
    first = start.year * 12 + start.month - 1 + (1 if start.day > day else 0)
    wanted = low.year * 12 + low.month - 1 + (1 if low.day > day else 0)
    gap = wanted - first
    index = first + (-(-gap // every) * every if gap > 0 else 0)
    while True:
        yield _month_start(index, day)
        index += every


def due_dates(standing: StandingOrder, first: date, last: date) -> list[date]:
    """The due dates from `first` to `last` (both included)."""
    found: list[date] = []
    for due in iter_due_dates(standing, first):
        if due > last:
            return found
        found.append(due)
    return found  # pragma: no cover (the iterator never ends)


def next_due_dates(standing: StandingOrder, *, count: int = 3, today: date | None = None) -> list[date]:
    """The next `count` due dates from today on (none for a standing order that is not active)."""
    if standing.status != StandingStatus.ACTIVE:
        return []
    found: list[date] = []
    for due in iter_due_dates(standing, today or clock.today()):
        found.append(due)
        if len(found) >= count:
            return found
    return found  # pragma: no cover


def cutoff_for(due: date, hour: int = CUTOFF_HOUR) -> datetime:
    """The cut-off of a due date: `hour` o'clock China time the day before (UTC instant)."""
    return clock.start_of_day(due - timedelta(days=1)) + timedelta(hours=hour)


def cadence_text(standing: StandingOrder) -> Any:
    """每周三 / 每2周的周三 / 每月5日 / 每3个月的5日, in the user's language."""
    if standing.cadence == Cadence.WEEKLY:
        day = WEEKDAY_NAMES[standing.weekday or 0]
        if standing.repeat_every == 1:
            return _("Every week on %(day)s", day=day)
        return _("Every %(n)d weeks on %(day)s", n=standing.repeat_every, day=day)
    if standing.repeat_every == 1:
        return _("Every month on day %(day)d", day=standing.day_of_month or 1)
    return _("Every %(n)d months on day %(day)d", n=standing.repeat_every, day=standing.day_of_month or 1)


WEEKDAY_NAMES = (
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
)


# --- who may act --------------------------------------------------------------------------------


def point_standings(actor: User | None, point_id: int) -> set[StandingOrderStanding]:
    """How `actor` stands to the standing orders of a point: its agent, or nothing."""
    if actor is None or point_id not in authz.node_ids(actor, Role.AGENT):
        return set()
    return {StandingOrderStanding.POINT_AGENT}


def standings(actor: User | None, standing: StandingOrder) -> set[StandingOrderStanding]:
    """How `actor` stands to a standing order: the agent of its point, or nothing."""
    return point_standings(actor, standing.point_id)


def _agent(actor: User | None) -> User:
    actor = authz.require_user(actor)
    if not authz.node_ids(actor, Role.AGENT):
        raise Forbidden(_("Only village agents can do this."))
    return actor


def get_standing(session: Session, actor: User | None, standing_id: Any) -> StandingOrder:
    """A standing order of the agent's point; another point's (or none): not found."""
    actor = _agent(actor)
    found_id = _id_or_none(standing_id)
    standing = session.get(StandingOrder, found_id) if found_id is not None else None
    if standing is None or not authz.may_standing(StandingOrderAction.VIEW, standings(actor, standing)):
        raise NotFound(_("No such standing order."))
    return standing


def get_cycle(session: Session, actor: User | None, cycle_id: Any) -> StandingCycle:
    """A cycle of a standing order of the agent's point; another point's (or none): not found."""
    actor = _agent(actor)
    found_id = _id_or_none(cycle_id)
    cycle = session.get(StandingCycle, found_id) if found_id is not None else None
    if cycle is None or not authz.may_standing(
        StandingOrderAction.VIEW, standings(actor, cycle.standing_order)
    ):
        raise NotFound(_("No such standing order cycle."))
    return cycle


def _id_or_none(raw: Any) -> int | None:
    try:
        return parse_id(raw)
    except ValidationError:
        return None


# --- setting one up -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StandingInput:
    """A standing order as the agent sets it up (raw values from a form or a JSON body)."""

    villager_id: Any
    items: Mapping[Any, Any]
    payment_method: Any
    cadence: Any
    repeat_every: Any = 1
    weekday: Any = None
    day_of_month: Any = None
    start_date: Any = None  # a date or "YYYY-MM-DD"; none: today
    note: str = ""


def _field(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


def _items(session: Session, raw: Any) -> dict[int, int]:
    if not isinstance(raw, Mapping) or not raw:
        raise _field("items", _("Choose at least one product."))
    items = carts.parse_items(raw)  # every quantity 1..999
    if not items:
        raise _field("items", _("Choose at least one product."))
    if len(items) > MAX_LINES:
        raise _field("items", _("At most %(n)d different products per standing order.", n=MAX_LINES))
    for product_id in items:
        try:
            carts.buyable_product(session, product_id)
        except NotFound:
            raise _field("items", _("This product is not on sale.")) from None
    return items


def _cadence(data: StandingInput) -> tuple[Cadence, int, int | None, int | None]:
    value = getattr(data.cadence, "value", data.cadence)
    cadence = next((c for c in Cadence if c.value == value), None)
    if cadence is None:
        raise _field("cadence", _("Choose weekly or monthly."))
    every = parse_int(data.repeat_every, "repeat_every", minimum=1, maximum=MAX_EVERY)
    if cadence == Cadence.WEEKLY:
        if data.weekday is None or data.weekday == "":
            raise _field("weekday", _("Choose the day of the week."))
        return cadence, every, parse_int(data.weekday, "weekday", minimum=0, maximum=6), None
    if data.day_of_month is None or data.day_of_month == "":
        raise _field("day_of_month", _("Choose the day of the month."))
    day = parse_int(data.day_of_month, "day_of_month", minimum=1, maximum=MAX_DAY_OF_MONTH)
    return cadence, every, None, day


def _start_date(raw: Any, today: date) -> date:
    if raw is None or raw == "":
        return today
    if isinstance(raw, datetime):
        raw = raw.date()
    if not isinstance(raw, date):
        try:
            raw = date.fromisoformat(str(raw).strip()[:10])
        except ValueError:
            raise _field("start_date", _("Enter a date like 2026-12-01.")) from None
    if raw < today:
        raise _field("start_date", _("The start date cannot be in the past."))
    if raw > today + timedelta(days=MAX_START_DAYS):
        raise _field("start_date", _("The start date must be within a year."))
    return raw


def create(
    session: Session,
    actor: User | None,
    data: StandingInput,
    key: Any,
    *,
    now: datetime | None = None,
) -> StandingOrder:
    """Set up a standing order for a villager of the agent's point (another point's: 403). The
    same key again returns the one set up first; the key used for another villager is refused."""
    villager_id = _id_or_none(data.villager_id)
    if villager_id is None:
        raise NotFound(_("No such villager."))
    villager = shopping.villager_for(session, actor, villager_id)
    assert actor is not None
    authz.require_standing(StandingOrderAction.SET_UP, point_standings(actor, villager.point_id))
    key = checkout.check_idempotency_key(key)
    existing = _by_key(session, actor.id, key)
    if existing is not None:
        if existing.villager_id != villager.id:
            raise Conflict(
                _("This form was already used for another standing order. Please reload the page.")
            )
        return existing
    now = now or clock.now()
    method = proxy_orders._method(data.payment_method)
    items = _items(session, data.items)
    cadence, every, weekday, day = _cadence(data)
    start = _start_date(data.start_date, clock.local(now).date())
    standing = StandingOrder(
        villager_id=villager.id,
        point_id=villager.point_id,
        payment_method=method,
        cadence=cadence,
        repeat_every=every,
        weekday=weekday,
        day_of_month=day,
        start_date=start,
        status=StandingStatus.ACTIVE,
        note=check_text(data.note, "note", max_len=200),
        created_by_id=actor.id,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    standing.lines = [StandingOrderLine(product_id=pid, quantity=qty) for pid, qty in items.items()]
    session.add(standing)
    try:
        session.commit()
    except IntegrityError:  # the same key at the same time: the first one stands
        session.rollback()
        existing = _by_key(session, actor.id, key)
        if existing is None:
            raise
        return existing
    return standing


def _by_key(session: Session, agent_id: int, key: str) -> StandingOrder | None:
    return session.scalar(
        select(StandingOrder).where(
            StandingOrder.created_by_id == agent_id, StandingOrder.idempotency_key == key
        )
    )


# --- lists --------------------------------------------------------------------------------------


def _points(actor: User | None) -> set[int]:
    return authz.node_ids(_agent(actor), Role.AGENT)


def list_standing(
    session: Session, actor: User | None, *, villager_id: int | None = None, include_cancelled: bool = False
) -> list[StandingOrder]:
    """The standing orders of the agent's points (or of one villager), active first."""
    stmt = select(StandingOrder).where(StandingOrder.point_id.in_(_points(actor)))
    if villager_id is not None:
        stmt = stmt.where(StandingOrder.villager_id == villager_id)
    if not include_cancelled:
        stmt = stmt.where(StandingOrder.status != StandingStatus.CANCELLED)
    rows = list(session.scalars(stmt.order_by(StandingOrder.id.desc()).limit(200)).unique())
    order = {StandingStatus.ACTIVE: 0, StandingStatus.PAUSED: 1, StandingStatus.CANCELLED: 2}
    return sorted(rows, key=lambda s: order[s.status])


def _to_confirm(actor: User | None, now: datetime) -> Select[tuple[StandingCycle]]:
    return (
        select(StandingCycle)
        .join(StandingOrder, StandingOrder.id == StandingCycle.standing_order_id)
        .where(
            StandingOrder.point_id.in_(_points(actor)),
            StandingCycle.status == CycleStatus.PREPARED,
            StandingCycle.cutoff_at > now,
        )
    )


def cycles_to_confirm(
    session: Session, actor: User | None, *, now: datetime | None = None, limit: int = 100
) -> list[StandingCycle]:
    """Prepared cycles of the agent's points still before their cut-off, nearest cut-off first."""
    stmt = _to_confirm(actor, now or clock.now())
    stmt = stmt.order_by(StandingCycle.cutoff_at, StandingCycle.id).limit(max(1, min(limit, 200)))
    return list(session.scalars(stmt).unique())


def count_to_confirm(session: Session, actor: User | None, *, now: datetime | None = None) -> int:
    """How many cycles wait for the agent (cycles_to_confirm, counted)."""
    stmt = _to_confirm(actor, now or clock.now()).with_only_columns(func.count(StandingCycle.id))
    return int(session.scalar(stmt) or 0)


def cycles_of(session: Session, standing: StandingOrder, *, limit: int = 24) -> list[StandingCycle]:
    """A standing order's cycles, latest due date first (the caller checked who may see it)."""
    return list(
        session.scalars(
            select(StandingCycle)
            .where(StandingCycle.standing_order_id == standing.id)
            .order_by(StandingCycle.due_date.desc())
            .limit(limit)
        ).unique()
    )


@dataclass(frozen=True)
class LineView:
    product_id: int
    name: str
    unit: str
    unit_price_fen: int
    quantity: int
    problem: Any = None  # why it cannot be ordered now (no longer on sale, only n left)


@dataclass(frozen=True)
class StandingView:
    """A standing order as its agent sees it: the villager's name as services/villagers shows it,
    the lines priced now, the total (with shipping to the point) and what stands in the way."""

    standing: StandingOrder
    villager_name: str
    cadence: Any
    lines: list[LineView]
    total_fen: int
    next_due: list[date]


@dataclass(frozen=True)
class CycleView:
    cycle: StandingCycle
    standing: StandingView
    state: str  # to_confirm, confirmed, skipped, expired, closed (past its cut-off)


def describe(
    session: Session,
    actor: User | None,
    standing: StandingOrder,
    settings: CheckoutSettings,
    *,
    quantities: Mapping[int, int] | None = None,
) -> StandingView:
    items = {line.product_id: line.quantity for line in standing.lines}
    if quantities is not None:
        items = {pid: quantities.get(pid, qty) for pid, qty in items.items()}
    wanted = {pid: qty for pid, qty in items.items() if qty > 0}
    quote = shopping.quote(session, wanted, settings)
    problems = {line.product.id: line.problem for line in quote.problems}
    lines = [
        LineView(
            product_id=line.product_id,
            name=line.product.name,
            unit=line.product.unit.value,
            unit_price_fen=line.product.price_fen,
            quantity=items[line.product_id],
            problem=problems.get(line.product_id),
        )
        for line in standing.lines
    ]
    return StandingView(
        standing=standing,
        villager_name=villagers.present(standing.villager, actor).name,
        cadence=cadence_text(standing),
        lines=lines,
        total_fen=quote.total_fen,
        next_due=next_due_dates(standing),
    )


def cycle_state(cycle: StandingCycle, *, now: datetime | None = None) -> str:
    if cycle.status == CycleStatus.PREPARED:
        return "to_confirm" if (now or clock.now()) < cycle.cutoff_at else "closed"
    return cycle.status.value


def describe_cycle(
    session: Session,
    actor: User | None,
    cycle: StandingCycle,
    settings: CheckoutSettings,
    *,
    now: datetime | None = None,
) -> CycleView:
    return CycleView(
        cycle=cycle,
        standing=describe(session, actor, cycle.standing_order, settings),
        state=cycle_state(cycle, now=now),
    )


# --- the job: prepare due cycles, expire the unconfirmed ----------------------------------------


@dataclass
class PrepareReport:
    prepared: int = 0
    expired: int = 0
    confirmed: int = 0  # claimed cycles whose order was placed but not yet recorded


def prepare_cycles(
    session: Session,
    *,
    cutoff_hour: int = CUTOFF_HOUR,
    prepare_days: int = PREPARE_DAYS,
    now: datetime | None = None,
) -> PrepareReport:
    """Prepare a cycle for each due date of the active standing orders whose cut-off is after
    now and within `prepare_days` days; mark prepared cycles past their cut-off expired. A rerun
    prepares nothing twice (one cycle per standing order and due date)."""
    now = now or clock.now()
    hour = max(0, min(int(cutoff_hour), 23))
    report = PrepareReport()
    _expire(session, now, report)
    horizon = now + timedelta(days=max(int(prepare_days), 0))
    today = clock.local(now).date()
    last = clock.local(horizon).date() + timedelta(days=1)  # a cut-off is the day before
    active = session.scalars(
        select(StandingOrder).where(StandingOrder.status == StandingStatus.ACTIVE).order_by(StandingOrder.id)
    ).unique()
    for standing in active:
        due = [d for d in due_dates(standing, today, last) if now < cutoff_for(d, hour) <= horizon]
        if not due:
            continue
        known = set(
            session.scalars(
                select(StandingCycle.due_date).where(
                    StandingCycle.standing_order_id == standing.id, StandingCycle.due_date.in_(due)
                )
            )
        )
        for day in due:
            if day in known:
                continue
            session.add(
                StandingCycle(
                    standing_order_id=standing.id,
                    due_date=day,
                    cutoff_at=cutoff_for(day, hour),
                    status=CycleStatus.PREPARED,
                    order_key=f"sc-{secrets.token_urlsafe(18)}",
                    created_at=now,
                )
            )
            report.prepared += 1
    session.commit()
    return report


def _placed_order(session: Session, cycle: StandingCycle) -> Order | None:
    """The order a claimed cycle's agent placed with its key, if it got that far."""
    if cycle.placed_by_id is None:
        return None
    villager = cycle.standing_order.villager
    buyer_id = villager.user_id if villager.user_id is not None else cycle.placed_by_id
    return find_by_key(session, buyer_id, cycle.order_key)


def _expire(session: Session, now: datetime, report: PrepareReport) -> None:
    due = session.scalars(
        select(StandingCycle)
        .where(StandingCycle.status == CycleStatus.PREPARED, StandingCycle.cutoff_at <= now)
        .order_by(StandingCycle.id)
        .with_for_update(skip_locked=True, of=StandingCycle)
    ).unique()
    for cycle in due:
        order = _placed_order(session, cycle)
        if order is not None:  # placed, then cut short before it was recorded: record it
            cycle.status = CycleStatus.CONFIRMED
            cycle.order_id = order.id
            cycle.decided_by_id = cycle.placed_by_id
            cycle.decided_at = order.created_at
            report.confirmed += 1
        else:
            cycle.status = CycleStatus.EXPIRED
            cycle.decided_at = now
            report.expired += 1
    session.flush()


# --- the agent's decisions on a cycle -----------------------------------------------------------


def _locked_cycle(session: Session, cycle_id: int) -> StandingCycle:
    cycle = session.scalar(
        select(StandingCycle)
        .where(StandingCycle.id == cycle_id)
        .with_for_update(of=StandingCycle)
        .execution_options(populate_existing=True)
    )
    assert cycle is not None
    return cycle


def _refuse_closed(cycle: StandingCycle, now: datetime) -> None:
    """Conflict unless the cycle may still be confirmed or skipped."""
    if cycle.standing_order.status == StandingStatus.CANCELLED:
        raise Conflict(_("This standing order was cancelled."))
    if cycle.standing_order.status == StandingStatus.PAUSED and cycle.placed_by_id is None:
        raise Conflict(_("This standing order is paused. Resume it first."))
    if cycle.status == CycleStatus.SKIPPED:
        if cycle.skip_reason == SKIPPED_BY_PAUSE:
            raise Conflict(_("This standing order is paused. Resume it first."))
        raise Conflict(_("This cycle was skipped."))
    if cycle.status == CycleStatus.EXPIRED or now >= cycle.cutoff_at:
        raise CutoffPassed(
            _(
                "The cut-off for this cycle (%(at)s) has passed: it can no longer be confirmed or skipped.",
                at=f"{clock.local(cycle.cutoff_at):%Y-%m-%d %H:%M}",
            )
        )


def _cycle_items(cycle: StandingCycle, quantities: Mapping[Any, Any] | None) -> dict[int, int]:
    """The standing order's items with this cycle's quantities (0 leaves a line out)."""
    items = {line.product_id: line.quantity for line in cycle.standing_order.lines}
    if quantities:
        if not isinstance(quantities, Mapping):
            raise _field("quantities", _("The cart is not valid."))
        for raw_id, raw_qty in quantities.items():
            product_id = _id_or_none(raw_id)
            if product_id is None or product_id not in items:
                raise _field("quantities", _("This product is not part of the standing order."))
            items[product_id] = carts.parse_quantity(raw_qty, allow_zero=True)
    wanted = {pid: qty for pid, qty in items.items() if qty > 0}
    if not wanted:
        raise _field("quantities", _("Nothing to order: enter a quantity for at least one product."))
    return wanted


def _check_available(session: Session, items: Mapping[int, int], settings: CheckoutSettings) -> None:
    """OutOfStock naming the first product that cannot be ordered as asked."""
    quote = shopping.quote(session, items, settings)
    priced = {line.product.id for line in quote.lines}
    for line in quote.problems:
        raise OutOfStock(
            _("%(name)s: %(problem)s", name=line.product.name, problem=line.problem),
            field_errors={f"items.{line.product.id}": [line.problem]},
        )
    if set(items) - priced:
        raise OutOfStock(_("A product of this standing order is no longer on sale."))


def confirm(
    session: Session,
    gateway: PaymentGateway | None,
    actor: User | None,
    cycle_id: Any,
    key: Any,
    settings: CheckoutSettings,
    *,
    quantities: Mapping[Any, Any] | None = None,
    return_url: str | None = None,
    now: datetime | None = None,
) -> StandingCycle:
    """Confirm a prepared cycle before its cut-off: its proxy order is placed (services.proxy)
    with the cycle's idempotency key, the standing order's payment method and items (this
    cycle's `quantities`, if given). Confirming again (any key) returns the cycle with its one
    order. After the cut-off, for a skipped cycle or a cancelled standing order: 409."""
    cycle = get_cycle(session, actor, cycle_id)
    assert actor is not None
    authz.require_standing(StandingOrderAction.CONFIRM, standings(actor, cycle.standing_order))
    key = checkout.check_idempotency_key(key)
    now = now or clock.now()
    cycle = _locked_cycle(session, cycle.id)
    if cycle.status == CycleStatus.CONFIRMED:
        session.commit()
        return cycle
    _refuse_closed(cycle, now)
    standing = cycle.standing_order
    placed = _placed_order(session, cycle) if cycle.placed_by_id == actor.id else None
    items: dict[int, int] = {}
    if placed is not None:  # placed before, not yet recorded: finish with the same items
        for sub in placed.sub_orders:
            for line in sub.lines:
                items[line.product_id] = items.get(line.product_id, 0) + line.quantity
    else:
        items = _cycle_items(cycle, quantities)
        _check_available(session, items, settings)
    if cycle.placed_by_id is not None and cycle.placed_by_id != actor.id:
        raise Conflict(_("Another agent of the point is confirming this cycle."))
    if cycle.placed_by_id is None:
        # Claimed before placing (placing commits): a second agent of the point waits here and
        # then finds it claimed, so the cycle never gets two orders.
        cycle.placed_by_id = actor.id
        cycle.confirm_key = key
    cycle_pk = cycle.id
    session.commit()
    try:
        result: Placed = proxy_orders.place(
            session,
            gateway,
            actor,
            standing.villager_id,
            standing.payment_method,
            cycle.order_key,
            settings,
            items=items,
            return_url=return_url,
            now=now,
        )
    except ServiceError:
        session.rollback()
        cycle = _locked_cycle(session, cycle_pk)
        if _placed_order(session, cycle) is None:
            cycle.placed_by_id = None  # nothing placed: free the claim for the next try
            cycle.confirm_key = None
        session.commit()
        raise
    cycle = _locked_cycle(session, cycle_pk)
    cycle.status = CycleStatus.CONFIRMED
    cycle.order_id = result.order.id
    cycle.skip_reason = ""
    cycle.decided_by_id = actor.id
    cycle.decided_at = now
    session.commit()
    return cycle


def skip(
    session: Session, actor: User | None, cycle_id: Any, *, now: datetime | None = None
) -> StandingCycle:
    """Skip a prepared cycle before its cut-off: no order this time. Skipping again changes
    nothing; a confirmed cycle is not skipped (cancel its order instead); after the cut-off: 409."""
    cycle = get_cycle(session, actor, cycle_id)
    assert actor is not None
    authz.require_standing(StandingOrderAction.CHANGE, standings(actor, cycle.standing_order))
    now = now or clock.now()
    cycle = _locked_cycle(session, cycle.id)
    if cycle.status == CycleStatus.SKIPPED and cycle.skip_reason == SKIPPED_BY_AGENT:
        session.commit()
        return cycle
    if cycle.status == CycleStatus.CONFIRMED:
        raise Conflict(_("This cycle is already confirmed: cancel its order instead."))
    _refuse_closed(cycle, now)
    if cycle.placed_by_id is not None:
        raise Conflict(_("This cycle is being confirmed. Reload the page."))
    cycle.status = CycleStatus.SKIPPED
    cycle.skip_reason = SKIPPED_BY_AGENT
    cycle.decided_by_id = actor.id
    cycle.decided_at = now
    session.commit()
    return cycle


# --- pausing, resuming, cancelling --------------------------------------------------------------


def _changeable(session: Session, actor: User | None, standing_id: Any) -> StandingOrder:
    standing = get_standing(session, actor, standing_id)
    authz.require_standing(StandingOrderAction.CHANGE, standings(actor, standing))
    locked = session.scalar(
        select(StandingOrder)
        .where(StandingOrder.id == standing.id)
        .with_for_update(of=StandingOrder)
        .execution_options(populate_existing=True)
    )
    assert locked is not None
    return locked


def _open_cycles(
    session: Session, standing: StandingOrder, now: datetime, status: CycleStatus, reason: str = ""
) -> list[StandingCycle]:
    stmt = select(StandingCycle).where(
        StandingCycle.standing_order_id == standing.id,
        StandingCycle.status == status,
        StandingCycle.cutoff_at > now,
        StandingCycle.placed_by_id.is_(None),
    )
    if reason:
        stmt = stmt.where(StandingCycle.skip_reason == reason)
    return list(session.scalars(stmt.with_for_update(of=StandingCycle)).unique())


def _set_status(
    session: Session, actor: User | None, standing_id: Any, target: StandingStatus, now: datetime | None
) -> StandingOrder:
    standing = _changeable(session, actor, standing_id)
    assert actor is not None
    now = now or clock.now()
    if standing.status == target:
        session.commit()
        return standing
    if standing.status == StandingStatus.CANCELLED:
        raise Conflict(_("This standing order was cancelled."))
    if target == StandingStatus.ACTIVE:
        for cycle in _open_cycles(session, standing, now, CycleStatus.SKIPPED, SKIPPED_BY_PAUSE):
            cycle.status = CycleStatus.PREPARED
            cycle.skip_reason = ""
            cycle.decided_by_id = None
            cycle.decided_at = None
    else:
        reason = SKIPPED_BY_PAUSE if target == StandingStatus.PAUSED else SKIPPED_BY_CANCEL
        for cycle in _open_cycles(session, standing, now, CycleStatus.PREPARED):
            cycle.status = CycleStatus.SKIPPED
            cycle.skip_reason = reason
            cycle.decided_by_id = actor.id
            cycle.decided_at = now
        if target == StandingStatus.CANCELLED:  # cycles skipped by an earlier pause stay skipped for good
            for cycle in _open_cycles(session, standing, now, CycleStatus.SKIPPED, SKIPPED_BY_PAUSE):
                cycle.skip_reason = SKIPPED_BY_CANCEL
    standing.status = target
    standing.updated_at = now
    session.commit()
    return standing


def pause(
    session: Session, actor: User | None, standing_id: Any, *, now: datetime | None = None
) -> StandingOrder:
    """No cycles while paused; its prepared cycles before their cut-off are skipped."""
    return _set_status(session, actor, standing_id, StandingStatus.PAUSED, now)


def resume(
    session: Session, actor: User | None, standing_id: Any, *, now: datetime | None = None
) -> StandingOrder:
    """Active again: the cycles the pause skipped and still before their cut-off come back."""
    return _set_status(session, actor, standing_id, StandingStatus.ACTIVE, now)


def cancel(
    session: Session, actor: User | None, standing_id: Any, *, now: datetime | None = None
) -> StandingOrder:
    """Cancelled for good: its prepared cycles before their cut-off are skipped. Confirmed
    cycles keep their orders (cancel an unpaid one through the proxy orders)."""
    return _set_status(session, actor, standing_id, StandingStatus.CANCELLED, now)
