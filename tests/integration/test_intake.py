"""Issue 11, item 5: produce intake at the village point. The receiving agent weighs, grades and
photographs a farmer's sub-order: that is the hand-in. Produce sold by weight is charged for its
weighed weight (a pre-sale captured for less, an automatic payment refunded the difference), a
shortfall or a rejected line is refunded, nothing accepted is refunded in full; every accepted
line becomes a lot with an unguessable trace code. One transaction, one key; bad input refused
with nothing written. On SQLite and PostgreSQL, against the real localstripe (the ledger's
invariants are checked after each test: tests/conftest.py LEDGER_CHECKED)."""

from __future__ import annotations

import re
from contextlib import nullcontext
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from domain import (
    Grade,
    Intake,
    IntakeLine,
    IntakePhoto,
    Lot,
    Node,
    NodeKind,
    OrderStatus,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
    SubOrder,
)
from services import intake, jobs, ledger
from services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationError
from services.media import LocalStorage
from services.orders import manage
from services.orders.pricing import CheckoutSettings
from services.orders.states import IllegalTransition
from services.payments.service import REFUND_KEY
from services.payments.stripe import StripeGateway
from tests.conftest import MEIXIAN, YINGDE, count
from tests.factories import jpeg, receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
POMELO, CHICKEN = "梅县金柚", "冰鲜走地鸡"  # ¥45 per 斤 (500 g); ¥98 a piece of 1.5 kg


@pytest.fixture()
def lychee(market):  # type: ignore[no-untyped-def]
    """A pre-sale sold by the 斤 at ¥30: each gram weighed is 6 fen."""
    return market.shop.add(
        "预售妃子笑荔枝", "citrus", 3000, stock=100, presale=True, ships_from=date(2027, 5, 20)
    )


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


def accepted(session, market, gateway, items: dict[str, int]) -> SubOrder:  # type: ignore[no-untyped-def]
    """A paid order of the Meixian farmer's goods, accepted: its one sub-order."""
    order = market.pay(market.place(items, SETTINGS), gateway)
    (sub,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
    return fresh(session, sub)


def line_of(sub: SubOrder, name: str):  # type: ignore[no-untyped-def]
    return next(line for line in sub.lines if line.name == name)


def lines(sub: SubOrder, **per_line: dict) -> list[intake.LineInput]:  # type: ignore[type-arg]
    """Every line weighed as ordered, grade 一级, unless `per_line[product name]` says otherwise."""
    out = []
    for line in sub.lines:
        given = {
            "weighed_g": line.net_weight_g * line.quantity,
            "grade": "first",
            **per_line.get(line.name, {}),
        }
        out.append(intake.LineInput(line_id=line.id, **given))
    return out


def record(session, gateway, agent, sub, key="intake-key-0001", **per_line):  # type: ignore[no-untyped-def]
    return intake.record_intake(session, gateway, agent, sub.number, lines(sub, **per_line), key)


class TestChargedByWeight:
    def test_a_presale_is_captured_for_the_weighed_weight_and_the_rest_released(
        self, session, market, gateway, point, agent, lychee
    ):
        sub = accepted(session, market, gateway, {lychee.name: 4})  # 4 斤: 2000 g, ¥120
        assert sub.order.payment.status == PaymentStatus.REQUIRES_CAPTURE
        done = record(session, gateway, agent, sub, **{lychee.name: {"weighed_g": 1700}})
        sub = fresh(session, sub)
        assert sub.status == S.HANDED_IN
        assert (done.goods_fen, done.difference_fen, done.settlement) == (10200, 1800, "capture")
        payment = sub.order.payment
        assert (payment.status, payment.amount_received_fen) == (
            PaymentStatus.SUCCEEDED,
            sub.total_fen - 1800,
        )
        intent = gateway.retrieve_payment_intent(payment.intent_id)
        assert (intent.status, intent.amount_received) == ("succeeded", sub.total_fen - 1800)
        assert sub.released_fen == 1800 and sub.refunded_fen == 0
        assert ledger.balance(session, "buyer_payments_clearing") == sub.total_fen - 1800
        assert ledger.trial_balance(session) == 0
        (lot,) = done.lots
        assert (lot.weight_g, lot.grade, lot.quantity, lot.node_id) == (1700, Grade.FIRST, 4, point.id)

    def test_an_automatic_payment_is_refunded_the_difference_and_the_parcel_moves_on(
        self, session, market, gateway, point, agent
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})  # 2 斤: 1000 g, ¥90
        done = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 900}})
        sub = fresh(session, sub)
        assert (done.goods_fen, done.difference_fen, done.settlement) == (8100, 900, "refund")
        assert sub.status == S.HANDED_IN and sub.refunded_fen == 900
        refund = session.get(Refund, done.refund_id)
        assert (refund.amount_fen, refund.status, refund.idempotency_key) == (
            900,
            RefundStatus.SUCCEEDED,
            f"intake-{sub.number}",
        )
        assert [r.amount for r in gateway_refunds(gateway, sub)] == [900]
        assert ledger.trial_balance(session) == 0
        # The parcel moves on: it is handed in, the partial refund is money, not a state.
        assert manage.offered_moves(session, agent, sub) == [S.IN_TRANSIT]

    def test_weighed_more_than_ordered_costs_no_more_than_ordered(
        self, session, market, gateway, point, agent
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        done = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 1250}})
        assert (done.goods_fen, done.difference_fen, done.settlement) == (9000, 0, "none")
        assert fresh(session, sub).refunded_fen == 0 and count(session, Refund) == 0

    def test_the_price_by_weight_is_rounded_down_to_the_fen(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {POMELO: 1})  # ¥45 for 500 g: 9 fen a gram
        done = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 333}})
        assert done.lines[0].charged_fen == 4500 * 333 // 500 == 2997
        assert fresh(session, sub).refunded_fen == 4500 - 2997

    def test_goods_not_sold_by_weight_are_charged_by_the_count(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {CHICKEN: 2})
        done = record(session, gateway, agent, sub, **{CHICKEN: {"weighed_g": 2800}})  # light birds
        assert not done.lines[0].by_weight and done.difference_fen == 0
        assert (
            intake.sold_by_weight("jin") and intake.sold_by_weight("kg") and not intake.sold_by_weight("box")
        )


class TestShortfallsAndGrades:
    def test_a_shortfall_refunds_the_missing_units(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {CHICKEN: 3})
        done = record(session, gateway, agent, sub, **{CHICKEN: {"weighed_g": 3000, "accepted_quantity": 2}})
        sub = fresh(session, sub)
        assert (sub.status, sub.refunded_fen, done.difference_fen) == (S.HANDED_IN, 9800, 9800)
        assert done.lots[0].quantity == 2

    def test_a_rejected_line_is_refunded_and_gets_no_lot(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {POMELO: 1, CHICKEN: 1})
        done = record(session, gateway, agent, sub, **{CHICKEN: {"grade": "rejected"}})
        sub = fresh(session, sub)
        assert sub.status == S.HANDED_IN and sub.refunded_fen == 9800
        assert [lot.product.name for lot in done.lots] == [POMELO]
        rejected = next(line for line in done.lines if line.grade == Grade.REJECTED)
        assert (rejected.accepted_quantity, rejected.charged_fen) == (0, 0)

    def test_nothing_accepted_is_refunded_in_full_shipping_too(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {POMELO: 1, CHICKEN: 1})
        done = record(
            session, gateway, agent, sub, **{POMELO: {"grade": "rejected"}, CHICKEN: {"grade": "rejected"}}
        )
        sub = fresh(session, sub)
        assert sub.status == S.REFUNDED and sub.refunded_fen == sub.total_fen > sub.items_fen
        assert done.lots == [] and done.difference_fen == sub.total_fen
        assert ledger.balance(session, "buyer_payments_clearing") == 0 and ledger.trial_balance(session) == 0

    def test_a_presale_with_nothing_accepted_releases_the_whole_authorisation(
        self, session, market, gateway, point, agent, lychee
    ):
        sub = accepted(session, market, gateway, {lychee.name: 2})
        done = record(session, gateway, agent, sub, **{lychee.name: {"weighed_g": 0, "accepted_quantity": 0}})
        sub = fresh(session, sub)
        assert done.settlement == "void" and sub.status == S.CANCELLED
        assert sub.order.payment.status == PaymentStatus.CANCELED
        assert gateway.retrieve_payment_intent(sub.order.payment.intent_id).status == "canceled"
        assert ledger.balance(session, "buyer_payments_clearing") == 0


class TestLots:
    def test_each_accepted_line_is_a_lot_with_its_own_unguessable_code(
        self, session, market, gateway, point, agent
    ):
        subs = [accepted(session, market, gateway, {POMELO: 1, CHICKEN: 1}) for _ in range(3)]
        for n, sub in enumerate(subs):
            record(session, gateway, agent, sub, key=f"intake-key-000{n}")
        codes = session.scalars(select(Lot.code)).all()
        assert len(codes) == len(set(codes)) == 6
        assert all(re.fullmatch(r"[A-Z2-7]{16}", c) for c in codes)
        lot = session.scalars(select(Lot).where(Lot.sub_order_id == subs[0].id)).first()
        assert lot.intake_line.order_line.sub_order_id == subs[0].id and lot.seller_id == subs[0].seller_id
        assert lot.received_by_id == agent.id and lot.node_id == point.id

    def test_the_public_trace_names_the_origin_grade_day_and_point_and_nothing_personal(
        self, session, market, gateway, point, agent
    ):
        sub = accepted(session, market, gateway, {POMELO: 1})
        (lot,) = record(session, gateway, agent, sub, **{POMELO: {"grade": "second"}}).lots
        spaced = "-".join(lot.code[i : i + 4] for i in range(0, 16, 4)).lower()  # typed by hand
        shown = intake.trace(session, spaced)
        origin = market.product(POMELO).origin
        assert shown.village == origin.name and shown.town == origin.parent.name
        assert (shown.product, shown.grade, shown.point) == (POMELO, Grade.SECOND, point.name)
        assert shown.received_on.isoformat() == "2026-11-26"
        assert not {"seller", "buyer", "phone", "recipient", "sub_order"} & set(vars(shown))
        with pytest.raises(NotFound):
            intake.trace(session, "A" * 16)
        with pytest.raises(NotFound):
            intake.trace(session, "not a code")

    def test_a_lot_in_full_is_for_the_receiver_seller_and_buyer_only(
        self, session, market, gateway, point, agent, make_user
    ):
        sub = accepted(session, market, gateway, {POMELO: 1})
        (lot,) = record(session, gateway, agent, sub).lots
        for who in (agent, market.shop.meixian_farmer, market.buyer):
            assert intake.get_lot(session, who, lot.code).id == lot.id
        with pytest.raises(NotFound):
            intake.get_lot(session, make_user(Role.BUYER), lot.code)

    def test_the_intake_photo_is_the_agents_upload_and_the_lot_keeps_it(
        self, session, market, gateway, point, agent, tmp_path, make_user
    ):
        storage = LocalStorage(tmp_path)
        photo = intake.upload_photo(session, storage, agent, jpeg((800, 600)))
        assert storage.exists(f"{photo.key}/480.webp")
        sub = accepted(session, market, gateway, {POMELO: 1})
        (lot,) = record(session, gateway, agent, sub, **{POMELO: {"photo_id": photo.id}}).lots
        assert lot.photo_id == photo.id == lot.intake_line.photo_id
        with pytest.raises(Forbidden):  # only those who receive goods take intake photos
            intake.upload_photo(session, storage, market.buyer, jpeg((800, 600)))
        with pytest.raises(ValidationError):
            intake.upload_photo(session, storage, agent, b"not a photo")


class TestOnceAndOnlyOnce:
    def test_the_same_key_again_applies_once_and_returns_the_first_intake(
        self, session, market, gateway, point, agent
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        first = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 900}})
        again = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 400}})  # a retried post
        assert again.id == first.id and again.goods_fen == 8100
        assert count(session, Intake) == 1 and count(session, Lot) == 1 and count(session, Refund) == 1
        assert fresh(session, sub).refunded_fen == 900
        assert [r.amount for r in gateway_refunds(gateway, sub)] == [900]

    def test_another_key_finds_it_handed_in_already(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {POMELO: 2})
        record(session, gateway, agent, sub)
        with pytest.raises(intake.AlreadyReceived) as refused:
            record(session, gateway, agent, sub, key="intake-key-0002")
        assert refused.value.status == 409
        assert count(session, Intake) == 1 and count(session, Lot) == 1

    def test_a_key_used_for_another_sub_order_is_refused(self, session, market, gateway, point, agent):
        one, two = (accepted(session, market, gateway, {POMELO: 1}) for _ in range(2))
        record(session, gateway, agent, one)
        with pytest.raises(Conflict):
            record(session, gateway, agent, two)
        assert fresh(session, two).status == S.ACCEPTED

    def test_a_refund_the_gateway_missed_is_sent_once_when_the_same_request_comes_again(
        self, session, market, gateway, point, agent
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        done = record(session, down, agent, sub, **{POMELO: {"weighed_g": 800}})
        # Recorded all the same: handed in, the lot made, the refund waiting to be sent.
        assert fresh(session, sub).status == S.HANDED_IN and len(done.lots) == 1
        assert (done.refund.status, done.refund.gateway_refund_id) == (RefundStatus.PENDING, None)
        assert fresh(session, sub).refunded_fen == 0
        record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 800}})  # the agent taps again
        assert fresh(session, sub).refunded_fen == 1800
        assert [r.amount for r in gateway_refunds(gateway, sub)] == [1800]
        assert ledger.trial_balance(session) == 0

    def test_a_capture_the_gateway_missed_is_taken_when_the_same_request_comes_again(
        self, session, market, gateway, point, agent, lychee
    ):
        sub = accepted(session, market, gateway, {lychee.name: 2})
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        record(session, down, agent, sub, **{lychee.name: {"weighed_g": 900}})
        sub = fresh(session, sub)
        assert sub.status == S.HANDED_IN and sub.order.payment.status == PaymentStatus.REQUIRES_CAPTURE
        record(session, gateway, agent, sub, **{lychee.name: {"weighed_g": 900}})
        sub = fresh(session, sub)
        assert sub.order.payment.amount_received_fen == sub.total_fen - 600 and sub.released_fen == 600

    def test_a_capture_the_gateway_missed_is_taken_by_the_reconcile_job_when_nobody_sends_it_again(
        self, session, market, gateway, point, agent, lychee, clock
    ):
        sub = accepted(session, market, gateway, {lychee.name: 2})
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        record(session, down, agent, sub, **{lychee.name: {"weighed_g": 900}})
        ctx = jobs.JobContext(settings={"RECONCILE_AFTER_MINUTES": 5}, payment_gateway=lambda: gateway)
        clock.advance(timedelta(minutes=4))  # the agent may still tap again: left alone
        outcome = jobs.run_job(lambda: nullcontext(session), "reconcile-payments", context=ctx)
        assert outcome.ok and outcome.result["intakes_settled"] == 0
        assert fresh(session, sub).order.payment.status == PaymentStatus.REQUIRES_CAPTURE
        clock.advance(timedelta(minutes=2))
        outcome = jobs.run_job(lambda: nullcontext(session), "reconcile-payments", context=ctx)
        assert outcome.ok and outcome.result["intakes_settled"] == 1
        sub = fresh(session, sub)
        assert sub.order.payment.amount_received_fen == sub.total_fen - 600 and sub.released_fen == 600
        outcome = jobs.run_job(lambda: nullcontext(session), "reconcile-payments", context=ctx)
        assert outcome.result["intakes_settled"] == 0  # taken once
        assert ledger.trial_balance(session) == 0


class TestBadInput:
    def _nothing_written(self, session, sub: SubOrder) -> None:  # type: ignore[no-untyped-def]
        assert fresh(session, sub).status == S.ACCEPTED
        assert count(session, Intake) == count(session, IntakeLine) == count(session, Lot) == 0
        assert count(session, Refund) == 0

    @pytest.mark.parametrize(
        ("weighed", "field_error"),
        [
            (0, "The weight must be more than zero."),
            (-5, "Enter the weighed weight."),
            (10 * 1000, "More than 3 times"),  # ten times the order
            (3 * 1000 + 1, "More than 3 times"),
            (None, "Enter the weighed weight."),
            ("2.5", None),  # the text typed on the page, in 斤 for produce sold in 斤: 1250 g
        ],
    )
    def test_a_weight_of_zero_or_absurd_is_refused_on_its_field(
        self, session, market, gateway, point, agent, weighed, field_error
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        line = line_of(sub, POMELO)
        if field_error is None:
            assert (
                record(session, gateway, agent, sub, **{POMELO: {"weighed_g": weighed}}).lines[0].weighed_g
                == 1250
            )
            return
        with pytest.raises(ValidationError) as refused:
            record(session, gateway, agent, sub, **{POMELO: {"weighed_g": weighed}})
        assert field_error in str(refused.value.field_errors[f"weight-{line.id}"][0])
        self._nothing_written(session, sub)

    @pytest.mark.parametrize(
        "change",
        [
            {"grade": "excellent"},
            {"grade": None},
            {"accepted_quantity": 3},
            {"accepted_quantity": -1},
            {"accepted_quantity": True},
            {"photo_id": 999_999},
            {"photo_id": "1"},
        ],
    )
    def test_a_grade_quantity_or_photo_out_of_bounds_is_refused(
        self, session, market, gateway, point, agent, change
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        with pytest.raises(ValidationError) as refused:
            record(session, gateway, agent, sub, **{POMELO: change})
        assert refused.value.field_errors and refused.value.status == 422
        self._nothing_written(session, sub)

    def test_a_photo_another_agent_took_is_refused(
        self, session, market, gateway, point, agent, make_user, tmp_path
    ):
        other = make_user(Role.AGENT, node_id=point.id, name="另一个村小二")
        theirs = intake.upload_photo(session, LocalStorage(tmp_path), other, jpeg((800, 600)))
        sub = accepted(session, market, gateway, {POMELO: 1})
        line = line_of(sub, POMELO)
        with pytest.raises(ValidationError) as refused:
            record(session, gateway, agent, sub, **{POMELO: {"photo_id": theirs.id}})
        assert f"photo-{line.id}" in refused.value.field_errors
        self._nothing_written(session, sub)
        assert count(session, IntakePhoto) == 1

    @pytest.mark.parametrize("shape", ["missing", "twice", "stranger", "junk"])
    def test_every_line_reported_once(self, session, market, gateway, point, agent, shape):
        sub = accepted(session, market, gateway, {POMELO: 1, CHICKEN: 1})
        given: list = lines(sub)  # type: ignore[type-arg]
        given = {
            "missing": given[:1],
            "twice": [given[0], given[0], given[1]],
            "stranger": [*given, intake.LineInput(line_id=999_999, weighed_g=1, grade="first")],
            "junk": ["x", 1],
        }[shape]
        with pytest.raises(ValidationError):
            intake.record_intake(session, gateway, agent, sub.number, given, "intake-key-0001")
        self._nothing_written(session, sub)

    def test_no_key_is_refused(self, session, market, gateway, point, agent):
        sub = accepted(session, market, gateway, {POMELO: 1})
        with pytest.raises(ValidationError):
            intake.record_intake(session, gateway, agent, sub.number, lines(sub), "")
        self._nothing_written(session, sub)

    def test_a_sub_order_not_accepted_is_not_received(self, session, market, gateway, point, agent):
        order = market.pay(market.place({POMELO: 1}, SETTINGS), gateway)
        (sub,) = order.sub_orders
        with pytest.raises(intake.NotReceivable):
            record(session, gateway, agent, sub)
        assert fresh(session, sub).status == S.PAID and count(session, Intake) == 0


class TestWhoReceives:
    def test_another_points_agent_does_not_find_it_and_the_seller_and_buyer_are_refused(
        self, session, market, gateway, point, agent, make_user, village_point
    ):
        sub = accepted(session, market, gateway, {POMELO: 1})
        elsewhere = make_user(Role.AGENT, node_id=village_point(YINGDE).id, name="英德村小二")
        with pytest.raises(NotFound):
            record(session, gateway, elsewhere, sub)
        for who in (market.shop.meixian_farmer, market.buyer):
            with pytest.raises(Forbidden):
                record(session, gateway, who, sub)
        assert count(session, Intake) == 0
        assert intake.to_receive(session, elsewhere) == []
        with pytest.raises(Forbidden):
            intake.to_receive(session, market.buyer)

    def test_the_pickup_points_agent_and_an_admin_move_parcels_but_do_not_receive(
        self, session, market, gateway, point, agent, make_user, village_point, admin
    ):
        from services.orders.addresses import AddressInput

        there = village_point(YINGDE)
        pickup_agent = make_user(Role.AGENT, node_id=there.id, name="英德村小二")
        order = market.place(
            {POMELO: 1},
            SETTINGS,
            delivery="pickup",
            pickup_node_id=there.id,
            pickup_contact=AddressInput(recipient="陈小姐", phone="13912345678"),
            address=None,
        )
        (sub,) = market.pay(order, gateway).sub_orders
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        with pytest.raises(NotFound):
            record(session, gateway, pickup_agent, sub)
        with pytest.raises(Forbidden):
            record(session, gateway, admin, sub)
        assert not manage.sub_actions(session, pickup_agent, fresh(session, sub)).hand_in
        assert manage.sub_actions(session, agent, fresh(session, sub)).hand_in
        record(session, gateway, agent, sub)
        assert fresh(session, sub).status == S.HANDED_IN

    def test_county_staff_receive_a_farmer_without_a_point_at_the_center(
        self, session, market, gateway, make_user
    ):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN, name="梅县中心")
        sub = accepted(session, market, gateway, {POMELO: 1})
        with pytest.raises(Conflict):  # no point and no county center to receive it at
            record(session, gateway, staff, sub)
        assert fresh(session, sub).status == S.ACCEPTED and count(session, Intake) == 0
        center = Node(
            kind=NodeKind.COUNTY_CENTER, name="梅县区县级服务中心", division_code=MEIXIAN, county_code=MEIXIAN
        )
        session.add(center)
        session.commit()
        (lot,) = receive(session, gateway, sub, by=staff).lots
        assert fresh(session, sub).status == S.HANDED_IN and lot.node_id == center.id

    def test_the_list_of_produce_to_receive_is_the_points_accepted_orders(
        self, session, market, gateway, point, agent
    ):
        waiting = accepted(session, market, gateway, {POMELO: 1})
        packed = accepted(session, market, gateway, {CHICKEN: 1})
        manage.mark_ready(session, market.shop.meixian_farmer, packed.number)
        market.pay(market.place({POMELO: 1}, SETTINGS), gateway)  # paid, not accepted
        market.pay(market.place({"英德红茶": 1}, SETTINGS), gateway)  # another seller
        assert [s.number for s in intake.to_receive(session, agent)] == [packed.number, waiting.number]
        assert intake.count_to_receive(session, agent) == 2
        record(session, gateway, agent, waiting)
        assert [s.number for s in intake.to_receive(session, agent)] == [packed.number]
        assert [i.sub_order.number for i in intake.received(session, agent)] == [waiting.number]

    def test_no_other_way_leads_to_handed_in(self, session, market, gateway, point, agent, admin):
        sub = accepted(session, market, gateway, {POMELO: 1})
        for who in (market.shop.meixian_farmer, agent, admin):
            with pytest.raises(ServiceError):
                manage.move(session, who, sub.number, S.HANDED_IN)
        assert not hasattr(manage, "hand_in")
        with pytest.raises(IllegalTransition):
            manage.move(session, admin, sub.number, "handed_in")
        assert fresh(session, sub).status == S.ACCEPTED

    def test_the_seller_and_buyer_see_the_result_strangers_do_not(
        self, session, market, gateway, point, agent, make_user
    ):
        sub = accepted(session, market, gateway, {POMELO: 2})
        done = record(session, gateway, agent, sub, **{POMELO: {"weighed_g": 900}})
        for who in (market.shop.meixian_farmer, market.buyer, agent):
            assert intake.visible_intake(session, who, fresh(session, sub)).id == done.id
        assert intake.visible_intake(session, make_user(Role.BUYER), fresh(session, sub)) is None


def gateway_refunds(gateway, sub: SubOrder) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The intake's refund as localstripe holds it (found by our key in its metadata)."""
    intent_id = sub.order.payment.intent_id
    found = gateway.find_refund(
        payment_intent=intent_id, metadata_key=REFUND_KEY, metadata_value=f"intake-{sub.number}"
    )
    return [found] if found is not None else []
