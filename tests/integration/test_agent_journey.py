"""Issue 11's "done when", as one story on both databases: an agent registers a villager without
a phone, places a proxy order paid by the villager's QR and one in cash on credit, receives the
parcels and hands them over with the pickup code, records a farmer's intake by weight with a
shortfall that refunds the buyer and creates a lot, confirms a standing order, and remits cash
that county staff confirm; commissions are paid in a batch. The ledger invariants are checked
after the module (tests/conftest.py LEDGER_CHECKED)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from domain import (
    AgentCommission,
    CommissionKind,
    HandoverMethod,
    OrderStatus,
    PaymentStatus,
    Role,
)
from services import cash, commissions, ledger, parcels, proxy, standing, villagers
from services.authz import Party
from services.ledger_checks import find_breaches
from services.orders import checkout, states
from services.orders.pricing import CheckoutSettings
from services.villagers import VillagerInput
from tests.factories import pickup_code_of, receive

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


def key() -> str:
    return checkout.new_idempotency_key()


def test_an_agent_s_day_end_to_end(
    session, market, point, agent, make_user, gateway, localstripe, pickup_keys, admin, clock
):
    staff = make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")
    commissions.set_rate(session, staff, point.county_code, "proxy", None, "2")
    commissions.set_rate(session, staff, point.county_code, "intake", None, "1")
    proxy.set_credit_limit(session, staff, agent.id, 100_000, key())
    fertilizer, pomelo = market.product("复合肥"), market.product("梅县蜜柚")

    # A villager without a phone of their own.
    villager = villagers.register_villager(
        session,
        agent,
        VillagerInput(name="李阿公", village_code=point.division_code, phone=""),
        idempotency_key=key(),
    )
    assert villager.phone == ""

    # Paid by the villager's QR on the agent's screen, and one on the agent's credit.
    by_qr = proxy.place(
        session, gateway, agent, villager.id, "wechat_pay", key(), SETTINGS, items={fertilizer.id: 1}
    ).order
    localstripe.wallet_paid(by_qr.payment.intent_id)
    followed, _error = proxy.follow(session, gateway, agent, by_qr.number)
    assert followed.state == "paid"
    on_credit = proxy.place(
        session, gateway, agent, villager.id, "credit", key(), SETTINGS, items={fertilizer.id: 1}
    ).order
    assert on_credit.payment.status == PaymentStatus.ON_CREDIT

    # The merchant ships both; they arrive at the point and are handed over with the pickup code.
    for order in (by_qr, on_credit):
        sub = order.sub_orders[0]
        states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=fertilizer.seller)
        session.commit()
        receive(session, gateway, sub)
        states.apply(session, sub, OrderStatus.IN_TRANSIT, party=Party.STAFF)
        session.commit()
        parcels.mark_arrived(session, agent, sub.number, key())
        code = pickup_code_of(session, order, pickup_keys)
        data = parcels.HandoverInput(pickup_code=code, cash_received=order is on_credit)
        handover = parcels.hand_over(session, agent, sub.number, data, key(), pickup_keys)
        assert handover.method == HandoverMethod.CODE
        session.refresh(sub)
        assert sub.status == OrderStatus.COMPLETED
    session.refresh(on_credit.payment)
    assert on_credit.payment.status == PaymentStatus.SUCCEEDED  # the villager paid at pickup
    assert proxy.credit_used(session, agent.id) == 0
    assert cash.cash_held(session, agent.id) == on_credit.total_fen

    # A city buyer's pomelos, weighed short at the point: the difference is refunded, a lot made.
    bought = market.pay(market.place({"梅县蜜柚": 4}, SETTINGS), gateway)
    sub = bought.sub_orders[0]
    states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=pomelo.seller)
    session.commit()
    (line,) = sub.lines
    intake = receive(session, gateway, sub, by=agent, weights={line.id: line.net_weight_g * 3})
    session.refresh(sub)
    assert intake.difference_fen == line.line_fen // 4
    assert sub.refunded_fen == intake.difference_fen
    (lot,) = intake.lots
    assert len(lot.code) == 16 and lot.weight_g == line.net_weight_g * 3

    # A standing order, its cycle confirmed: one more cash order.
    weekly = standing.create(
        session,
        agent,
        standing.StandingInput(
            villager_id=villager.id,
            items={fertilizer.id: 1},
            payment_method="cash",
            cadence="weekly",
            weekday=(clock.now() + timedelta(days=2)).weekday(),
        ),
        key(),
    )
    standing.prepare_cycles(session, prepare_days=3)
    (cycle,) = [c for c in standing.cycles_to_confirm(session, agent) if c.standing_order_id == weekly.id]
    standing.confirm(session, None, agent, cycle.id, key(), SETTINGS)
    session.refresh(cycle)
    assert cycle.order is not None and cycle.order.payment.status == PaymentStatus.SUCCEEDED
    held = cash.cash_held(session, agent.id)
    assert held == on_credit.total_fen + cycle.order.total_fen

    # The cash goes to the county center, counted and confirmed.
    remittance = cash.declare_remittance(session, agent, held, key())
    cash.confirm_remittance(session, staff, remittance.id, held)
    assert cash.cash_held(session, agent.id) == 0

    # Commissions were earned at completion; a payout batch pays them beside the sellers.
    earned = list(session.scalars(select(AgentCommission).where(AgentCommission.agent_id == agent.id)))
    assert {c.kind for c in earned} == {CommissionKind.PROXY}
    clock.advance(timedelta(days=8))
    batch = ledger.create_payout_batch(session, admin)
    assert batch is not None
    (paid,) = commissions.batch_payouts(session, batch.id)
    assert paid.agent_id == agent.id and paid.amount_fen == sum(c.amount_fen for c in earned) > 0
    ledger.mark_batch_paid(session, admin, batch.id)
    assert ledger.balance(session, ledger.agent_commission_code(agent.id)) == 0
    assert find_breaches(session) == []
