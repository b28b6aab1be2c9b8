"""Staff refunds of units of an order line (issue 13): a refund of any line returns exactly what
was paid for it. The lychee campaign of tests/integration/conftest.py prices 5 lychee at ¥29.80
(the seller's fixed price) and 满100减20 off them (the platform's subsidy); refunding 2 units then
the other 3 gives back exactly promotions.refund_line's amounts, the subsidy of those units to the
campaign's budget and the ledger, and in all exactly what the line was paid. Refused, with
nothing written: more units than are left (counting a pending refund's), another sub-order's
line, units beside an amount that differs from theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain import Campaign, CampaignHold, Order, OrderLine, OrderStatus, Refund, RefundStatus, SubOrder
from services import ledger, ledger_checks
from services.campaigns import holds
from services.errors import ValidationError
from services.orders import checkout
from services.orders import manage as orders
from services.orders.pricing import CheckoutSettings
from services.orders.promotions import refund_line
from services.payments import service as payments
from services.payments.gateway import GatewayUnavailable
from services.payments.stripe import StripeGateway
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
START = datetime(2026, 11, 27, 2, 0, 0, tzinfo=UTC)  # the campaign's first second (Beijing 10:00)


def fresh(session, model, id_):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(model, id_)


def key() -> str:
    return checkout.new_idempotency_key()


@pytest.fixture()
def bought(session, market, lychee, campaign, gateway, clock):  # type: ignore[no-untyped-def]
    """5 lychee and a black tea bought and paid in the campaign: (lychee sub-order, its line,
    tea sub-order)."""
    clock.set(START + timedelta(hours=1))
    tea = market.product("英德红茶")
    order = market.place({lychee.id: 5, tea.id: 1}, SETTINGS)
    market.pay(order, gateway)
    order = fresh(session, Order, order.id)
    sub = next(s for s in order.sub_orders if s.seller_id == lychee.seller_id)
    other = next(s for s in order.sub_orders if s.seller_id != lychee.seller_id)
    (line,) = sub.lines
    assert line.quantity == 5 and line.subsidy_fen > 0 and line.discount_fen > line.subsidy_fen
    return sub, line, other


def subsidy_of(back) -> int:  # type: ignore[no-untyped-def]
    return sum(d.platform_fen for d in back.discounts)


class TestUnitRefunds:
    def test_two_then_three_units_give_back_exactly_what_the_line_was_paid(
        self, session, campaign, gateway, admin, bought
    ):
        sub, line, _other = bought
        breakdown = holds.breakdown_of(line)
        first, rest = refund_line(breakdown, 2), refund_line(breakdown, 3, already_refunded=2)
        assert first.buyer_fen + rest.buyer_fen == line.paid_fen
        used = fresh(session, Campaign, campaign.id).subsidy_used_fen
        subsidies = ledger.balance(session, ledger.CAMPAIGN_SUBSIDIES)
        assert subsidies == used > 0

        orders.staff_refund(session, gateway, admin, sub.number, None, "两斤坏了", key(), units={line.id: 2})
        refund = session.scalars(select(Refund)).one()
        assert (refund.status, refund.amount_fen, refund.units) == (
            RefundStatus.SUCCEEDED,
            first.buyer_fen,
            {str(line.id): 2},
        )
        assert refund.subsidy_fen == subsidy_of(first) > 0
        sub = fresh(session, SubOrder, sub.id)
        assert sub.refunded_fen == first.buyer_fen
        assert sub.status == OrderStatus.PAID  # part of it: the sub-order keeps moving
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == used - subsidy_of(first)
        assert ledger.balance(session, ledger.CAMPAIGN_SUBSIDIES) == subsidies - subsidy_of(first)
        assert ledger.trial_balance(session) == 0
        assert ledger_checks.find_breaches(session) == []
        line_left = payments.refundable_lines(session, sub)[0]
        assert (line_left.units_refunded, line_left.refunded_fen, line_left.units_left) == (
            2,
            first.buyer_fen,
            3,
        )

        # The other 3, with their amount typed as well (equal: accepted).
        orders.staff_refund(
            session, gateway, admin, sub.number, rest.buyer_fen, "全坏了", key(), units={line.id: 3}
        )
        second = session.scalars(select(Refund).order_by(Refund.id.desc())).first()
        assert (second.amount_fen, second.units) == (rest.buyer_fen, {str(line.id): 3})
        sub = fresh(session, SubOrder, sub.id)
        assert sub.refunded_fen == first.buyer_fen + rest.buyer_fen == line.paid_fen
        # Shipping is not part of a refund of units: it is what is left, the sub-order moves on.
        assert payments.refundable_fen(session, sub) == sub.shipping_fen > 0
        assert sub.status == OrderStatus.PAID
        assert refund.subsidy_fen + second.subsidy_fen == line.subsidy_fen
        hold_left = session.scalar(
            select(func.sum(CampaignHold.subsidy_fen - CampaignHold.returned_fen)).where(
                CampaignHold.line_id == line.id
            )
        )
        assert hold_left == 0
        assert fresh(session, Campaign, campaign.id).subsidy_used_fen == used - line.subsidy_fen
        assert ledger.balance(session, ledger.CAMPAIGN_SUBSIDIES) == subsidies - line.subsidy_fen
        assert ledger.trial_balance(session) == 0
        assert ledger_checks.find_breaches(session) == []
        with pytest.raises(ValidationError) as caught:
            orders.staff_refund(session, gateway, admin, sub.number, None, "再退", key(), units={line.id: 1})
        assert "units" in caught.value.field_errors
        assert count(session, Refund) == 2

    @pytest.mark.parametrize(
        "units",
        [
            pytest.param(lambda line, other: {line.id: 6}, id="more-than-bought"),
            pytest.param(lambda line, other: {other.lines[0].id: 1}, id="another-sub-orders-line"),
            pytest.param(lambda line, other: {line.id + 10_000: 1}, id="no-such-line"),
            pytest.param(lambda line, other: {line.id: 0}, id="none"),
            pytest.param(lambda line, other: {line.id: -1}, id="negative"),
            pytest.param(lambda line, other: {line.id: True}, id="a-bool"),
            pytest.param(lambda line, other: {}, id="empty"),
        ],
    )
    def test_bad_units_are_refused_with_nothing_written(self, session, gateway, admin, bought, units):
        sub, line, other = bought
        with pytest.raises(ValidationError) as caught:
            orders.staff_refund(
                session, gateway, admin, sub.number, None, "坏了", key(), units=units(line, other)
            )
        assert list(caught.value.field_errors) == ["units"]
        assert count(session, Refund) == 0
        assert fresh(session, SubOrder, sub.id).status == OrderStatus.PAID

    def test_an_amount_beside_units_must_be_theirs(self, session, gateway, admin, bought):
        sub, line, _other = bought
        with pytest.raises(ValidationError) as caught:
            orders.staff_refund(session, gateway, admin, sub.number, 100, "坏了", key(), units={line.id: 1})
        assert list(caught.value.field_errors) == ["amount"]
        assert count(session, Refund) == 0

    def test_a_pending_refunds_units_are_not_given_back_twice(self, session, gateway, admin, bought):
        sub, line, _other = bought
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        with pytest.raises(GatewayUnavailable):
            orders.staff_refund(session, down, admin, sub.number, None, "坏了", key(), units={line.id: 4})
        pending = session.scalars(select(Refund)).one()
        assert (pending.status, pending.units) == (RefundStatus.PENDING, {str(line.id): 4})
        with pytest.raises(ValidationError) as caught:
            orders.staff_refund(
                session, gateway, admin, sub.number, None, "又坏了", key(), units={line.id: 2}
            )
        assert "units" in caught.value.field_errors
        assert count(session, Refund) == 1
        # The one unit left may go: after units 1-4, exactly what unit 5 was paid.
        orders.staff_refund(session, gateway, admin, sub.number, None, "又坏了", key(), units={line.id: 1})
        last = session.scalars(select(Refund).order_by(Refund.id.desc())).first()
        assert last.amount_fen == refund_line(holds.breakdown_of(line), 1, already_refunded=4).buyer_fen

    def test_units_that_are_all_that_is_left_refund_the_sub_order(self, session, gateway, admin, bought):
        sub, line, _other = bought
        orders.staff_refund(session, gateway, admin, sub.number, sub.shipping_fen, "运费", key())
        orders.staff_refund(session, gateway, admin, sub.number, None, "全坏了", key(), units={line.id: 5})
        sub = fresh(session, SubOrder, sub.id)
        assert (sub.status, sub.refunded_fen) == (OrderStatus.REFUNDED, sub.total_fen)
        assert fresh(session, OrderLine, line.id).paid_fen == sub.total_fen - sub.shipping_fen
        assert ledger_checks.find_breaches(session) == []

    def test_a_line_without_discounts_refunds_its_unit_price(self, session, market, gateway, admin):
        order = market.place({"英德红茶": 3}, SETTINGS)
        market.pay(order, gateway)
        sub = fresh(session, Order, order.id).sub_orders[0]
        (tea,) = sub.lines
        assert tea.discounts == [] and tea.paid_fen == 3 * tea.unit_price_fen
        orders.staff_refund(session, gateway, admin, sub.number, None, "受潮", key(), units={tea.id: 2})
        refund = session.scalars(select(Refund)).one()
        assert (refund.amount_fen, refund.subsidy_fen) == (2 * tea.unit_price_fen, 0)
        assert ledger_checks.find_breaches(session) == []
