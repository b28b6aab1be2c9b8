"""Standing orders (定期代购, issue 11 item 8): an agent sets up a villager's regular need; the
prepare-standing-orders job prepares each due cycle once, before its cut-off (22:00 China time the
day before the due date); the real proxy order exists only once the agent confirms the cycle
(exactly one, paid in cash or on the agent's credit); skipping, expiring after the cut-off,
pausing, resuming, cancelling; weekly and monthly cadences (month ends too) on a frozen clock;
bad input. Ledger invariants are checked after each test (tests/conftest.py LEDGER_CHECKED)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import (
    Cadence,
    CycleStatus,
    Order,
    PaymentStatus,
    Product,
    ProductStatus,
    Role,
    StandingCycle,
    StandingOrder,
    StandingOrderLine,
    StandingStatus,
    Unit,
)
from services import cash, jobs, proxy, standing, villagers
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.orders.checkout import OutOfStock
from services.orders.pricing import CheckoutSettings
from services.standing import StandingInput
from services.villagers import VillagerInput
from tests.conftest import NOW, YINGDE, count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
FERTILIZER = "复合肥"
RICE = "东北大米"
SATURDAY = 5


def china(y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> datetime:
    """A China wall-clock time as the UTC instant."""
    return datetime(y, m, d, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def register(session, agent, point, name="陈阿婆", phone="13912340000"):  # type: ignore[no-untyped-def]
    return villagers.register_villager(
        session,
        agent,
        VillagerInput(name=name, village_code=point.division_code, phone=phone),
        idempotency_key=f"villager-{name}-{phone or 'none'}",
    )


@pytest.fixture()
def villager(session, agent, point):  # type: ignore[no-untyped-def]
    return register(session, agent, point)


@pytest.fixture()
def rice(market):  # type: ignore[no-untyped-def]
    return market.shop.add(
        RICE, "fertilizer", 6000, seller=market.shop.merchant, unit=Unit.BAG, net_weight_g=10000, stock=50
    )


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def set_up(session, agent, villager, items, *, key="standing-key-0001", **cadence):  # type: ignore[no-untyped-def]
    data = StandingInput(
        villager_id=villager.id,
        items=items,
        payment_method=cadence.pop("method", "cash"),
        cadence=cadence.pop("cadence", "weekly"),
        repeat_every=cadence.pop("every", 1),
        weekday=cadence.pop("weekday", SATURDAY if "day_of_month" not in cadence else None),
        day_of_month=cadence.pop("day_of_month", None),
        start_date=cadence.pop("start_date", None),
    )
    assert not cadence
    return standing.create(session, agent, data, key)


def prepare(session, **kw):  # type: ignore[no-untyped-def]
    return standing.prepare_cycles(session, **kw)


def cycles(session, so) -> list[StandingCycle]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(
        session.scalars(
            select(StandingCycle)
            .where(StandingCycle.standing_order_id == so.id)
            .order_by(StandingCycle.due_date)
        )
    )


def proxy_orders(session, villager) -> list[Order]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Order).where(Order.villager_id == villager.id)))


def schedule(cadence: str, start: date, *, every: int = 1, weekday=None, day=None) -> StandingOrder:  # type: ignore[no-untyped-def]
    return StandingOrder(
        cadence=Cadence(cadence),
        repeat_every=every,
        weekday=weekday,
        day_of_month=day,
        start_date=start,
        status=StandingStatus.ACTIVE,
    )


class TestSettingUp:
    def test_a_standing_order_for_a_villager_of_the_point(self, session, market, agent, villager, rice):
        fertilizer = market.product(FERTILIZER)
        so = set_up(session, agent, villager, {fertilizer.id: 2, rice.id: 1})
        assert (so.villager_id, so.point_id, so.created_by_id) == (villager.id, villager.point_id, agent.id)
        assert (so.cadence, so.weekday, so.repeat_every, so.status) == (
            Cadence.WEEKLY,
            SATURDAY,
            1,
            StandingStatus.ACTIVE,
        )
        assert so.start_date == date(2026, 11, 26)  # today, China's calendar
        assert {(line.product_id, line.quantity) for line in so.lines} == {(fertilizer.id, 2), (rice.id, 1)}
        # The same key again: the same standing order, nothing written twice.
        again = set_up(session, agent, villager, {fertilizer.id: 5})
        assert again.id == so.id and count(session, StandingOrder) == 1
        other = register(session, agent, villager.point, name="李伯", phone="")
        with pytest.raises(Conflict):
            set_up(session, agent, other, {fertilizer.id: 1})
        assert [s.id for s in standing.list_standing(session, agent)] == [so.id]
        view = standing.describe(session, agent, so, SETTINGS)
        assert view.villager_name == "陈阿婆"
        assert view.total_fen >= 2 * 16500 + 6000
        assert view.next_due[0] == date(2026, 11, 28)
        assert str(view.cadence) == "Every week on Saturday"

    @pytest.mark.parametrize(
        ("cadence", "field"),
        [
            ({"weekday": 7}, "weekday"),
            ({"weekday": -1}, "weekday"),
            ({"weekday": "周三"}, "weekday"),
            ({"weekday": ""}, "weekday"),
            ({"cadence": "monthly", "day_of_month": 0}, "day_of_month"),
            ({"cadence": "monthly", "day_of_month": 29}, "day_of_month"),
            ({"cadence": "monthly", "day_of_month": 31}, "day_of_month"),
            ({"cadence": "monthly"}, "day_of_month"),
            ({"every": 0}, "repeat_every"),
            ({"every": 13}, "repeat_every"),
            ({"every": 10**30}, "repeat_every"),
            ({"cadence": "daily"}, "cadence"),
            ({"method": "card"}, "payment_method"),
            ({"start_date": "2026-11-25"}, "start_date"),
            ({"start_date": "2028-01-01"}, "start_date"),
            ({"start_date": "yesterday"}, "start_date"),
        ],
    )
    def test_bad_cadence_method_or_start_is_refused_and_nothing_written(
        self, session, market, agent, villager, cadence, field
    ):
        with pytest.raises(ValidationError) as caught:
            set_up(session, agent, villager, {market.product(FERTILIZER).id: 1}, **cadence)
        assert field in caught.value.field_errors
        assert count(session, StandingOrder) == 0 and count(session, StandingOrderLine) == 0

    @pytest.mark.parametrize("items", [{}, {"x": 1}, "fertilizer", None])
    def test_no_items_is_refused(self, session, agent, villager, items):
        with pytest.raises(ValidationError) as caught:
            set_up(session, agent, villager, items)
        assert "items" in caught.value.field_errors
        assert count(session, StandingOrder) == 0

    @pytest.mark.parametrize("quantity", [0, -1, 1000, 10**12, "many", 1.5, True])
    def test_a_quantity_not_from_1_to_999_is_refused(self, session, market, agent, villager, quantity):
        with pytest.raises(ValidationError):
            set_up(session, agent, villager, {market.product(FERTILIZER).id: quantity})
        assert count(session, StandingOrder) == 0

    def test_a_product_not_on_sale_is_refused(self, session, market, agent, villager):
        with pytest.raises(ValidationError) as caught:
            set_up(session, agent, villager, {market.product("暂停的柚子").id: 1})
        assert "items" in caught.value.field_errors
        with pytest.raises(ValidationError):
            set_up(session, agent, villager, {2**31 - 2: 1})
        assert count(session, StandingOrder) == 0

    def test_another_points_villager_or_standing_order_is_refused(
        self, session, market, agent, villager, make_user, village_point
    ):
        elsewhere = village_point(YINGDE)
        their_agent = make_user(Role.AGENT, node_id=elsewhere.id)
        theirs = register(session, their_agent, elsewhere, name="黄婆婆")
        fertilizer = market.product(FERTILIZER).id
        with pytest.raises(Forbidden):
            set_up(session, agent, theirs, {fertilizer: 1})
        assert count(session, StandingOrder) == 0
        their_so = set_up(session, their_agent, theirs, {fertilizer: 1}, key="standing-key-theirs")
        prepare(session)
        (their_cycle,) = cycles(session, their_so)
        for call in (
            lambda: standing.get_standing(session, agent, their_so.id),
            lambda: standing.pause(session, agent, their_so.id),
            lambda: standing.cancel(session, agent, their_so.id),
            lambda: standing.skip(session, agent, their_cycle.id),
            lambda: standing.confirm(session, None, agent, their_cycle.id, "confirm-key-0001", SETTINGS),
        ):
            with pytest.raises(NotFound):
                call()
        assert standing.list_standing(session, agent) == []
        assert standing.cycles_to_confirm(session, agent) == []
        assert cycles(session, their_so)[0].status == CycleStatus.PREPARED
        assert count(session, Order) == 0
        with pytest.raises(NotFound):
            standing.get_standing(session, agent, "nonsense")
        with pytest.raises(NotFound):
            standing.get_cycle(session, agent, 10**20)

    def test_only_agents_set_up_standing_orders(self, session, market, villager, make_user):
        buyer = make_user(Role.BUYER)
        with pytest.raises(Forbidden):
            set_up(session, buyer, villager, {market.product(FERTILIZER).id: 1})
        with pytest.raises(Forbidden):
            standing.list_standing(session, buyer)


class TestCycles:
    def test_the_job_prepares_the_next_cycle_once_and_the_agent_confirms_one_cash_order(
        self, session, market, agent, villager, clock
    ):
        fertilizer = market.product(FERTILIZER)
        so = set_up(session, agent, villager, {fertilizer.id: 2})
        ctx = jobs.JobContext(settings={}, now=None)
        outcome = jobs.run_job(lambda: _lent(session), "prepare-standing-orders", context=ctx)
        assert outcome.ok and outcome.result == {"prepared": 1, "expired": 0, "confirmed": 0}
        assert prepare(session).prepared == 0  # a rerun prepares nothing twice
        (cycle,) = cycles(session, so)
        assert (cycle.due_date, cycle.cutoff_at, cycle.status) == (
            date(2026, 11, 28),
            china(2026, 11, 27, 22),
            CycleStatus.PREPARED,
        )
        assert proxy_orders(session, villager) == []  # no order until confirmed
        assert [c.id for c in standing.cycles_to_confirm(session, agent)] == [cycle.id]
        held = cash.cash_held(session, agent.id)

        done = standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert done.status == CycleStatus.CONFIRMED and done.order_id is not None
        (order,) = proxy_orders(session, villager)
        assert done.order_id == order.id and order.placed_by_id == agent.id
        assert order.payment.status == PaymentStatus.SUCCEEDED  # cash taken at once
        assert [(line.product_id, line.quantity) for sub in order.sub_orders for line in sub.lines] == [
            (fertilizer.id, 2)
        ]
        assert cash.cash_held(session, agent.id) == held + order.total_fen
        # A double tap, a replay with another key: the one order.
        for key in ("confirm-key-0001", "confirm-key-0002"):
            again = standing.confirm(
                session, None, agent, cycle.id, key, SETTINGS, quantities={fertilizer.id: 5}
            )
            assert again.order_id == order.id
        assert len(proxy_orders(session, villager)) == 1
        assert cash.cash_held(session, agent.id) == held + order.total_fen
        assert standing.cycles_to_confirm(session, agent) == []
        with pytest.raises(Conflict):
            standing.skip(session, agent, cycle.id)

        # A week on (the job running hourly), the next Saturday's cycle, once.
        clock.set(china(2026, 12, 2, 22, 30))
        assert prepare(session).prepared == 1
        assert prepare(session).prepared == 0
        assert [c.due_date for c in cycles(session, so)] == [date(2026, 11, 28), date(2026, 12, 5)]

    def test_confirmed_on_the_agents_credit(self, session, market, agent, villager, staff, clock):
        proxy.set_credit_limit(session, staff, agent.id, 100_000, "credit-limit-key-01")
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1}, method="credit")
        prepare(session)
        (cycle,) = cycles(session, so)
        standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        (order,) = proxy_orders(session, villager)
        assert order.payment.status == PaymentStatus.ON_CREDIT
        assert proxy.credit_used(session, agent.id) == order.total_fen

    def test_over_the_credit_limit_nothing_is_placed_and_it_may_be_tried_again(
        self, session, market, agent, villager, staff, clock
    ):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1}, method="credit")
        prepare(session)
        (cycle,) = cycles(session, so)
        with pytest.raises(proxy.CreditExceeded):
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert proxy_orders(session, villager) == []
        assert cycles(session, so)[0].status == CycleStatus.PREPARED
        proxy.set_credit_limit(session, staff, agent.id, 100_000, "credit-limit-key-01")
        standing.confirm(session, None, agent, cycle.id, "confirm-key-0002", SETTINGS)
        assert len(proxy_orders(session, villager)) == 1

    def test_quantities_adjusted_for_this_cycle(self, session, market, agent, villager, rice, clock):
        fertilizer = market.product(FERTILIZER)
        so = set_up(session, agent, villager, {fertilizer.id: 2, rice.id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        for bad in (
            {fertilizer.id: 0, rice.id: 0},
            {fertilizer.id: -1},
            {fertilizer.id: 1000},
            {12345678: 1},
        ):
            with pytest.raises(ValidationError):
                standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS, quantities=bad)
        assert proxy_orders(session, villager) == []
        standing.confirm(
            session,
            None,
            agent,
            cycle.id,
            "confirm-key-0001",
            SETTINGS,
            quantities={str(fertilizer.id): "0", rice.id: 3},
        )
        (order,) = proxy_orders(session, villager)
        assert {(line.product_id, line.quantity) for sub in order.sub_orders for line in sub.lines} == {
            (rice.id, 3)
        }
        session.expire_all()  # the standing order itself keeps its quantities
        assert {(line.product_id, line.quantity) for line in session.get(StandingOrder, so.id).lines} == {
            (fertilizer.id, 2),
            (rice.id, 1),
        }

    def test_a_product_gone_or_short_is_named_and_nothing_placed(
        self, session, market, agent, villager, rice, clock
    ):
        fertilizer = market.product(FERTILIZER)
        so = set_up(session, agent, villager, {fertilizer.id: 2, rice.id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        session.get(Product, rice.id).status = ProductStatus.PAUSED
        session.commit()
        with pytest.raises(OutOfStock) as caught:
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert RICE in str(caught.value.message)
        session.get(Product, rice.id).status = ProductStatus.ACTIVE
        session.get(Product, fertilizer.id).stock = 1
        session.commit()
        with pytest.raises(OutOfStock) as caught:
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert FERTILIZER in str(caught.value.message)
        assert proxy_orders(session, villager) == []
        (cycle,) = cycles(session, so)
        assert (cycle.status, cycle.placed_by_id) == (CycleStatus.PREPARED, None)
        # Fewer this time: it goes through.
        standing.confirm(
            session, None, agent, cycle.id, "confirm-key-0001", SETTINGS, quantities={fertilizer.id: 1}
        )
        assert len(proxy_orders(session, villager)) == 1

    def test_skip_before_the_cut_off(self, session, market, agent, villager, clock):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        skipped = standing.skip(session, agent, cycle.id)
        assert (skipped.status, skipped.skip_reason, skipped.decided_by_id) == (
            CycleStatus.SKIPPED,
            "agent",
            agent.id,
        )
        assert standing.skip(session, agent, cycle.id).status == CycleStatus.SKIPPED  # again: the same
        with pytest.raises(Conflict):
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert proxy_orders(session, villager) == []
        assert standing.cycles_to_confirm(session, agent) == []
        assert prepare(session).prepared == 0  # a skipped cycle is not prepared again

    def test_after_the_cut_off_it_expires_and_cannot_be_confirmed_or_skipped(
        self, session, market, agent, villager, clock
    ):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        clock.set(china(2026, 11, 27, 21, 59))
        assert [c.id for c in standing.cycles_to_confirm(session, agent)] == [cycle.id]
        clock.set(china(2026, 11, 27, 22, 0))  # the cut-off: before the job even ran
        assert standing.cycles_to_confirm(session, agent) == []
        with pytest.raises(standing.CutoffPassed) as caught:
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert caught.value.status == 409 and "2026-11-27 22:00" in str(caught.value.message)
        with pytest.raises(standing.CutoffPassed):
            standing.skip(session, agent, cycle.id)
        report = prepare(session)
        assert (report.expired, report.prepared) == (1, 0)
        assert cycles(session, so)[0].status == CycleStatus.EXPIRED
        with pytest.raises(standing.CutoffPassed):
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert proxy_orders(session, villager) == []
        assert prepare(session).expired == 0

    def test_pause_skips_the_prepared_cycle_and_resume_brings_it_back(
        self, session, market, agent, villager, clock
    ):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        assert standing.pause(session, agent, so.id).status == StandingStatus.PAUSED
        assert standing.pause(session, agent, so.id).status == StandingStatus.PAUSED  # again: the same
        assert (cycles(session, so)[0].status, cycles(session, so)[0].skip_reason) == (
            CycleStatus.SKIPPED,
            "paused",
        )
        with pytest.raises(Conflict):
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        # Paused: the job prepares nothing for it.
        clock.set(china(2026, 12, 3, 12))
        assert prepare(session).prepared == 0
        clock.set(china(2026, 11, 27, 12))
        assert standing.resume(session, agent, so.id).status == StandingStatus.ACTIVE
        assert cycles(session, so)[0].status == CycleStatus.PREPARED
        standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert len(proxy_orders(session, villager)) == 1

    def test_cancel_skips_its_cycles_for_good(self, session, market, agent, villager, clock):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1})
        prepare(session)
        (cycle,) = cycles(session, so)
        assert standing.cancel(session, agent, so.id).status == StandingStatus.CANCELLED
        assert standing.cancel(session, agent, so.id).status == StandingStatus.CANCELLED
        assert (cycles(session, so)[0].status, cycles(session, so)[0].skip_reason) == (
            CycleStatus.SKIPPED,
            "cancelled",
        )
        with pytest.raises(Conflict) as caught:
            standing.confirm(session, None, agent, cycle.id, "confirm-key-0001", SETTINGS)
        assert "cancelled" in str(caught.value.message)
        for call in (standing.resume, standing.pause):
            with pytest.raises(Conflict):
                call(session, agent, so.id)
        clock.set(china(2026, 12, 3, 12))
        assert prepare(session).prepared == 0
        assert proxy_orders(session, villager) == []
        assert standing.list_standing(session, agent) == []
        assert [s.id for s in standing.list_standing(session, agent, include_cancelled=True)] == [so.id]

    def test_weekly_and_monthly_cycles_as_the_clock_runs(self, session, market, agent, villager, clock):
        fertilizer = market.product(FERTILIZER).id
        weekly = set_up(
            session, agent, villager, {fertilizer: 1}, every=2, weekday=0, key="standing-weekly-1"
        )
        monthly = set_up(
            session,
            agent,
            villager,
            {fertilizer: 1},
            cadence="monthly",
            day_of_month=1,
            key="standing-monthly-1",
        )
        end = china(2027, 3, 3)
        while clock.now() < end:  # the hourly job, every six hours
            prepare(session)
            clock.advance(hours=6)
        assert [(c.due_date, c.cutoff_at, c.status) for c in cycles(session, monthly)] == [
            (date(2026, 12, 1), china(2026, 11, 30, 22), CycleStatus.EXPIRED),
            (date(2027, 1, 1), china(2026, 12, 31, 22), CycleStatus.EXPIRED),
            (date(2027, 2, 1), china(2027, 1, 31, 22), CycleStatus.EXPIRED),
            (date(2027, 3, 1), china(2027, 2, 28, 22), CycleStatus.EXPIRED),
        ]
        assert [c.due_date for c in cycles(session, weekly)] == [
            date(2026, 11, 30) + timedelta(weeks=2 * n) for n in range(7)
        ]
        assert proxy_orders(session, villager) == []

    def test_the_registered_job_reads_the_cut_off_and_prepare_days_settings(
        self, session, market, agent, villager, clock
    ):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1})
        ctx = jobs.JobContext(settings={"STANDING_ORDER_CUTOFF_HOUR": 18, "STANDING_ORDER_PREPARE_DAYS": 9})
        outcome = jobs.run_job(lambda: _lent(session), "prepare-standing-orders", context=ctx)
        assert outcome.ok and outcome.result["prepared"] == 2
        assert [(c.due_date, c.cutoff_at) for c in cycles(session, so)] == [
            (date(2026, 11, 28), china(2026, 11, 27, 18)),
            (date(2026, 12, 5), china(2026, 12, 4, 18)),
        ]

    def test_the_villagers_qr_for_a_wallet_standing_order(
        self, session, market, agent, villager, gateway, clock
    ):
        so = set_up(session, agent, villager, {market.product(FERTILIZER).id: 1}, method="wechat_pay")
        prepare(session)
        (cycle,) = cycles(session, so)
        standing.confirm(session, gateway, agent, cycle.id, "confirm-key-0001", SETTINGS)
        (order,) = proxy_orders(session, villager)
        assert order.payment.intent_id is not None
        assert proxy.state(order) == "wechat"
        assert NOW  # the test ran on the frozen clock


# The cadence's own cases use no database: last in the module, so that run alone the module's
# first test makes the session's database (tests/conftest.py counts a database made after the
# module's first test as the module's own and checks its ledger through a second connection,
# which SQLite's lock held by the test's open transaction refuses).
class TestCadence:
    def test_weekly_on_a_weekday_every_n_weeks_from_the_start(self):
        weekly = schedule("weekly", date(2026, 11, 26), weekday=SATURDAY)  # a Thursday
        assert standing.due_dates(weekly, date(2026, 11, 1), date(2026, 12, 13)) == [
            date(2026, 11, 28),
            date(2026, 12, 5),
            date(2026, 12, 12),
        ]
        fortnightly = schedule("weekly", date(2026, 11, 26), every=2, weekday=3)  # Thursdays, from today
        assert standing.due_dates(fortnightly, date(2026, 12, 1), date(2027, 1, 10)) == [
            date(2026, 12, 10),
            date(2026, 12, 24),
            date(2027, 1, 7),
        ]

    def test_monthly_on_a_day_every_n_months_across_month_and_year_ends(self):
        monthly = schedule("monthly", date(2026, 11, 26), day=28)
        assert standing.due_dates(monthly, date(2026, 11, 26), date(2027, 3, 31)) == [
            date(2026, 11, 28),
            date(2026, 12, 28),
            date(2027, 1, 28),
            date(2027, 2, 28),
            date(2027, 3, 28),
        ]
        # Started on the 31st: the first 28th is the next month's.
        late = schedule("monthly", date(2027, 1, 31), day=28)
        assert standing.due_dates(late, date(2027, 1, 1), date(2027, 3, 1)) == [date(2027, 2, 28)]
        quarterly = schedule("monthly", date(2026, 11, 26), every=3, day=1)
        assert standing.due_dates(quarterly, date(2027, 1, 1), date(2027, 12, 31)) == [
            date(2027, 3, 1),
            date(2027, 6, 1),
            date(2027, 9, 1),
            date(2027, 12, 1),
        ]

    def test_the_cut_off_is_22_00_china_time_the_day_before(self):
        assert standing.cutoff_for(date(2027, 3, 1)) == china(2027, 2, 28, 22)  # a month end
        assert standing.cutoff_for(date(2027, 1, 1)) == china(2026, 12, 31, 22)  # a year end
        assert standing.cutoff_for(date(2026, 11, 28), 18) == china(2026, 11, 27, 18)


def _lent(session):  # type: ignore[no-untyped-def]
    from contextlib import nullcontext

    return nullcontext(session)
