"""Parcels at the village point (issue 11, item 4), on the real database and localstripe: the
agent sees what is on its way and marks it arrived (tap or scan), sees what waits with its age
and flags, hands it over with the pickup code (wrong codes counted, five lock it) or, the code
lost, for a recorded reason; an order on the agent's credit is paid in cash at the counter; an
uncollected parcel is reminded once, then returned and refunded by the flag-uncollected-parcels
job, and complete-delivered no longer completes parcels waiting at a pickup point."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from domain import (
    CreditCollection,
    HandoverMethod,
    IdentityReason,
    Notification,
    NotificationEvent,
    Order,
    OrderEvent,
    ParcelHandover,
    PaymentStatus,
    PickupCode,
    Refund,
    RefundStatus,
    Role,
    SubOrder,
)
from domain import OrderStatus as S
from services import jobs, notify, parcels
from services.authz import Party
from services.errors import Forbidden, NotFound, ValidationError
from services.orders import checkout, manage, states
from services.orders.checkout import AddressInput
from services.orders.pickup import PickupCodeKeys, PickupCodeLocked, WrongPickupCode
from services.orders.states import IllegalTransition
from services.parcels import AlreadyCollected, CashNotConfirmed, HandoverInput
from services.proxy import credit
from tests.conftest import YINGDE, count
from tests.factories import credit_parcel_waiting, pickup_code_of

E = NotificationEvent
KEYS = PickupCodeKeys(secret="a-test-secret-for-pickup-codes-0123456789")
PICKUP_PHONE = "13912345678"


def key() -> str:
    return checkout.new_idempotency_key()


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found


def place_pickup(market, gateway, checkout_settings, point) -> Order:  # type: ignore[no-untyped-def]
    order = market.place(
        {"梅县金柚": 1},
        checkout_settings,
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈小姐", phone=PICKUP_PHONE),
        address=None,
    )
    market.pay(order, gateway)
    return order


def to_transit(session, market, gateway, admin, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
    # Handed in at the seller's point, as the intake leaves it (services/intake.py: its own tests).
    states.apply(session, fresh(session, sub), S.HANDED_IN, party=Party.STAFF, actor=admin)
    session.commit()
    manage.move(session, admin, sub.number, S.IN_TRANSIT)
    return fresh(session, sub)


@pytest.fixture()
def on_the_way(session, market, gateway, checkout_settings, admin, point) -> SubOrder:  # type: ignore[no-untyped-def]
    """A paid pickup order at the point, in transit to it."""
    order = place_pickup(market, gateway, checkout_settings, point)
    (sub,) = order.sub_orders
    return to_transit(session, market, gateway, admin, sub)


@pytest.fixture()
def waiting(session, on_the_way, agent) -> SubOrder:  # type: ignore[no-untyped-def]
    """That parcel, arrived at the point."""
    parcels.mark_arrived(session, agent, on_the_way.number, key())
    return fresh(session, on_the_way)


@pytest.fixture()
def other_agent(make_user, village_point):  # type: ignore[no-untyped-def]
    """The agent of another village point (in another county)."""
    return make_user(Role.AGENT, node_id=village_point(YINGDE).id, name="英德村小二")


def hand(session, agent, sub, *, k: str | None = None, **data: Any) -> ParcelHandover:  # type: ignore[no-untyped-def]
    return parcels.hand_over(session, agent, sub.number, HandoverInput(**data), k or key(), KEYS)


def code_of(session, sub: SubOrder) -> str:  # type: ignore[no-untyped-def]
    return pickup_code_of(session, sub.order, KEYS)


def wrong(code: str, n: int = 1) -> str:
    return f"{(int(code) + n) % 1_000_000:06d}"


class TestArriving:
    def test_the_agent_sees_it_coming_and_marks_it_arrived_once(self, session, on_the_way, agent):
        assert [p.number for p in parcels.arriving(session, agent)] == [on_the_way.number]
        assert parcels.waiting(session, agent) == []
        first = key()
        parcels.mark_arrived(session, agent, on_the_way.number, first)
        sub = fresh(session, on_the_way)
        assert sub.status == S.READY_FOR_PICKUP
        # The recipient is sent the pickup code (the existing ready-for-pickup message).
        ready = session.scalars(
            select(Notification).where(
                Notification.sub_order_id == sub.id, Notification.event == E.READY_FOR_PICKUP
            )
        ).all()
        assert [n.phone for n in ready] == [PICKUP_PHONE]
        # Scanned again (same key, or a second scan with a new form): the same parcel, nothing twice.
        parcels.mark_arrived(session, agent, on_the_way.number, first)
        parcels.mark_arrived(session, agent, on_the_way.number, key())
        arrivals = count(
            session, OrderEvent, OrderEvent.sub_order_id == sub.id, OrderEvent.to_status == S.READY_FOR_PICKUP
        )
        assert arrivals == 1
        assert parcels.arriving(session, agent) == []
        assert [p.number for p in parcels.waiting(session, agent)] == [sub.number]

    def test_the_order_number_scans_too_when_it_has_one_parcel(self, session, on_the_way, agent):
        parcels.mark_arrived(session, agent, f"  {on_the_way.order.number} ", key())
        assert fresh(session, on_the_way).status == S.READY_FOR_PICKUP

    def test_another_points_parcel_is_not_found_and_nothing_moves(
        self, session, on_the_way, other_agent, market
    ):
        assert parcels.arriving(session, other_agent) == []
        with pytest.raises(NotFound):
            parcels.mark_arrived(session, other_agent, on_the_way.number, key())
        with pytest.raises(NotFound):
            parcels.get_parcel(session, other_agent, on_the_way.number)
        with pytest.raises(Forbidden):  # not an agent at all
            parcels.mark_arrived(session, market.buyer, on_the_way.number, key())
        with pytest.raises(Forbidden):
            parcels.arriving(session, market.buyer)
        assert fresh(session, on_the_way).status == S.IN_TRANSIT

    def test_bad_numbers_and_keys(self, session, on_the_way, agent):
        for blank in ("", "   ", None):
            with pytest.raises(ValidationError) as exc:
                parcels.mark_arrived(session, agent, blank, key())
            assert "number" in exc.value.field_errors
        for nonsense in ("nope", "9" * 40, "2026112600000000-9"):
            with pytest.raises(NotFound):
                parcels.mark_arrived(session, agent, nonsense, key())
        with pytest.raises(ValidationError) as exc:
            parcels.mark_arrived(session, agent, on_the_way.number, "bad key!")
        assert "idempotency_key" in exc.value.field_errors
        assert fresh(session, on_the_way).status == S.IN_TRANSIT

    def test_a_parcel_not_on_its_way_yet_cannot_arrive(
        self, session, market, gateway, checkout_settings, point, agent
    ):
        order = place_pickup(market, gateway, checkout_settings, point)
        (sub,) = order.sub_orders
        with pytest.raises(IllegalTransition):
            parcels.mark_arrived(session, agent, sub.number, key())
        assert fresh(session, sub).status == S.PAID


class TestWaiting:
    def test_age_flag_and_return_day(self, clock, session, waiting, agent):
        (view,) = parcels.waiting(session, agent)
        assert (view.age_days, view.flagged, view.recipient, view.phone) == (
            0,
            False,
            "陈小姐",
            "139****5678",
        )
        assert view.returns_on == waiting.status_changed_at + timedelta(days=parcels.RETURN_DAYS)
        assert view.items == "梅县金柚×1" and view.collect_fen == 0
        clock.advance(days=2, hours=23)
        assert parcels.waiting(session, agent)[0].flagged is False
        clock.advance(hours=1)
        (view,) = parcels.waiting(session, agent)
        assert (view.age_days, view.flagged) == (3, True)
        assert parcels.waiting(session, agent, remind_days=5)[0].flagged is False


class TestHandingOverWithTheCode:
    def test_the_right_code_completes_it_once_and_tells_the_recipient(self, session, waiting, agent):
        code = code_of(session, waiting)
        first = key()
        row = hand(session, agent, waiting, k=first, pickup_code=code)
        sub = fresh(session, waiting)
        assert sub.status == S.COMPLETED and sub.completed_at is not None
        assert (row.method, row.handed_by_id, row.collected_by, row.point_id) == (
            HandoverMethod.CODE,
            agent.id,
            "陈小姐",
            waiting.order.pickup_node_id,
        )
        collected = session.scalars(
            select(Notification).where(Notification.event == E.PARCEL_COLLECTED)
        ).all()
        assert [(n.sub_order_id, n.phone) for n in collected] == [(sub.id, PICKUP_PHONE)]
        # The same request again: the same hand-over; another one: already collected.
        assert hand(session, agent, waiting, k=first, pickup_code=code).id == row.id
        with pytest.raises(AlreadyCollected):
            hand(session, agent, waiting, pickup_code=code)
        with pytest.raises(AlreadyCollected):
            hand(session, agent, waiting, reason="id_card", collected_by="陈小姐")
        assert count(session, ParcelHandover) == 1
        assert count(session, OrderEvent, OrderEvent.to_status == S.COMPLETED) == 1
        assert count(session, Notification, Notification.event == E.PARCEL_COLLECTED) == 1
        (gone,) = [parcels.get_parcel(session, agent, sub.number)]
        assert gone.handover is not None and gone.handover.id == row.id
        assert parcels.waiting(session, agent) == []

    def test_the_collected_message_reads_well(self, session, waiting, agent):
        hand(session, agent, waiting, pickup_code=code_of(session, waiting))
        row = session.scalars(select(Notification).where(Notification.event == E.PARCEL_COLLECTED)).one()
        text = notify.render(session, row, KEYS)
        assert waiting.number in text and waiting.order.pickup_node.name in text and "取走" in text

    def test_a_wrong_code_is_counted_and_five_lock_it(self, session, waiting, agent):
        code = code_of(session, waiting)
        with pytest.raises(WrongPickupCode) as exc:
            hand(session, agent, waiting, pickup_code=wrong(code))
        assert "pickup_code" in exc.value.field_errors
        for n in range(2, 5):
            with pytest.raises(WrongPickupCode):
                hand(session, agent, waiting, pickup_code=wrong(code, n))
        with pytest.raises(PickupCodeLocked):
            hand(session, agent, waiting, pickup_code=wrong(code, 5))
        session.expire_all()
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == waiting.order_id)) == 5
        with pytest.raises(PickupCodeLocked):  # locked: the right code no longer works either
            hand(session, agent, waiting, pickup_code=code)
        assert fresh(session, waiting).status == S.READY_FOR_PICKUP
        assert count(session, ParcelHandover) == 0
        # The agent can still hand it over for a recorded reason (the code is not the only way).
        row = hand(session, agent, waiting, reason="known_villager", collected_by="陈小姐")
        assert row.method == HandoverMethod.REASON

    def test_another_points_agent_gets_not_found_and_spends_no_try(self, session, waiting, other_agent):
        code = code_of(session, waiting)
        with pytest.raises(NotFound):
            hand(session, other_agent, waiting, pickup_code=wrong(code))
        with pytest.raises(NotFound):
            hand(session, other_agent, waiting, pickup_code=code)
        session.expire_all()
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == waiting.order_id)) == 0
        assert fresh(session, waiting).status == S.READY_FOR_PICKUP

    def test_a_parcel_not_at_the_point_yet_is_refused(self, session, on_the_way, agent):
        with pytest.raises(IllegalTransition):
            hand(session, agent, on_the_way, pickup_code=code_of(session, on_the_way))
        assert count(session, ParcelHandover) == 0

    def test_a_key_used_for_another_parcel_is_refused(
        self, session, market, gateway, checkout_settings, admin, point, agent, waiting
    ):
        order = place_pickup(market, gateway, checkout_settings, point)
        (second,) = order.sub_orders
        to_transit(session, market, gateway, admin, second)
        parcels.mark_arrived(session, agent, second.number, key())
        used = key()
        hand(session, agent, waiting, k=used, pickup_code=code_of(session, waiting))
        with pytest.raises(Exception) as exc:
            hand(session, agent, second, k=used, pickup_code=code_of(session, second))
        assert getattr(exc.value, "status", None) == 409
        assert fresh(session, second).status == S.READY_FOR_PICKUP


class TestTheGenericMove:
    def test_staff_handing_over_with_the_code_elsewhere_is_recorded_too(self, session, waiting, admin):
        manage.move(
            session, admin, waiting.number, S.COMPLETED, pickup_code=code_of(session, waiting), keys=KEYS
        )
        row = session.scalars(select(ParcelHandover)).one()
        assert (row.sub_order_id, row.method, row.handed_by_id) == (waiting.id, HandoverMethod.CODE, admin.id)
        assert count(session, Notification, Notification.event == E.PARCEL_COLLECTED) == 1
        assert fresh(session, waiting).status == S.COMPLETED


class TestHandingOverWithoutTheCode:
    def test_no_code_and_no_reason_is_refused(self, session, waiting, agent):
        with pytest.raises(ValidationError) as exc:
            hand(session, agent, waiting)
        assert {"pickup_code", "reason"} <= set(exc.value.field_errors)
        with pytest.raises(ValidationError) as exc:
            hand(session, agent, waiting, reason="bribe", collected_by="某人")
        assert "reason" in exc.value.field_errors
        with pytest.raises(ValidationError) as exc:
            hand(session, agent, waiting, reason="id_card")
        assert "collected_by" in exc.value.field_errors
        with pytest.raises(ValidationError):
            hand(session, agent, waiting, reason="id_card", collected_by="某" * 41)
        assert fresh(session, waiting).status == S.READY_FOR_PICKUP
        assert count(session, ParcelHandover) == 0

    def test_the_reason_and_who_collected_are_recorded(self, session, waiting, agent):
        row = hand(
            session, agent, waiting, reason="family_member", reason_text="她女儿，认识", collected_by="陈小妹"
        )
        assert (row.method, row.reason, row.reason_text, row.collected_by) == (
            HandoverMethod.REASON,
            IdentityReason.FAMILY_MEMBER,
            "她女儿，认识",
            "陈小妹",
        )
        event = session.scalars(
            select(OrderEvent).where(
                OrderEvent.sub_order_id == waiting.id, OrderEvent.to_status == S.COMPLETED
            )
        ).one()
        assert event.actor_id == agent.id and event.details["handover"] == "reason"
        session.expire_all()
        assert session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == waiting.order_id)) in (
            None,
            0,
        )


# --- a proxy order on the agent's credit ----------------------------------------------------------


@pytest.fixture()
def credit_parcel(session, market, checkout_settings, admin, point, agent, make_user):  # type: ignore[no-untyped-def]
    """A villager without a phone, a proxy order on the agent's credit, arrived at the point."""
    sub = credit_parcel_waiting(session, market, checkout_settings, admin, point, agent, make_user)
    assert sub.order.payment.status == PaymentStatus.ON_CREDIT
    return sub


class TestCashOnPickup:
    def test_the_agent_collects_the_cash_before_handing_it_over(self, session, credit_parcel, agent):
        (view,) = parcels.waiting(session, agent)
        assert view.collect_fen == credit_parcel.total_fen > 0
        assert (view.recipient, view.villager) == ("王秀英", True)  # the point's agent sees the villager
        with pytest.raises(CashNotConfirmed) as exc:
            hand(session, agent, credit_parcel, reason="known_villager", collected_by="王秀英")
        assert "cash_received" in exc.value.field_errors
        assert fresh(session, credit_parcel).status == S.READY_FOR_PICKUP
        used = credit.credit_used(session, agent.id)
        assert used == credit_parcel.total_fen
        row = hand(
            session, agent, credit_parcel, reason="known_villager", collected_by="王秀英", cash_received=True
        )
        assert row.cash_collected_fen == credit_parcel.total_fen
        sub = fresh(session, credit_parcel)
        assert sub.status == S.COMPLETED and sub.order.payment.status == PaymentStatus.SUCCEEDED
        assert count(session, CreditCollection, CreditCollection.sub_order_id == sub.id) == 1
        assert credit.credit_used(session, agent.id) == 0

    def test_no_other_door_completes_it_without_the_cash(self, session, credit_parcel, agent, admin):
        # The placing agent is the order's buyer of record: "received" would skip the cash.
        with pytest.raises(IllegalTransition):
            manage.move(session, agent, credit_parcel.number, S.COMPLETED)
        with pytest.raises(IllegalTransition):
            manage.move(session, admin, credit_parcel.number, S.COMPLETED, pickup_code="000000", keys=KEYS)
        assert fresh(session, credit_parcel).status == S.READY_FOR_PICKUP
        assert credit.credit_used(session, agent.id) == credit_parcel.total_fen

    def test_an_uncollected_credit_parcel_goes_back_and_frees_the_credit(
        self, clock, session, credit_parcel, agent, gateway
    ):
        assert credit.credit_used(session, agent.id) == credit_parcel.total_fen
        clock.advance(days=parcels.RETURN_DAYS, minutes=1)
        report = parcels.flag_uncollected(session, gateway)
        assert (report.returned, report.failed) == (1, 0)
        sub = fresh(session, credit_parcel)
        assert sub.status == S.REFUNDED and sub.refunded_fen == sub.total_fen
        assert credit.credit_used(session, agent.id) == 0
        assert count(session, CreditCollection) == 0


# --- uncollected: the job ---------------------------------------------------------------------------


class TestUncollected:
    def test_reminded_once_then_returned_and_refunded(self, clock, session, waiting, agent, gateway):
        assert parcels.flag_uncollected(session, gateway).reminded == 0
        clock.advance(days=parcels.REMIND_DAYS, minutes=1)
        assert parcels.flag_uncollected(session, gateway).reminded == 1
        assert parcels.flag_uncollected(session, gateway).reminded == 0  # once
        (reminder,) = session.scalars(
            select(Notification).where(Notification.event == E.PARCEL_REMINDER)
        ).all()
        assert reminder.phone == PICKUP_PHONE and reminder.sub_order_id == waiting.id
        text = notify.render(session, reminder, KEYS)
        assert waiting.number in text and "3天" in text and "退回" in text
        clock.advance(days=parcels.RETURN_DAYS - parcels.REMIND_DAYS - 1)
        assert parcels.flag_uncollected(session, gateway).returned == 0
        clock.advance(days=1)
        report = parcels.flag_uncollected(session, gateway)
        assert (report.reminded, report.returned, report.failed) == (0, 1, 0)
        sub = fresh(session, waiting)
        assert sub.status == S.REFUNDED and sub.refunded_fen == sub.total_fen
        refund = session.scalars(select(Refund).where(Refund.sub_order_id == sub.id)).one()
        assert refund.status == RefundStatus.SUCCEEDED and refund.idempotency_key == f"return-{sub.number}"
        row = session.scalars(select(ParcelHandover)).one()
        assert (row.method, row.handed_by_id, row.sub_order_id) == (HandoverMethod.RETURNED, None, sub.id)
        # Again: nothing more; the agent cannot hand a returned parcel over.
        assert parcels.flag_uncollected(session, gateway) == parcels.UncollectedReport()
        with pytest.raises(AlreadyCollected) as exc:
            hand(session, agent, waiting, pickup_code=code_of(session, waiting))
        assert "returned" in str(exc.value.message)
        assert count(session, Refund) == 1 and count(session, ParcelHandover) == 1

    def test_a_collected_parcel_is_neither_reminded_nor_returned(
        self, clock, session, waiting, agent, gateway
    ):
        hand(session, agent, waiting, pickup_code=code_of(session, waiting))
        clock.advance(days=30)
        assert parcels.flag_uncollected(session, gateway) == parcels.UncollectedReport()
        assert fresh(session, waiting).status == S.COMPLETED

    def test_the_registered_job_reads_its_settings(self, clock, session, waiting, gateway):
        clock.advance(days=2, minutes=1)
        ctx = jobs.JobContext(
            settings={"PARCEL_REMIND_DAYS": 1, "PARCEL_RETURN_DAYS": 2}, payment_gateway=lambda: gateway
        )
        outcome = jobs.run_job(lambda: nullcontext(session), "flag-uncollected-parcels", context=ctx)
        assert outcome.ok, outcome.error
        assert outcome.result == {"reminded": 0, "returned": 1, "failed": 0}
        assert fresh(session, waiting).status == S.REFUNDED

    def test_complete_delivered_leaves_parcels_at_a_pickup_point_alone(self, clock, session, waiting):
        clock.advance(days=jobs.AUTO_COMPLETE_DAYS + 1)
        assert jobs.complete_delivered(session) == 0
        assert fresh(session, waiting).status == S.READY_FOR_PICKUP
