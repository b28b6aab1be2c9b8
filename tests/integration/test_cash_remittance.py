"""Issue 11, items 3 and 6 (a first slice): a village agent takes the cash for a proxy order at
their point (the order is paid at once, the cash held by the agent in the ledger), hands the
cash to the county service center, county staff count and confirm it; payout batches pay cash
sub-orders only once their cash is remitted. Ledger invariants are checked after each test
(tests/conftest.py LEDGER_CHECKED)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from domain import (
    CashRemittance,
    LedgerTransaction,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    RemittanceStatus,
    Role,
)
from services import cash, ledger
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import YINGDE, count
from tests.factories import LONG_AGO, add_seller, add_sub_order

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


def place_cash(market, point, villager, placed_by, *, key=None):  # type: ignore[no-untyped-def]
    data = CheckoutInput(
        items={market.product("梅县蜜柚").id: 2},
        idempotency_key=key or checkout.new_idempotency_key(),
        payment_method="cash",
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
    )
    return checkout.place_order(market.session, villager, data, SETTINGS, placed_by=placed_by).order


@pytest.fixture()
def villager(make_user):  # type: ignore[no-untyped-def]
    return make_user(Role.BUYER, name="陈阿婆")


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def txn_count(session, kind: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.kind == kind)
    )


def held(session, agent) -> int:  # type: ignore[no-untyped-def]
    return ledger.balance(session, ledger.cash_held_code(agent.id))


class TestCashNow:
    def test_the_agent_takes_the_cash_and_the_order_is_paid_once(
        self, session, market, point, agent, villager
    ):
        order = place_cash(market, point, villager, agent)
        assert order.payment.status == PaymentStatus.AWAITING_CASH
        assert (order.buyer_id, order.placed_by_id) == (villager.id, agent.id)
        clearing = ledger.balance(session, ledger.CLEARING)

        paid = cash.take_cash(session, agent, order.number, "cash-now-key-0001")
        assert paid.payment.status == PaymentStatus.SUCCEEDED
        assert paid.payment.amount_received_fen == order.total_fen
        assert {sub.status for sub in paid.sub_orders} == {OrderStatus.PAID}
        assert held(session, agent) == order.total_fen
        assert ledger.balance(session, ledger.CLEARING) == clearing  # not the gateway's money

        again = cash.take_cash(session, agent, order.number, "cash-now-key-0001")
        assert again.id == order.id
        assert held(session, agent) == order.total_fen
        assert txn_count(session, "sub_order_paid") == len(order.sub_orders)
        with pytest.raises(Conflict):
            cash.take_cash(session, agent, order.number, "cash-now-key-0002")
        assert held(session, agent) == order.total_fen

    def test_an_agent_of_another_point_may_not_take_the_cash(
        self, session, market, point, agent, villager, make_user, village_point
    ):
        order = place_cash(market, point, villager, agent)
        other = make_user(Role.AGENT, node_id=village_point(YINGDE).id)
        with pytest.raises(Forbidden):
            cash.take_cash(session, other, order.number, "cash-now-key-0003")
        with pytest.raises(Forbidden):
            cash.take_cash(session, villager, order.number, "cash-now-key-0004")
        session.refresh(order.payment)
        assert order.payment.status == PaymentStatus.AWAITING_CASH
        assert held(session, other) == 0 and held(session, agent) == 0

    def test_cash_is_only_for_proxy_orders_picked_up_at_the_placers_point(
        self, session, market, point, agent, villager, make_user, village_point
    ):
        with pytest.raises(ValidationError):
            place_cash(market, point, villager, villager)  # a buyer for themselves
        elsewhere = village_point(YINGDE)
        with pytest.raises(ValidationError):
            place_cash(market, elsewhere, villager, agent)  # not the agent's point
        assert count(session, Order) == 0


@pytest.fixture()
def collected(session, market, point, agent, villager):  # type: ignore[no-untyped-def]
    """Two cash orders the agent took the cash for."""
    orders = [place_cash(market, point, villager, agent) for _ in range(2)]
    for i, order in enumerate(orders):
        cash.take_cash(session, agent, order.number, f"cash-collected-{i:04d}")
    return sum(o.total_fen for o in orders)


class TestRemittance:
    def test_declaring_more_than_held_is_refused_and_writes_nothing(self, session, agent, collected):
        with pytest.raises(cash.CashExceedsHeld) as caught:
            cash.declare_remittance(session, agent, collected + 1, "remit-key-0001")
        assert caught.value.status == 409
        assert count(session, CashRemittance) == 0
        cash.declare_remittance(session, agent, collected - 100, "remit-key-0002")
        with pytest.raises(cash.CashExceedsHeld):  # what is declared and not counted is not free
            cash.declare_remittance(session, agent, 101, "remit-key-0003")
        assert count(session, CashRemittance) == 1

    def test_a_replayed_declaration_returns_the_same_remittance(self, session, agent, collected):
        first = cash.declare_remittance(session, agent, 500, "remit-key-0004")
        again = cash.declare_remittance(session, agent, 500, "remit-key-0004")
        assert again.id == first.id and count(session, CashRemittance) == 1
        with pytest.raises(Conflict):
            cash.declare_remittance(session, agent, 600, "remit-key-0004")

    def test_only_an_agent_declares(self, session, villager, staff):
        with pytest.raises(Forbidden):
            cash.declare_remittance(session, villager, 500, "remit-key-0005")

    def test_county_staff_of_another_county_cannot_confirm(self, session, agent, collected, make_user):
        remittance = cash.declare_remittance(session, agent, 500, "remit-key-0006")
        stranger = make_user(Role.COUNTY_STAFF, county_code=YINGDE)
        with pytest.raises(NotFound):
            cash.confirm_remittance(session, stranger, remittance.id, 500)
        with pytest.raises(Forbidden):
            cash.county_remittances(session, agent)
        assert cash.county_remittances(session, stranger) == []
        with pytest.raises(Forbidden):  # the agent sees it, but does not count their own cash
            cash.confirm_remittance(session, agent, remittance.id, 500)
        session.refresh(remittance)
        assert remittance.status == RemittanceStatus.DECLARED
        assert txn_count(session, "cash_remitted") == 0

    def test_a_shortfall_stays_held_and_shows_on_both_sides(self, session, agent, staff, collected):
        clearing = ledger.balance(session, ledger.CLEARING)
        remittance = cash.declare_remittance(session, agent, collected, "remit-key-0007")
        assert [r.id for r in cash.county_remittances(session, staff, to_confirm=True)] == [remittance.id]

        done = cash.confirm_remittance(session, staff, remittance.id, collected - 300)
        assert (done.status, done.counted_fen, done.discrepancy_fen) == (
            RemittanceStatus.CONFIRMED,
            collected - 300,
            300,
        )
        assert done.confirmed_by_id == staff.id and done.confirmed_at is not None
        assert held(session, agent) == 300  # the 300 short is still owed by the agent
        assert ledger.balance(session, ledger.CLEARING) == clearing + collected - 300
        assert cash.my_remittances(session, agent)[0].discrepancy_fen == 300
        assert cash.county_remittances(session, staff)[0].discrepancy_fen == 300
        assert cash.county_remittances(session, staff, to_confirm=True) == []

        twice = cash.confirm_remittance(session, staff, remittance.id, collected)
        assert twice.counted_fen == collected - 300
        assert held(session, agent) == 300
        assert txn_count(session, "cash_remitted") == 1

    def test_counting_more_than_declared_is_refused(self, session, agent, staff, collected):
        remittance = cash.declare_remittance(session, agent, 500, "remit-key-0008")
        with pytest.raises(Conflict):
            cash.confirm_remittance(session, staff, remittance.id, 501)
        with pytest.raises(ValidationError):
            cash.confirm_remittance(session, staff, remittance.id, -1)
        assert held(session, agent) == collected


class TestPayoutWaitsForTheCash:
    def cash_sub(self, session, agent, seller, items):  # type: ignore[no-untyped-def]
        buyer = add_seller(session)  # any user: the ledger reads amounts only
        sub = add_sub_order(
            session,
            buyer,
            seller,
            items=items,
            status=OrderStatus.COMPLETED,
            completed_at=LONG_AGO,
            method=PaymentMethod.CASH,
        )
        ledger.post_sub_order_paid(session, sub, via="cash", agent_id=agent.id)
        return sub

    def test_cash_sub_orders_are_paid_out_once_remitted_first_in_first_out(
        self, session, admin, agent, staff
    ):
        seller = add_seller(session, "梅县柚园")
        first = self.cash_sub(session, agent, seller, 2_000)
        second = self.cash_sub(session, agent, seller, 3_000)
        session.commit()
        assert ledger.create_payout_batch(session, admin) is None

        remittance = cash.declare_remittance(session, agent, 2_000, "remit-key-0009")
        cash.confirm_remittance(session, staff, remittance.id, 2_000)
        batch = ledger.create_payout_batch(session, admin)
        assert batch is not None
        assert [(p.seller_id, p.gross_fen, p.sub_order_count) for p in batch.payouts] == [
            (seller.id, 2_000, 1)
        ]
        session.refresh(first), session.refresh(second)
        assert first.payout_id is not None and second.payout_id is None

        rest = cash.declare_remittance(session, agent, 3_000, "remit-key-0010")
        cash.confirm_remittance(session, staff, rest.id, 2_900)  # 100 short: the second still waits
        assert ledger.create_payout_batch(session, admin) is None
        last = cash.declare_remittance(session, agent, 100, "remit-key-0011")
        cash.confirm_remittance(session, staff, last.id, 100)
        batch = ledger.create_payout_batch(session, admin)
        assert batch is not None and batch.payouts[0].gross_fen == 3_000
        assert held(session, agent) == 0
