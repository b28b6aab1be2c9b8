"""The offers of services.orders.manage on the real database against the real localstripe: the
buyer's own order is found only by its buyer, and what a person is offered on a sub-order or an
order is exactly what the actions then accept."""

from __future__ import annotations

import pytest

from domain import Order, OrderStatus, Role, SubOrder
from services.errors import Forbidden, NotFound, ServiceError, Unauthorized
from services.orders import manage
from services.orders.pricing import CheckoutSettings
from services.orders.states import IllegalTransition, Party
from tests.factories import receive, receiver_of

SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)


def fresh(session, model, id_):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(model, id_)


class TestOwnOrder:
    def test_the_buyer_gets_their_own_order(self, session, market):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        assert manage.own_order(session, market.buyer, order.number).id == order.id

    def test_staff_may_look_at_an_order_but_it_is_not_their_own(self, session, market, admin):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        assert manage.visible_order(session, admin, order.number).id == order.id
        with pytest.raises(NotFound):
            manage.own_order(session, admin, order.number)

    def test_a_stranger_an_unknown_number_and_nobody_are_refused(self, session, market, make_user):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        with pytest.raises(NotFound):
            manage.own_order(session, make_user(Role.BUYER, name="路人"), order.number)
        with pytest.raises(NotFound):
            manage.own_order(session, market.buyer, "20260101000000000")
        with pytest.raises(Unauthorized):
            manage.own_order(session, None, order.number)


class TestOffersAreWhatTheActionsAccept:
    def test_the_seller_is_offered_accept_and_decline_and_the_buyer_only_a_cancel(
        self, session, market, gateway, admin
    ):
        order = market.pay(market.place({"英德红茶": 1}, SETTINGS), gateway)
        sub = order.sub_orders[0]
        farmer = market.shop.yingde_farmer
        seller = manage.sub_actions(session, farmer, sub)
        buyer = manage.sub_actions(session, market.buyer, sub)
        assert seller.who == {Party.SELLER} and seller.moves == [OrderStatus.ACCEPTED] and seller.decline
        assert not seller.request_refund and not seller.ready
        assert buyer.who == {Party.BUYER} and buyer.request_refund and buyer.moves == []
        assert not buyer.decline
        # Not offered: refused.
        with pytest.raises(Forbidden):
            manage.decline(session, gateway, market.buyer, sub.number, "不要了")
        with pytest.raises(Forbidden):
            manage.request_refund(session, gateway, farmer, sub.number, "x")
        with pytest.raises(IllegalTransition):
            manage.mark_ready(session, farmer, sub.number)
        # Offered: accepted.
        manage.move(session, farmer, sub.number, OrderStatus.ACCEPTED)
        accepted = manage.sub_actions(session, farmer, fresh(session, SubOrder, sub.id))
        assert accepted.ready and accepted.decline and not accepted.hand_in
        assert not manage.sub_actions(session, market.buyer, fresh(session, SubOrder, sub.id)).request_refund
        with pytest.raises(IllegalTransition):
            manage.request_refund(session, gateway, market.buyer, sub.number, "不要了")
        manage.mark_ready(session, farmer, sub.number)
        packed = manage.sub_actions(session, farmer, fresh(session, SubOrder, sub.id))
        assert not packed.ready and not packed.hand_in  # packed once; the receiver records the intake
        with pytest.raises(Forbidden):
            receive(session, gateway, sub, by=farmer)
        # The intake is the receiving agent's or county staff's, not an admin's from afar.
        assert not manage.sub_actions(session, admin, fresh(session, SubOrder, sub.id)).hand_in
        receiver = receiver_of(session, sub)
        assert manage.sub_actions(session, receiver, fresh(session, SubOrder, sub.id)).hand_in
        assert receive(session, gateway, sub, by=receiver).sub_order.status == OrderStatus.HANDED_IN

    def test_staff_are_offered_a_refund_of_what_is_left(self, session, market, gateway, admin):
        order = market.pay(market.place({"英德红茶": 1}, SETTINGS), gateway)
        sub = order.sub_orders[0]
        offered = manage.sub_actions(session, admin, sub)
        assert Party.STAFF in offered.who and offered.staff_refund
        assert offered.refundable_fen == sub.total_fen
        manage.staff_refund(session, gateway, admin, sub.number, 100, "少了一点", "offers-part-refund-1")
        after = manage.sub_actions(session, admin, fresh(session, SubOrder, sub.id))
        assert after.staff_refund and after.refundable_fen == sub.total_fen - 100

    def test_an_unpaid_order_offers_pay_and_cancel_and_cancelling_closes_both(
        self, session, market, gateway, admin
    ):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        assert manage.order_actions(session, market.buyer, order) == manage.OrderActions(
            pay=True, cancel=True
        )
        assert manage.order_actions(session, admin, order) == manage.OrderActions(cancel=True)
        manage.cancel_unpaid(session, gateway, market.buyer, order.number)
        cancelled = fresh(session, Order, order.id)
        assert manage.order_actions(session, market.buyer, cancelled) == manage.OrderActions()

    def test_a_paid_order_is_not_offered_for_cancelling_and_cancelling_it_is_refused(
        self, session, market, gateway
    ):
        order = market.pay(market.place({"梅县金柚": 1}, SETTINGS), gateway)
        assert manage.order_actions(session, market.buyer, order) == manage.OrderActions()
        with pytest.raises(ServiceError):
            manage.cancel_unpaid(session, gateway, market.buyer, order.number)
