"""Issue 11, item 6: agents earn commissions at the rates their county center sets, per category,
on proxy orders they place and produce they receive; posted when the sub-order completes, taken
back by refunds in proportion, paid in payout batches beside the sellers (netting what a refund
after a payout left the agent owing). The ledger invariants are checked after the module
(tests/conftest.py LEDGER_CHECKED), agent_commission among them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    AgentCommission,
    Category,
    CommissionKind,
    CommissionPayout,
    CommissionRate,
    OrderStatus,
    Role,
    clock,
)
from services import commissions, ledger
from services.authz import Party
from services.errors import Forbidden, NotFound, ValidationError
from services.orders import checkout, states
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
PROXY_BP, INTAKE_BP = 250, 100


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


@pytest.fixture()
def villager(make_user):  # type: ignore[no-untyped-def]
    return make_user(Role.BUYER, name="陈阿婆")


@pytest.fixture()
def pomelo(market):  # type: ignore[no-untyped-def]
    return market.product("梅县蜜柚")


@pytest.fixture()
def rates(session, staff, point, pomelo):  # type: ignore[no-untyped-def]
    """Proxy orders: 2.5 % on the pomelo's top category; intake: 1 % on every category."""
    top = session.get(Category, pomelo.category_id)
    while top.parent_id is not None:
        top = session.get(Category, top.parent_id)
    commissions.set_rate(session, staff, point.county_code, "proxy", top.id, "2.5")
    commissions.set_rate(session, staff, point.county_code, "intake", None, "1%")
    return top


def proxy_order(market, point, villager, agent, gateway, quantity=2):  # type: ignore[no-untyped-def]
    """A proxy order the agent placed for the villager, for pickup at the point, paid by card."""
    data = CheckoutInput(
        items={market.product("梅县蜜柚").id: quantity},
        idempotency_key=checkout.new_idempotency_key(),
        payment_method="card",
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
    )
    order = checkout.place_order(market.session, villager, data, SETTINGS, placed_by=agent).order
    return market.pay(order, gateway)


def deliver(session, sub, agent, seller):  # type: ignore[no-untyped-def]
    """Accepted by the seller, received at the point by the agent, collected: completed."""
    states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=seller)
    states.apply(session, sub, OrderStatus.HANDED_IN, party=Party.STAFF, actor=agent)
    states.apply(session, sub, OrderStatus.IN_TRANSIT, party=Party.STAFF, actor=agent)
    states.apply(session, sub, OrderStatus.READY_FOR_PICKUP, party=Party.STAFF, actor=agent)
    states.apply(session, sub, OrderStatus.COMPLETED, party=Party.STAFF, actor=agent)
    session.commit()


def payable(session, agent) -> int:  # type: ignore[no-untyped-def]
    """What the platform owes the agent in commissions (credit balance, as a positive number)."""
    return -ledger.balance(session, ledger.agent_commission_code(agent.id))


class TestRates:
    def test_county_staff_set_rates_of_their_county_in_percent(self, session, staff, point, rates):
        def rate(kind, category_id=None):  # type: ignore[no-untyped-def]
            view = commissions.county_rates(session, staff, point.county_code)
            assert view.can_edit
            return next(
                r.rate_bp
                for r in view.rows
                if r.kind == kind and (r.category.id if r.category else None) == category_id
            )

        assert rate(CommissionKind.PROXY, rates.id) == PROXY_BP
        assert rate(CommissionKind.INTAKE) == INTAKE_BP
        assert rate(CommissionKind.PROXY) is None  # not set
        # Setting it again changes the rate, never adds a row; empty clears it.
        commissions.set_rate(session, staff, point.county_code, "intake", None, "1.25")
        commissions.set_rate(session, staff, point.county_code, "intake", None, "1.25")
        assert rate(CommissionKind.INTAKE) == 125
        assert count(session, CommissionRate) == 2
        commissions.set_rate(session, staff, point.county_code, "intake", None, "")
        assert rate(CommissionKind.INTAKE) is None
        assert count(session, CommissionRate) == 1

    @pytest.mark.parametrize("typed", ["31", "-1", "abc", "1.234", "NaN", "Infinity", "1e2"])
    def test_a_rate_outside_0_to_30_percent_is_a_field_error(self, session, staff, point, typed):
        with pytest.raises(ValidationError) as caught:
            commissions.set_rate(session, staff, point.county_code, "proxy", None, typed)
        assert "rate" in caught.value.field_errors

    def test_unknown_kind_or_category_is_a_field_error(self, session, staff, point):
        with pytest.raises(ValidationError) as caught:
            commissions.set_rate(session, staff, point.county_code, "tips", None, "1")
        assert "kind" in caught.value.field_errors
        with pytest.raises(ValidationError) as caught:
            commissions.set_rate(session, staff, point.county_code, "proxy", 987654, "1")
        assert "category_id" in caught.value.field_errors

    def test_only_the_county_s_own_staff_set_its_rates(self, session, point, agent, admin, make_user):
        other = make_user(Role.COUNTY_STAFF, county_code="441821", name="佛冈服务中心")
        for who in (agent, other, admin):
            with pytest.raises(Forbidden):
                commissions.set_rate(session, who, point.county_code, "proxy", None, "1")
        # Admins see the rates; staff of another county do not.
        assert not commissions.county_rates(session, admin, point.county_code).can_edit
        with pytest.raises(Forbidden):
            commissions.county_rates(session, other, point.county_code)
        with pytest.raises(NotFound):
            commissions.county_rates(session, admin, "999999")


class TestEarning:
    def test_a_completed_proxy_order_earns_proxy_and_intake_commission_once(
        self, session, market, point, agent, villager, gateway, rates, pomelo
    ):
        order = proxy_order(market, point, villager, agent, gateway)
        sub = order.sub_orders[0]
        deliver(session, sub, agent, pomelo.seller)
        earned = {
            c.kind: c
            for c in session.scalars(select(AgentCommission).where(AgentCommission.sub_order_id == sub.id))
        }
        assert earned[CommissionKind.PROXY].amount_fen == sub.items_fen * PROXY_BP // 10_000
        assert earned[CommissionKind.INTAKE].amount_fen == sub.items_fen * INTAKE_BP // 10_000
        assert {c.agent_id for c in earned.values()} == {agent.id}
        assert payable(session, agent) == sum(c.amount_fen for c in earned.values())
        # Completed again (an after-sale request turned down) earns nothing more.
        assert commissions.earn(session, sub) == []

    def test_no_commission_on_an_order_the_buyer_placed_themselves(
        self, session, market, agent, gateway, rates, pomelo
    ):
        order = market.pay(market.place({"梅县蜜柚": 1}, SETTINGS), gateway)
        sub = order.sub_orders[0]
        states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=pomelo.seller)
        states.apply(session, sub, OrderStatus.HANDED_IN, party=Party.STAFF, actor=None)
        for target in (OrderStatus.IN_TRANSIT, OrderStatus.OUT_FOR_DELIVERY, OrderStatus.COMPLETED):
            states.apply(session, sub, target, party=Party.STAFF)
        session.commit()
        assert count(session, AgentCommission, AgentCommission.sub_order_id == sub.id) == 0

    def test_a_refund_before_completion_lowers_the_base(
        self, session, market, point, agent, villager, gateway, rates, pomelo, admin
    ):
        order = proxy_order(market, point, villager, agent, gateway, quantity=4)
        sub = order.sub_orders[0]
        states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=pomelo.seller)
        session.commit()
        payments.refund_sub_order(session, gateway, admin, sub.id, sub.total_fen // 2, reason="缺货")
        session.refresh(sub)
        deliver_rest = [
            OrderStatus.HANDED_IN,
            OrderStatus.IN_TRANSIT,
            OrderStatus.READY_FOR_PICKUP,
            OrderStatus.COMPLETED,
        ]
        for target in deliver_rest:
            states.apply(session, sub, target, party=Party.STAFF, actor=agent)
        session.commit()
        proxy = session.scalar(
            select(AgentCommission).where(
                AgentCommission.sub_order_id == sub.id, AgentCommission.kind == CommissionKind.PROXY
            )
        )
        assert proxy.base_fen < sub.items_fen
        assert proxy.amount_fen == sub.items_fen * PROXY_BP * proxy.base_fen // (sub.items_fen * 10_000)


class TestRefundsAndPayouts:
    def test_refunds_after_completion_take_back_their_share_and_a_full_refund_all(
        self, session, market, point, agent, villager, gateway, rates, pomelo, admin
    ):
        order = proxy_order(market, point, villager, agent, gateway, quantity=4)
        sub = order.sub_orders[0]
        deliver(session, sub, agent, pomelo.seller)
        rows = list(session.scalars(select(AgentCommission).where(AgentCommission.sub_order_id == sub.id)))
        earned = sum(r.amount_fen for r in rows)
        payments.refund_sub_order(
            session, gateway, admin, sub.id, sub.items_fen // 4, reason="坏果", party=Party.ADMIN
        )
        for r in rows:
            session.refresh(r)
        after_part = payable(session, agent)
        assert 0 < earned - after_part < earned  # some, not all, taken back
        assert sum(r.reversed_fen for r in rows) == earned - after_part
        payments.refund_sub_order(session, gateway, admin, sub.id, None, reason="全部退款", party=Party.ADMIN)
        for r in rows:
            session.refresh(r)
        assert [r.reversed_fen for r in rows] == [r.amount_fen for r in rows]
        assert payable(session, agent) == 0

    def test_a_payout_batch_pays_the_agent_beside_the_seller_and_nets_a_later_reversal(
        self, session, market, point, agent, villager, gateway, rates, pomelo, admin, clock
    ):
        first = proxy_order(market, point, villager, agent, gateway, quantity=4).sub_orders[0]
        deliver(session, first, agent, pomelo.seller)
        owed = payable(session, agent)
        clock.advance(timedelta(days=8))
        batch = ledger.create_payout_batch(session, admin)
        assert batch is not None
        agent_lines = commissions.batch_payouts(session, batch.id)
        assert [(p.agent_id, p.gross_fen, p.amount_fen) for p in agent_lines] == [(agent.id, owed, owed)]
        assert batch.total_fen == sum(p.amount_fen for p in batch.payouts) + owed
        ledger.mark_batch_paid(session, admin, batch.id)
        assert payable(session, agent) == 0
        assert all(
            r.payout_id == agent_lines[0].id
            for r in session.scalars(select(AgentCommission).where(AgentCommission.sub_order_id == first.id))
        )

        # A refund after the payout leaves the agent owing its share...
        payments.refund_sub_order(
            session, gateway, admin, first.id, first.items_fen // 2, reason="坏果", party=Party.ADMIN
        )
        owing = payable(session, agent)
        assert owing < 0
        # ...which the next batch nets from the agent's new commissions.
        second = proxy_order(market, point, villager, agent, gateway, quantity=4).sub_orders[0]
        deliver(session, second, agent, pomelo.seller)
        new = sum(
            r.amount_fen
            for r in session.scalars(select(AgentCommission).where(AgentCommission.sub_order_id == second.id))
        )
        clock.advance(timedelta(days=8))
        batch2 = ledger.create_payout_batch(session, admin, now=clock.now())
        (line,) = commissions.batch_payouts(session, batch2.id)
        assert (line.gross_fen, line.netted_fen, line.amount_fen) == (new, -owing, new + owing)
        ledger.mark_batch_paid(session, admin, batch2.id)
        assert payable(session, agent) == 0
        assert count(session, CommissionPayout) == 2


class TestEarningsPage:
    def test_the_agent_sees_this_month_s_commissions_and_totals(
        self, session, market, point, agent, villager, gateway, rates, pomelo, staff
    ):
        sub = proxy_order(market, point, villager, agent, gateway).sub_orders[0]
        deliver(session, sub, agent, pomelo.seller)
        view = commissions.earnings(session, agent)
        assert view.month == f"{clock.today():%Y-%m}"
        assert {r.sub_order_id for r in view.rows} == {sub.id}
        assert view.months[0].net_fen == view.owed_fen == payable(session, agent)
        assert commissions.earnings(session, agent, "2020-01").rows == []
        with pytest.raises(ValidationError):
            commissions.earnings(session, agent, "2026-13")
        with pytest.raises(Forbidden):
            commissions.earnings(session, staff)
