"""Issue 10, item 1: a partial refund is money, not a fulfilment state. A sub-order refunded in
part keeps moving (handed in, in transit, delivered, completed) with its refunded amount beside
it, and the payout batch pays its seller exactly what remains (net of commission); on SQLite
and PostgreSQL, against the real localstripe."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import Order, OrderEvent, OrderStatus, Payout, SubOrder, clock
from services import jobs, ledger
from services.errors import ServiceError
from services.ledger import NO_PARTS, Parts, allocate_refund
from services.orders import manage
from services.orders.pricing import CheckoutSettings
from tests.factories import receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
FULFILMENT = [S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.READY_FOR_PICKUP, S.COMPLETED]


def key() -> str:
    return f"refund-{uuid.uuid4().hex}"


def paid_sub(session, market, gateway, items=None) -> SubOrder:  # type: ignore[no-untyped-def]
    order = market.place(items or {"梅县金柚": 2}, SETTINGS)
    market.pay(order, gateway)
    session.expire_all()
    order = session.get(Order, order.id)
    return next(s for s in order.sub_orders if s.seller_id == market.shop.meixian_farmer.id)


def sub_of(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


def advance(session, gateway, market, admin, sub: SubOrder, target: OrderStatus) -> None:  # type: ignore[no-untyped-def]
    """One fulfilment step, by whoever makes it."""
    if target == S.ACCEPTED:
        manage.move(session, market.shop.meixian_farmer, sub.number, target)
    elif target == S.HANDED_IN:
        receive(session, gateway, sub)  # the intake at the point, weighed as ordered
    elif target == S.COMPLETED:
        manage.move(session, market.buyer, sub.number, target)
    else:
        manage.move(session, admin, sub.number, target)


def pay_out(session, admin) -> list[Payout]:  # type: ignore[no-untyped-def]
    batch = ledger.create_payout_batch(session, admin, now=clock.now() + timedelta(days=30))
    return [] if batch is None else list(batch.payouts)


def expected_net(sub: SubOrder, refunds: list[int]) -> int:
    """The seller's net after `refunds`, worked out by the pure allocation alone."""
    taken = NO_PARTS
    for amount in refunds:
        share = allocate_refund(sub, amount, already_refunded=taken)
        taken = Parts(*(a + b for a, b in zip(taken, share, strict=True)))
    return Parts.of(sub).seller - taken.seller


class TestPartialRefundBeforeDelivery:
    def test_the_sub_order_keeps_its_state_and_is_delivered_completed_and_paid_the_rest(
        self, session, market, gateway, admin
    ):
        sub = paid_sub(session, market, gateway)
        advance(session, gateway, market, admin, sub, S.ACCEPTED)
        manage.staff_refund(session, gateway, admin, sub.number, 1000, "一个柚子压坏了", key())
        sub = sub_of(session, sub)
        assert (sub.status, sub.refunded_fen) == (S.ACCEPTED, 1000)
        # The refund is in the history, readable: a note on the state it was in, with the amount.
        last = session.scalars(
            select(OrderEvent).where(OrderEvent.sub_order_id == sub.id).order_by(OrderEvent.id.desc())
        ).first()
        assert (last.from_status, last.to_status, last.details.get("refund_fen")) == (
            S.ACCEPTED,
            S.ACCEPTED,
            1000,
        )
        for target in FULFILMENT[1:]:
            advance(session, gateway, market, admin, sub, target)
        sub = sub_of(session, sub)
        assert (sub.status, sub.refunded_fen) == (S.COMPLETED, 1000)
        payouts = pay_out(session, admin)
        assert [(p.seller_id, p.amount_fen) for p in payouts] == [(sub.seller_id, expected_net(sub, [1000]))]
        assert sub_of(session, sub).payout_id == payouts[0].id
        assert ledger.trial_balance(session) == 0

    def test_refunded_in_part_then_delivered_it_completes_by_itself_and_is_paid_the_rest(
        self, session, market, gateway, admin
    ):
        """Issue 10's "done when": nobody clicks "received"; the complete-delivered job does."""
        sub = paid_sub(session, market, gateway)
        advance(session, gateway, market, admin, sub, S.ACCEPTED)
        manage.staff_refund(session, gateway, admin, sub.number, 700, "少了一个", key())
        for target in FULFILMENT[1:-1]:  # handed in, in transit, waiting at the point
            advance(session, gateway, market, admin, sub, target)
        assert sub_of(session, sub).status == S.READY_FOR_PICKUP
        # Six days on nothing happens; after the seventh the job completes it.
        assert jobs.complete_delivered(session, days=7, now=clock.now() + timedelta(days=6)) == 0
        assert sub_of(session, sub).status == S.READY_FOR_PICKUP
        assert jobs.complete_delivered(session, days=7, now=clock.now() + timedelta(days=7, minutes=1)) == 1
        sub = sub_of(session, sub)
        assert (sub.status, sub.refunded_fen) == (S.COMPLETED, 700)
        payouts = pay_out(session, admin)
        assert [(p.seller_id, p.amount_fen) for p in payouts] == [(sub.seller_id, expected_net(sub, [700]))]
        assert expected_net(sub, [700]) < expected_net(sub, [])

    def test_a_partial_refund_while_paid_leaves_it_paid_for_the_seller_to_accept(
        self, session, market, gateway, admin
    ):
        sub = paid_sub(session, market, gateway)
        manage.staff_refund(session, gateway, admin, sub.number, 500, "少发一个", key())
        assert (sub_of(session, sub).status, sub_of(session, sub).refunded_fen) == (S.PAID, 500)
        advance(session, gateway, market, admin, sub, S.ACCEPTED)
        assert sub_of(session, sub).status == S.ACCEPTED

    def test_refunding_the_rest_in_parts_ends_refunded_and_nothing_is_paid_out(
        self, session, market, gateway, admin
    ):
        sub = paid_sub(session, market, gateway)
        advance(session, gateway, market, admin, sub, S.ACCEPTED)
        manage.staff_refund(session, gateway, admin, sub.number, 1000, "压坏", key())
        manage.staff_refund(session, gateway, admin, sub.number, sub.total_fen - 1000, "全部", key())
        sub = sub_of(session, sub)
        assert (sub.status, sub.refunded_fen) == (S.REFUNDED, sub.total_fen)
        assert pay_out(session, admin) == []
        with pytest.raises(ServiceError):  # nothing is left to refund
            manage.staff_refund(session, gateway, admin, sub.number, 1, "more", key())
        assert ledger.trial_balance(session) == 0


class TestAfterSale:
    def test_a_partial_refund_of_a_request_returns_it_to_completed_with_the_amount_beside_it(
        self, session, market, gateway, admin
    ):
        sub = paid_sub(session, market, gateway)
        for target in FULFILMENT:
            advance(session, gateway, market, admin, sub, target)
        manage.request_refund(session, gateway, market.buyer, sub.number, "有一个坏了")
        assert sub_of(session, sub).status == S.REFUND_REQUESTED
        manage.staff_refund(session, gateway, admin, sub.number, 800, "退一个的钱", key())
        sub = sub_of(session, sub)
        assert (sub.status, sub.refunded_fen) == (S.COMPLETED, 800)
        payouts = pay_out(session, admin)
        assert [p.amount_fen for p in payouts] == [expected_net(sub, [800])]
        assert ledger.trial_balance(session) == 0

    def test_a_request_turned_down_returns_to_completed(self, session, market, gateway, admin):
        sub = paid_sub(session, market, gateway)
        for target in FULFILMENT:
            advance(session, gateway, market, admin, sub, target)
        manage.request_refund(session, gateway, market.buyer, sub.number, "不想要了")
        manage.move(session, admin, sub.number, S.COMPLETED)
        assert (sub_of(session, sub).status, sub_of(session, sub).refunded_fen) == (S.COMPLETED, 0)


@pytest.mark.parametrize("seed", range(6))
def test_random_partial_refunds_between_moves_end_paid_out_exactly_the_net(
    session, market, gateway, admin, seed
):
    """Partial refunds of random sizes at random points of the fulfilment (and after it, through
    an after-sale request): the sub-order completes, its seller is paid exactly what the pure
    allocation says remains, and the books balance."""
    rng = random.Random(seed)
    sub = paid_sub(session, market, gateway, {"梅县金柚": rng.randint(1, 3), "冰鲜走地鸡": 1})
    refunds: list[int] = []

    def maybe_refund() -> None:
        left = sub.total_fen - sum(refunds)
        if left > 1 and rng.random() < 0.6:
            amount = rng.randint(1, min(left - 1, 3000))
            manage.staff_refund(session, gateway, admin, sub.number, amount, "部分退款", key())
            refunds.append(amount)

    for target in FULFILMENT:
        status_before = sub_of(session, sub).status
        maybe_refund()
        assert sub_of(session, sub).status == status_before
        advance(session, gateway, market, admin, sub, target)
        assert sub_of(session, sub).status == target
    if rng.random() < 0.5:
        manage.request_refund(session, gateway, market.buyer, sub.number, "售后")
        amount = rng.randint(1, min(sub.total_fen - sum(refunds) - 1, 2000))
        manage.staff_refund(session, gateway, admin, sub.number, amount, "售后部分退款", key())
        refunds.append(amount)
    sub = sub_of(session, sub)
    assert (sub.status, sub.refunded_fen) == (S.COMPLETED, sum(refunds))
    assert ledger.seller_payable(session, sub.seller_id) == expected_net(sub, refunds)
    payouts = pay_out(session, admin)
    assert [(p.seller_id, p.amount_fen) for p in payouts] == [(sub.seller_id, expected_net(sub, refunds))]
    ledger.mark_batch_paid(session, admin, payouts[0].batch_id)
    assert ledger.seller_payable(session, sub.seller_id) == 0
    assert ledger.balance(session, "buyer_payments_clearing") == (
        sub.total_fen - sum(refunds) - expected_net(sub, refunds)
    )
    assert ledger.trial_balance(session) == 0


def test_the_migration_moves_partly_refunded_sub_orders_back_to_their_fulfilment_state(new_database):
    """Rows left in the legacy state by the old table go back to where they were when their
    refund was asked for (from their events), or to completed when they had been completed."""
    import sqlalchemy as sa

    from tests.conftest import backend, migrate

    url = new_database("legacy")
    migrate(url, "0a1b2c3d4e5f")
    postgres = backend() == "postgresql"
    if postgres:
        from marketplace.db import make_engine

        engine = make_engine(url)
    else:
        engine = sa.create_engine(url)  # plain: without the app's foreign-key pragma
    now = clock.now().replace(tzinfo=None)

    def filler(table: str, **given):  # type: ignore[no-untyped-def]
        row = dict(given)
        for col in sa.inspect(engine).get_columns(table):
            name, kind = col["name"], str(col["type"]).upper()
            if name in row or col["nullable"] or col.get("default") is not None or name == "id":
                continue
            if "CHAR" in kind or "TEXT" in kind:
                row[name] = f"{name}-{uuid.uuid4().hex[:8]}"
            elif "DATE" in kind or "TIME" in kind:
                row[name] = now
            elif "JSON" in kind:
                row[name] = "{}"
            else:
                row[name] = 0
        cols = ", ".join(row)
        with engine.begin() as conn:
            if postgres:  # raw rows without their parents: skip the foreign-key triggers
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                sa.text(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row
            )

    storage = {"storage_class": "ambient"}
    filler(
        "sub_orders", id=1, order_id=1, status="partially_refunded", total_fen=1000, items_fen=1000, **storage
    )
    filler(
        "sub_orders",
        id=2,
        status="partially_refunded",
        total_fen=1000,
        items_fen=1000,
        completed_at=now,
        **storage,
    )
    filler(
        "sub_orders", id=3, order_id=3, status="partially_refunded", total_fen=1000, items_fen=1000, **storage
    )
    filler("order_events", sub_order_id=1, from_status="in_transit", to_status="refund_requested")
    filler("order_events", sub_order_id=1, from_status="refund_requested", to_status="partially_refunded")
    filler("order_events", sub_order_id=1, from_status="partially_refunded", to_status="refund_requested")
    filler("order_events", sub_order_id=1, from_status="refund_requested", to_status="partially_refunded")
    migrate(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, status FROM sub_orders ORDER BY id")).all())
        released = conn.execute(sa.text("SELECT SUM(released_fen) FROM sub_orders")).scalar()
    engine.dispose()
    assert rows == {1: "in_transit", 2: "completed", 3: "paid"}
    assert released == 0


def test_a_full_refund_in_flight_before_delivery_cannot_be_turned_down_into_completed(
    session, market, gateway, admin
):
    """A request before delivery is money going back, not an after-sale decision: completing
    it would pay the seller for goods never delivered."""
    from services.orders.states import IllegalTransition
    from services.payments.gateway import GatewayUnavailable
    from services.payments.stripe import StripeGateway

    sub = paid_sub(session, market, gateway)
    advance(session, gateway, market, admin, sub, S.ACCEPTED)
    down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
    with pytest.raises(GatewayUnavailable):
        manage.staff_refund(session, down, admin, sub.number, None, "全部退款", key())
    assert sub_of(session, sub).status == S.REFUND_REQUESTED
    assert S.COMPLETED not in manage.offered_moves(session, admin, sub_of(session, sub))
    with pytest.raises(IllegalTransition):
        manage.move(session, admin, sub.number, S.COMPLETED)
    assert sub_of(session, sub).status == S.REFUND_REQUESTED
