"""What the pages and the API offer, decided in services without a database: the actions one person
may take on a sub-order, whether an order can be paid or cancelled by them, whose order it is,
and the pay page's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import (
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    RoleGrant,
    SubOrder,
    User,
)
from domain import Role as R
from services.orders import manage
from services.orders.states import Party
from services.payments import service as payments

S = OrderStatus
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BUYER, PLACER, SELLER, STRANGER = 1, 2, 3, 9


class FakeSession:
    """What the offers may touch: no seller profile on file, no pending refunds."""

    def get(self, model: Any, key: Any) -> None:
        return None

    def scalars(self, stmt: Any) -> Any:
        class Nothing:
            def all(self) -> list[int]:
                return []

        return Nothing()

    def scalar(self, stmt: Any) -> None:
        return None


def user(user_id: int, *roles: R) -> User:
    return User(id=user_id, grants=[RoleGrant(role=role) for role in roles])


def order(
    *statuses: OrderStatus,
    payment: PaymentStatus = PaymentStatus.REQUIRES_PAYMENT_METHOD,
    method: PaymentMethod = PaymentMethod.CARD,
    next_action: dict[str, Any] | None = None,
    client_secret: str | None = None,
    pay_by: datetime = NOW + timedelta(minutes=30),
) -> Order:
    subs = [
        SubOrder(id=n, number=f"1-{n}", seller_id=SELLER, status=status, total_fen=1000, refunded_fen=0)
        for n, status in enumerate(statuses or (S.PENDING_PAYMENT,), start=1)
    ]
    return Order(
        number="1",
        buyer_id=BUYER,
        placed_by_id=PLACER,
        recipient_phone="13912345678",
        pay_by=pay_by,
        sub_orders=subs,
        payment=Payment(status=payment, method=method, next_action=next_action, client_secret=client_secret),
    )


def acts(
    status: OrderStatus, *who: Party, ready: bool = False, paid: bool = True, completed: bool = False
) -> manage.SubActions:
    placed = order(status, payment=PaymentStatus.SUCCEEDED if paid else PaymentStatus.PROCESSING)
    sub = placed.sub_orders[0]
    sub.ready_at = NOW if ready else None
    sub.completed_at = NOW if completed else None  # no events in the fake: completed_at tells
    return manage.sub_actions(FakeSession(), None, sub, set(who))  # type: ignore[arg-type]


class TestWhoseOrder:
    def test_the_buyer_and_whoever_placed_it_for_them_own_it_nobody_else(self):
        placed = order()
        assert manage.is_buyer_of(user(BUYER), placed)
        assert manage.is_buyer_of(user(PLACER), placed)
        assert not manage.is_buyer_of(user(STRANGER, R.ADMIN), placed)
        assert not manage.is_buyer_of(None, placed)

    def test_only_the_buyer_sees_the_whole_phone_number(self):
        placed = order()
        assert manage.recipient_phone_for(user(BUYER), placed) == "13912345678"
        assert manage.recipient_phone_for(user(SELLER), placed) == "139****5678"
        assert manage.recipient_phone_for(None, placed) == "139****5678"


class TestSubActions:
    def test_a_seller_of_a_paid_sub_order_may_accept_or_decline_and_nothing_else(self):
        offered = acts(S.PAID, Party.SELLER)
        assert offered.moves == [S.ACCEPTED]
        assert offered.decline and offered.any
        assert not (offered.ready or offered.hand_in or offered.request_refund or offered.staff_refund)

    def test_an_accepted_sub_order_is_packed_once_and_the_hand_in_is_confirmed_by_staff(self, monkeypatch):
        # Who receives this seller's goods is the intake's rule (services/intake.py, checked in
        # tests/integration/test_intake.py); here: someone who does.
        monkeypatch.setattr(manage.intake, "may_receive", lambda session, actor, sub: True)
        offered = acts(S.ACCEPTED, Party.SELLER)
        assert offered.ready and offered.decline and not offered.hand_in
        packed = acts(S.ACCEPTED, Party.SELLER, ready=True)
        assert not packed.ready and not packed.hand_in
        received = acts(S.ACCEPTED, Party.STAFF, ready=True)
        assert received.hand_in and not (received.decline or received.ready or received.staff_refund)
        monkeypatch.setattr(manage.intake, "may_receive", lambda session, actor, sub: False)
        assert not acts(S.ACCEPTED, Party.STAFF, ready=True).hand_in  # staff of another point

    def test_the_buyer_may_cancel_before_acceptance_and_ask_after_delivery_not_in_between(self):
        assert acts(S.PAID, Party.BUYER).request_refund
        assert not acts(S.ACCEPTED, Party.BUYER).request_refund
        assert not acts(S.IN_TRANSIT, Party.BUYER).request_refund
        delivered = acts(S.OUT_FOR_DELIVERY, Party.BUYER)
        assert delivered.request_refund and delivered.moves == [S.COMPLETED]

    def test_the_buyer_never_declines_packs_or_hands_in(self):
        for status in S:
            offered = acts(status, Party.BUYER)
            assert not (offered.decline or offered.ready or offered.hand_in or offered.staff_refund)

    def test_nobody_is_offered_anything_on_a_closed_sub_order(self):
        for status in (S.CANCELLED, S.REFUNDED):
            assert not acts(status, Party.BUYER, Party.SELLER, Party.STAFF).any

    def test_an_admin_may_refund_what_is_left_of_a_paid_sub_order(self):
        offered = acts(S.REFUND_REQUESTED, Party.STAFF, Party.ADMIN, completed=True)
        assert offered.staff_refund and offered.refundable_fen == 1000
        assert offered.moves == [S.COMPLETED]  # or turn the after-sale request down
        # Before delivery a request is a full refund on its way: nothing to turn down into completed.
        assert acts(S.REFUND_REQUESTED, Party.STAFF, Party.ADMIN).moves == []
        assert not acts(S.REFUND_REQUESTED, Party.SELLER).staff_refund

    def test_agents_county_and_dc_staff_never_refund_nor_turn_a_request_down(self):
        for status in S:
            offered = acts(status, Party.STAFF)
            assert not offered.staff_refund
            if status == S.REFUND_REQUESTED:
                assert offered.moves == []

    def test_an_admin_cannot_refund_money_that_was_not_taken(self):
        offered = acts(S.REFUND_REQUESTED, Party.STAFF, Party.ADMIN, paid=False)
        assert not offered.staff_refund and offered.refundable_fen == 0

    def test_the_parties_are_found_when_not_given(self):
        placed = order(S.PAID, payment=PaymentStatus.SUCCEEDED)
        sub = placed.sub_orders[0]
        offered = manage.sub_actions(FakeSession(), user(BUYER), sub)  # type: ignore[arg-type]
        assert offered.who == {Party.BUYER} and offered.request_refund
        assert manage.sub_actions(FakeSession(), user(STRANGER), sub).who == set()  # type: ignore[arg-type]


class TestOrderActions:
    def actions(self, placed: Order, actor: User | None, now: datetime = NOW) -> manage.OrderActions:
        return manage.order_actions(FakeSession(), actor, placed, now=now)  # type: ignore[arg-type]

    def test_the_buyer_may_pay_or_cancel_an_unpaid_order_in_time(self):
        assert self.actions(order(), user(BUYER)) == manage.OrderActions(pay=True, cancel=True)
        assert self.actions(order(), user(PLACER)) == manage.OrderActions(pay=True, cancel=True)

    def test_once_the_time_is_up_it_can_be_cancelled_but_not_paid(self):
        placed = order()
        assert self.actions(placed, user(BUYER), now=placed.pay_by) == manage.OrderActions(cancel=True)

    def test_a_paid_order_can_be_neither_paid_nor_cancelled_unpaid(self):
        placed = order(S.PAID, payment=PaymentStatus.SUCCEEDED)
        assert self.actions(placed, user(BUYER)) == manage.OrderActions()

    def test_a_closed_payment_can_be_neither_paid_nor_cancelled(self):
        placed = order(payment=PaymentStatus.CANCELED)
        assert self.actions(placed, user(BUYER)) == manage.OrderActions()

    def test_staff_may_cancel_but_only_the_buyer_pays(self):
        assert self.actions(order(), user(STRANGER, R.ADMIN)) == manage.OrderActions(cancel=True)

    def test_someone_else_may_do_nothing(self):
        assert self.actions(order(), user(STRANGER)) == manage.OrderActions()
        assert self.actions(order(), None) == manage.OrderActions()


QR = {"wechat_pay_display_qr_code": {"data": "weixin://wxpay/bizpayurl?pr=abc"}}
ALIPAY = {"alipay_handle_redirect": {"url": "https://openapi.alipay.com/pay?x=1"}}


class TestPayState:
    @pytest.mark.parametrize(
        ("changes", "state"),
        [
            ({"payment": PaymentStatus.SUCCEEDED}, "paid"),
            ({"payment": PaymentStatus.REQUIRES_CAPTURE}, "authorised"),
            ({"payment": PaymentStatus.CANCELED}, "cancelled"),
            ({"pay_by": NOW}, "expired"),
            ({"payment": PaymentStatus.PROCESSING}, "processing"),
            ({}, "card"),
            ({"payment": PaymentStatus.REQUIRES_ACTION, "client_secret": "pi_1_secret_2"}, "authenticate"),
            ({"payment": PaymentStatus.REQUIRES_ACTION}, "card"),
            ({"method": PaymentMethod.WECHAT_PAY, "next_action": QR}, "wechat"),
            ({"method": PaymentMethod.ALIPAY, "next_action": ALIPAY}, "alipay"),
            ({"method": PaymentMethod.WECHAT_PAY}, "wallet_retry"),
            ({"method": PaymentMethod.ALIPAY, "next_action": QR}, "wallet_retry"),
        ],
    )
    def test_the_pay_page_shows_the_buyers_next_step(self, changes: dict[str, Any], state: str):
        assert payments.pay_state(order(**changes), now=NOW) == state

    def test_an_expired_order_is_expired_even_when_the_wallet_is_ready(self):
        placed = order(method=PaymentMethod.WECHAT_PAY, next_action=QR)
        assert payments.pay_state(placed, now=placed.pay_by - timedelta(seconds=1)) == "wechat"
        assert payments.pay_state(placed, now=placed.pay_by) == "expired"
        assert payments.is_expired(placed, placed.pay_by)
        assert not payments.is_expired(placed, placed.pay_by - timedelta(seconds=1))

    def test_a_qr_code_too_long_to_be_a_wallet_link_or_a_non_web_redirect_is_not_shown(self):
        long_qr = {"wechat_pay_display_qr_code": {"data": "x" * (payments.MAX_QR_TEXT + 1)}}
        assert payments.pay_state(order(method=PaymentMethod.WECHAT_PAY, next_action=long_qr), now=NOW) == (
            "wallet_retry"
        )
        script = {"alipay_handle_redirect": {"url": "javascript:alert(1)"}}
        assert payments.alipay_url(order(method=PaymentMethod.ALIPAY, next_action=script).payment) is None
        assert payments.wechat_qr_text(order(next_action=QR).payment) == "weixin://wxpay/bizpayurl?pr=abc"
