"""Buyers hear about their order (issue 10, item 9), on the real database and localstripe: every
event is told once however often it is replayed, optional kinds can be turned off but not the
essential ones, a failed send is retried by the job, a rolled-back move tells nothing; pickup
orders get a pickup code, stored hashed, checked at hand-over with the SMS codes' attempt limit."""

from __future__ import annotations

import re
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    Notification,
    NotificationEvent,
    NotificationStatus,
    OrderEvent,
    OrderStatus,
    PickupCode,
    SmsMessage,
    SubOrder,
    clock,
)
from services import jobs, notify
from services.accounts import AuthPolicy
from services.errors import NotFound, RateLimited, ValidationError
from services.i18n import yuan_text
from services.orders import manage, pickup
from services.orders.checkout import AddressInput
from services.orders.pickup import PickupCodeKeys, PickupCodeLocked, WrongPickupCode
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.conftest import count
from tests.factories import pickup_code_of, receive

S = OrderStatus
E = NotificationEvent
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
KEYS = PickupCodeKeys(secret="a-test-secret-for-pickup-codes-0123456789")
PICKUP_PHONE = "13912345678"


class FailingChannel:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, session, phone: str, body: str) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        raise ConnectionError("SMS provider unreachable")


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found


def place_paid(market, gateway, point=None, items=None):  # type: ignore[no-untyped-def]
    extra = {}
    if point is not None:
        extra = {
            "delivery": "pickup",
            "pickup_node_id": point.id,
            "pickup_contact": AddressInput(recipient="陈小姐", phone=PICKUP_PHONE),
            "address": None,
        }
    return market.pay(market.place(items or {"梅县金柚": 1}, SETTINGS, **extra), gateway)


def to_ready(session, market, gateway, admin, sub: SubOrder) -> None:  # type: ignore[no-untyped-def]
    manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
    receive(session, gateway, sub)  # the intake at the point, weighed as ordered
    manage.move(session, admin, sub.number, S.IN_TRANSIT)
    manage.move(session, admin, sub.number, S.READY_FOR_PICKUP)


def send(session, channel=None, now=None) -> notify.SendReport:  # type: ignore[no-untyped-def]
    return notify.send_pending(session, channel or notify.SmsOutboxChannel(), KEYS, now=now)


def events(session, order) -> list[E]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(Notification.event).where(Notification.order_id == order.id).order_by(Notification.id)
        )
    )


def texts(session, phone: str) -> list[str]:
    return list(
        session.scalars(select(SmsMessage.body).where(SmsMessage.phone == phone).order_by(SmsMessage.id))
    )


def hand_over(session, staff, sub, code):  # type: ignore[no-untyped-def]
    return manage.move(session, staff, sub.number, S.COMPLETED, pickup_code=code, keys=KEYS)


class TestEveryEventIsToldOnce:
    def test_a_pickup_order_tells_paid_accepted_handed_in_and_ready_with_the_code(
        self, session, market, gateway, admin, agent, point
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        assert send(session).sent == 4
        buyer = texts(session, market.buyer.phone)
        assert len(buyer) == 3
        assert order.number in buyer[0] and yuan_text(order.total_fen) in buyer[0] and "已付款" in buyer[0]
        assert sub.number in buyer[1] and "接单" in buyer[1]
        assert sub.number in buyer[2] and "发出" in buyer[2]
        # The code goes to the pickup phone the checkout asked for, with the point's name.
        (ready,) = texts(session, PICKUP_PHONE)
        code = pickup_code_of(session, order, KEYS)
        assert point.name in ready and code in ready and sub.number in ready
        assert events(session, order) == [E.PAID, E.ACCEPTED, E.HANDED_IN, E.READY_FOR_PICKUP]

    def test_replaying_the_moves_and_the_payment_webhook_tells_nothing_again(
        self, session, market, gateway, admin, point
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        send(session)
        before = count(session, SmsMessage)
        # The gateway's word on the payment again (a webhook delivered twice, the reconciliation).
        payment = payments.payment_of(session, order)
        payments.apply_intent(session, gateway, gateway.retrieve_payment_intent(payment.intent_id))
        manage.move(session, admin, sub.number, S.READY_FOR_PICKUP)  # a repeated tap
        # Even a move replayed into the state machine finds its row.
        assert notify.on_move(session, fresh(session, sub), S.IN_TRANSIT, S.READY_FOR_PICKUP) is None
        assert notify.on_move(session, fresh(session, sub), S.PENDING_PAYMENT, S.PAID) is None
        session.commit()
        assert send(session).sent == 0
        assert count(session, SmsMessage) == before
        assert count(session, Notification, Notification.order_id == order.id) == 4

    def test_an_order_of_two_sellers_is_told_paid_once_and_each_part_accepted(self, session, market, gateway):
        order = place_paid(market, gateway, items={"梅县金柚": 1, "英德红茶": 1})
        assert len(order.sub_orders) == 2
        for sub in order.sub_orders:
            manage.move(session, sub.seller, sub.number, S.ACCEPTED)
        send(session)
        assert events(session, order) == [E.PAID, E.ACCEPTED, E.ACCEPTED]
        assert len(texts(session, market.buyer.phone)) == 3

    def test_a_home_delivery_is_told_out_for_delivery_at_the_door_and_no_code(
        self, session, market, gateway, admin
    ):
        order = place_paid(market, gateway)
        (sub,) = order.sub_orders
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        receive(session, gateway, sub)
        manage.move(session, admin, sub.number, S.IN_TRANSIT)
        manage.move(session, admin, sub.number, S.OUT_FOR_DELIVERY)
        # Staff complete a home delivery without any code.
        manage.move(session, admin, sub.number, S.COMPLETED)
        send(session)
        assert events(session, order) == [E.PAID, E.ACCEPTED, E.HANDED_IN, E.OUT_FOR_DELIVERY]
        assert "派送" in texts(session, order.recipient_phone)[-1]
        assert count(session, PickupCode, PickupCode.order_id == order.id) == 0

    def test_each_refund_is_told_once_with_its_amount(self, session, market, gateway, admin):
        order = place_paid(market, gateway)
        (sub,) = order.sub_orders
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        manage.staff_refund(session, gateway, admin, sub.number, 300, "少了一个", "refund-part-0001")
        manage.staff_refund(session, gateway, admin, sub.number, 300, "少了一个", "refund-part-0001")  # again
        rest = sub.total_fen - 300
        manage.staff_refund(session, gateway, admin, sub.number, None, "全部退回", "refund-rest-0001")
        assert fresh(session, sub).status == S.REFUNDED
        send(session)
        refunds = [t for t in texts(session, market.buyer.phone) if "退款" in t]
        assert refunds == [
            f"【粤农通】订单{sub.number}已退款{yuan_text(300)}，将原路退回。",
            f"【粤农通】订单{sub.number}已退款{yuan_text(rest)}，将原路退回。",
        ]

    def test_a_move_rolled_back_records_and_sends_nothing(self, session, market, gateway):
        order = place_paid(market, gateway)
        (sub,) = order.sub_orders
        send(session)
        before = count(session, SmsMessage)
        from services.authz import Party
        from services.orders import states

        states.apply(session, fresh(session, sub), S.ACCEPTED, party=Party.SELLER)
        session.rollback()
        assert count(session, Notification, Notification.event == E.ACCEPTED) == 0
        assert send(session).sent == 0
        assert count(session, SmsMessage) == before
        assert fresh(session, sub).status == S.PAID


class TestOptingOut:
    def test_a_buyer_who_turns_off_accepted_and_handed_in_still_gets_paid_and_the_code(
        self, session, market, gateway, admin, point
    ):
        chosen = notify.set_preferences(session, market.buyer, ["out_for_delivery"])
        assert {c.event: c.on for c in chosen} == {
            E.ACCEPTED: False,
            E.HANDED_IN: False,
            E.OUT_FOR_DELIVERY: True,
        }
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        assert send(session).sent == 2
        rows = session.execute(
            select(Notification.event, Notification.status).where(Notification.order_id == order.id)
        )
        statuses = {event: status for event, status in rows}
        assert statuses == {
            E.PAID: NotificationStatus.SENT,
            E.ACCEPTED: NotificationStatus.SKIPPED,
            E.HANDED_IN: NotificationStatus.SKIPPED,
            E.READY_FOR_PICKUP: NotificationStatus.SENT,
        }
        assert len(texts(session, market.buyer.phone)) == 1  # paid
        assert len(texts(session, PICKUP_PHONE)) == 1  # the code

    def test_the_essential_messages_cannot_be_turned_off_and_choices_are_idempotent(self, session, market):
        with pytest.raises(ValidationError):
            notify.set_preferences(session, market.buyer, ["paid"])
        notify.set_preferences(session, market.buyer, [])
        again = notify.set_preferences(session, market.buyer, [])
        assert [c.on for c in again] == [False, False, False]
        back = notify.set_preferences(session, market.buyer, ["accepted", "handed_in", "out_for_delivery"])
        assert [c.on for c in back] == [True, True, True]


class TestSending:
    def test_a_failed_send_is_retried_later_by_the_job_and_sent_once(self, session, market, gateway, clock):
        order = place_paid(market, gateway)
        failing = FailingChannel()
        report = send(session, failing, now=clock.now())
        assert (report.sent, report.retrying) == (0, 1)
        row = session.scalar(select(Notification).where(Notification.order_id == order.id))
        assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
        assert "unreachable" in row.last_error
        # Not due again yet: nothing is tried.
        assert send(session, failing, now=clock.now()).retrying == 0 and failing.calls == 1
        clock.advance(timedelta(minutes=2))
        ctx = jobs.JobContext(
            settings={"SECRET_KEY": KEYS.secret}, notification_channel=notify.SmsOutboxChannel
        )
        outcome = jobs.run_job(lambda: nullcontext(session), "send-notifications", context=ctx)
        assert outcome.ok and outcome.result == {"sent": 1, "retrying": 0, "failed": 0}
        assert texts(session, market.buyer.phone) == [
            f"【粤农通】订单{order.number}已付款{yuan_text(order.total_fen)}，卖家接单后会尽快发货。"
        ]
        assert (
            jobs.run_job(lambda: nullcontext(session), "send-notifications", context=ctx).result["sent"] == 0
        )

    def test_after_the_last_try_it_is_marked_failed(self, session, market, gateway, clock):
        order = place_paid(market, gateway)
        failing = FailingChannel()
        for _ in range(notify.MAX_SEND_ATTEMPTS):
            send(session, failing, now=clock.now())
            clock.advance(timedelta(hours=2))
        row = session.scalar(select(Notification).where(Notification.order_id == order.id))
        assert (row.status, row.attempts) == (NotificationStatus.FAILED, notify.MAX_SEND_ATTEMPTS)
        assert send(session, now=clock.now()).sent == 0
        assert texts(session, market.buyer.phone) == []


class TestPickupCode:
    def test_the_buyer_sees_the_code_that_is_texted_and_it_is_stored_only_hashed(
        self, session, market, gateway, admin, agent, point
    ):
        order = place_paid(market, gateway, point)
        shown = manage.buyer_pickup_code(session, market.buyer, order, KEYS)
        assert shown is not None and re.fullmatch(r"\d{6}", shown.code) and shown.attempts_left == 5
        assert manage.buyer_pickup_code(session, agent, order, KEYS) is None  # only the buyer
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        send(session)
        assert shown.code in texts(session, PICKUP_PHONE)[0]
        row = session.scalar(select(PickupCode).where(PickupCode.order_id == order.id))
        stored = [row.salt, row.code_hash, str(row.attempts)]
        stored += [
            str(v) for n in session.scalars(select(Notification)) for v in (n.params, n.dedupe_key, n.phone)
        ]
        assert not any(shown.code in value for value in stored)
        # Another secret derives another code: without it the rows tell nothing.
        other = PickupCodeKeys(secret="another-secret-another-secret-0123456789")
        assert pickup.code_of(other, row) != shown.code

    def test_the_right_code_hands_the_parcel_over_and_a_repeat_changes_nothing(
        self, session, market, gateway, admin, agent, point
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        code = pickup_code_of(session, order, KEYS)
        offered = manage.sub_actions(session, agent, fresh(session, sub))
        assert offered.moves == [S.COMPLETED] and offered.pickup_code
        hand_over(session, agent, sub, code)
        assert fresh(session, sub).status == S.COMPLETED
        completed = count(session, OrderEvent, OrderEvent.sub_order_id == sub.id)
        # The code used again (or any other): the parcel is handed over already; nothing written.
        hand_over(session, agent, sub, code)
        hand_over(session, agent, sub, "000000")
        assert count(session, OrderEvent, OrderEvent.sub_order_id == sub.id) == completed
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == order.id)) == 0
        # Nothing left to collect: the buyer's page shows no code any more.
        assert manage.buyer_pickup_code(session, market.buyer, fresh(session, sub).order, KEYS) is None

    def test_a_wrong_code_is_counted_with_the_tries_left_and_a_missing_one_is_asked_for(
        self, session, market, gateway, admin, agent, point
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        code = pickup_code_of(session, order, KEYS)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        with pytest.raises(ValidationError) as missing:
            hand_over(session, agent, sub, "")
        assert "pickup_code" in missing.value.field_errors
        with pytest.raises(WrongPickupCode) as first:
            hand_over(session, agent, sub, wrong)
        assert "4" in str(first.value.message)
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == order.id)) == 1
        assert fresh(session, sub).status == S.READY_FOR_PICKUP
        # The right code still works and forgets the wrong try.
        hand_over(session, agent, sub, code)
        assert fresh(session, sub).status == S.COMPLETED
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == order.id)) == 0

    def test_after_the_sms_codes_limit_it_is_locked_until_the_buyer_has_a_new_one_issued(
        self, session, market, gateway, admin, agent, point, clock
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        send(session)
        code = pickup_code_of(session, order, KEYS)
        limit = AuthPolicy().code_max_attempts
        assert KEYS.max_attempts == limit == 5
        guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code]
        for guess in guesses[: limit - 1]:
            with pytest.raises(WrongPickupCode):
                hand_over(session, agent, sub, guess)
        with pytest.raises(PickupCodeLocked):
            hand_over(session, agent, sub, guesses[limit - 1])
        # Locked: even the right code is refused now, and nothing more is counted.
        with pytest.raises(PickupCodeLocked):
            hand_over(session, agent, sub, code)
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == order.id)) == limit
        assert fresh(session, sub).status == S.READY_FOR_PICKUP
        shown = manage.buyer_pickup_code(session, market.buyer, order, KEYS)
        assert shown is not None and shown.locked
        # Only the buyer unlocks it, with a new code (texted to the pickup phone).
        with pytest.raises(NotFound):
            manage.new_pickup_code(session, agent, order.number, KEYS)
        manage.new_pickup_code(session, market.buyer, order.number, KEYS)
        new = pickup_code_of(session, order, KEYS)
        send(session)
        assert (
            texts(session, PICKUP_PHONE)[-1]
            == f"【粤农通】订单{order.number}的新取货码{new}，原取货码已作废，请勿告诉他人。"
        )
        with pytest.raises(RateLimited):
            manage.new_pickup_code(session, market.buyer, order.number, KEYS)
        if new != code:
            with pytest.raises(WrongPickupCode):
                hand_over(session, agent, sub, code)  # the old code no longer works
        hand_over(session, agent, sub, new)
        assert fresh(session, sub).status == S.COMPLETED

    def test_brute_force_is_bounded_to_the_limit_per_issued_code(
        self, session, market, gateway, admin, agent, point
    ):
        order = place_paid(market, gateway, point)
        (sub,) = order.sub_orders
        to_ready(session, market, gateway, admin, sub)
        code = pickup_code_of(session, order, KEYS)
        tried = 0
        for n in range(200):
            guess = f"{n:06d}"
            if guess == code:
                continue
            try:
                hand_over(session, agent, sub, guess)
            except WrongPickupCode:
                tried += 1
            except PickupCodeLocked:
                pass
        assert tried == KEYS.max_attempts - 1  # the 5th wrong guess locks it
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == order.id)) == 5
        with pytest.raises(PickupCodeLocked):
            hand_over(session, agent, sub, code)
        assert fresh(session, sub).status == S.READY_FOR_PICKUP

    def test_the_buyer_confirms_receipt_without_a_code_and_the_job_leaves_a_waiting_parcel(
        self, session, market, gateway, admin, point
    ):
        first = place_paid(market, gateway, point)
        second = place_paid(market, gateway, point)
        (mine,) = first.sub_orders
        (waiting,) = second.sub_orders
        to_ready(session, market, gateway, admin, mine)
        to_ready(session, market, gateway, admin, waiting)
        assert not manage.sub_actions(session, market.buyer, fresh(session, mine)).pickup_code
        manage.move(session, market.buyer, mine.number, S.COMPLETED)
        assert fresh(session, mine).status == S.COMPLETED
        # The job no longer completes a parcel waiting at its pickup point: nobody collected it
        # (services/parcels.py hands it over with the code, or returns it when uncollected).
        done = jobs.complete_delivered(session, days=7, now=clock.now() + timedelta(days=8))
        assert done == 0 and fresh(session, waiting).status == S.READY_FOR_PICKUP

    def test_a_new_code_only_while_a_parcel_waits(self, session, market, gateway):
        order = place_paid(market, gateway)  # home delivery: no code at all
        assert manage.buyer_pickup_code(session, market.buyer, order, KEYS) is None
        from services.orders.states import IllegalTransition

        with pytest.raises(IllegalTransition):
            manage.new_pickup_code(session, market.buyer, order.number, KEYS)
