"""services/rows.py: new rows written with one INSERT a table and kept in the session as loaded.

The checkout writes its order that way (services/orders/checkout.py): what it hands back must be
exactly what the unit of work would have left, persistent, clean, its relationships readable
without SQL, and the same rows in the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy import insert as sqlalchemy_insert
from sqlalchemy.orm import Session

from domain import Order, Payment, PaymentAttempt, PaymentMethod, Product, SubOrder, clock
from services import rows
from services.orders.pricing import CheckoutSettings

SETTINGS = CheckoutSettings()


@contextmanager
def _statements(session: Session) -> Iterator[list[str]]:
    """The SQL the session's engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_placed_order_is_in_the_session_as_loaded(session, market) -> None:  # type: ignore[no-untyped-def]
    order = market.place({"梅县金柚": 2, "冰鲜走地鸡": 1, "英德红茶": 3}, SETTINGS)
    graph = [order, *order.sub_orders, *(line for sub in order.sub_orders for line in sub.lines)]
    graph += [order.payment, *order.payment.attempts]
    for obj in graph:
        state = inspect(obj)
        assert state.persistent and not state.modified, obj
        assert state.session is session
    assert not session.new and not session.dirty
    with _statements(session) as seen:
        # What the answer to the buyer reads: no statement, nothing expired or lazy.
        shown = [
            (
                sub.number,
                sub.order.number,
                sub.total_fen,
                [(line.id, line.quantity, line.paid_fen) for line in sub.lines],
            )
            for sub in order.sub_orders
        ]
        attempt = order.payment.attempts[0]
        assert (attempt.payment is order.payment, attempt.number, attempt.error) == (True, 1, "")
        assert order.payment.last_error == "" and order.payment.intent_id is None  # the defaults
        session.flush()  # nothing to write
    assert seen == []
    assert len(shown) == 2 and all(lines for *_, lines in shown)


def test_the_rows_are_the_objects(session, market) -> None:  # type: ignore[no-untyped-def]
    order = market.place({"梅县金柚": 2, "英德红茶": 1}, SETTINGS)
    written = {
        "order": (order.id, order.number, order.total_fen),
        "subs": {
            sub.id: {(line.id, line.product_id, line.quantity) for line in sub.lines}
            for sub in order.sub_orders
        },
        "payment": (order.payment.id, order.payment.status, order.payment.currency),
        "attempts": [a.id for a in order.payment.attempts],
    }
    session.expunge_all()  # read back from the database, not the identity map
    again = session.get(Order, order.id)
    assert again is not None and (again.id, again.number, again.total_fen) == written["order"]
    assert {
        sub.id: {(line.id, line.product_id, line.quantity) for line in sub.lines} for sub in again.sub_orders
    } == written["subs"]
    assert all(sub.order_id == again.id for sub in again.sub_orders)
    assert (again.payment.id, again.payment.status, again.payment.currency) == written["payment"]
    assert [a.id for a in again.payment.attempts] == written["attempts"]


def test_a_default_is_applied_to_the_object_and_the_row(session, market) -> None:  # type: ignore[no-untyped-def]
    order = market.place({"梅县金柚": 1}, SETTINGS)
    payment = order.payment
    attempt = PaymentAttempt(
        payment_id=payment.id, number=2, method=PaymentMethod.CARD, request_key="rows-test-0002"
    )
    before = clock.now()
    rows.insert_new(session, [attempt])
    rows.attach(session, [attempt])
    assert attempt.id is not None and inspect(attempt).persistent and not session.new
    assert attempt.error == "" and attempt.ended_at is None
    assert before - timedelta(seconds=1) <= attempt.created_at <= clock.now() + timedelta(seconds=1)
    row = session.execute(
        select(PaymentAttempt.error, PaymentAttempt.status, PaymentAttempt.payment_id).where(
            PaymentAttempt.id == attempt.id
        )
    ).one()
    assert tuple(row) == ("", attempt.status, payment.id)


def test_one_class_at_a_time(session) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        rows.insert_new(session, [Payment(), SubOrder()])
    assert not session.new


def test_statements_run_in_turn_as_one_by_one(session, market) -> None:  # type: ignore[no-untyped-def]
    """rows.run_in_turn (on PostgreSQL one round trip, psycopg's pipeline): each statement sees
    the one before, each answer is its own, and what the engine would add is there (updated_at's
    onupdate, an enum parameter's value)."""
    from services.orders import reservations

    a, b = market.product("梅县金柚"), market.product("英德红茶")
    stock = {a.id: a.stock, b.id: b.stock}
    moment = clock.now() + timedelta(minutes=7)
    wanted = {a.id: 2, b.id: stock[b.id] + 1}  # b has too little
    with clock.frozen(moment):
        statements = reservations.take_statements(wanted)
        statements += reservations.take_statements({a.id: 3})  # after the first: sees its 2 taken
        answers = rows.run_in_turn(session, statements)
    assert len(answers) == 3
    assert answers[0] and answers[0][0][0] == "active"
    assert answers[1] == []  # not enough of b: nothing taken
    assert answers[2] and answers[2][0][0] == "active"
    got = session.execute(
        select(Product.stock, Product.updated_at).where(Product.id.in_([a.id, b.id])).order_by(Product.id)
    ).all()
    left = {a.id: stock[a.id] - 5, b.id: stock[b.id]}
    assert [row.stock for row in got] == [left[pid] for pid in sorted(left)]
    updated = dict(zip(sorted(left), (row.updated_at for row in got), strict=True))
    assert updated[a.id] == moment


def test_a_list_of_parameter_sets_runs_as_many_rows(session, market) -> None:  # type: ignore[no-untyped-def]
    """rows.run_in_turn with a list of sets (executemany) beside a statement with rows: every
    set is a row, with the columns the sets name and the table's Python-side defaults; an empty
    list is no row."""
    from domain import OrderEvent, OrderStatus
    from services.orders import reservations

    order = market.place({"梅县金柚": 1}, SETTINGS)
    sub = order.sub_orders[0]
    product = market.product("英德红茶")
    events = [
        {
            "sub_order_id": sub.id,
            "from_status": None,
            "to_status": OrderStatus.PENDING_PAYMENT,
            "actor_id": None,
        },
        {"sub_order_id": sub.id, "from_status": None, "to_status": OrderStatus.CANCELLED, "actor_id": None},
    ]
    moment = clock.now() + timedelta(minutes=3)
    with clock.frozen(moment):
        answers = rows.run_in_turn(
            session,
            [
                (sqlalchemy_insert(rows.table(OrderEvent)), events),
                (sqlalchemy_insert(rows.table(OrderEvent)), []),  # no row at all
                *reservations.take_statements({product.id: 1}),
            ],
        )
    assert answers[0] == answers[1] == [] and answers[2]
    written = session.execute(
        select(OrderEvent.to_status, OrderEvent.created_at, OrderEvent.note)
        .where(OrderEvent.sub_order_id == sub.id, OrderEvent.created_at == moment)
        .order_by(OrderEvent.id)
    ).all()
    assert [(r.to_status, r.created_at) for r in written] == [
        (OrderStatus.PENDING_PAYMENT, moment),
        (OrderStatus.CANCELLED, moment),
    ]


def test_run_in_turn_then_commit(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """rows.run_in_turn(commit=True) in a session of its own (the app's: not a savepoint of an
    outer transaction), on PostgreSQL the statements and the COMMIT in one round trip: what they
    wrote is committed, seen from another connection, and the session goes on as after a commit.
    A statement that fails leaves nothing of the ones before it and no transaction half done."""
    from sqlalchemy import delete, update

    from domain import User
    from tests.conftest import next_phone

    users = rows.table(User)
    phone, other = next_phone(), next_phone()
    add = sqlalchemy_insert(users)
    rename = update(users).where(users.c.phone == phone).values(display_name="陈小姐")
    # On PostgreSQL the driver's own commit, when the session commits, finds the COMMIT sent.
    at_commit: list[object] = []
    if engine.dialect.driver == "psycopg":
        import psycopg

        own_commit = psycopg.Connection.commit

        def commit(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
            at_commit.append(conn.info.transaction_status)
            own_commit(conn)

        monkeypatch.setattr(psycopg.Connection, "commit", commit)
    try:
        with Session(engine) as app_session:
            answers = rows.run_in_turn(
                app_session,
                [(add, {"phone": phone, "password_hash": "!", "display_name": "x"}), (rename, {})],
                commit=True,
            )
            assert len(answers) == 2 and answers[1] == []  # (an UPDATE without RETURNING)
            assert not app_session.in_transaction()
            if engine.dialect.driver == "psycopg":
                assert at_commit == [psycopg.pq.TransactionStatus.IDLE]
            with engine.connect() as elsewhere:
                seen = elsewhere.execute(select(users.c.display_name).where(users.c.phone == phone)).all()
            assert seen == [("陈小姐",)]
            # The same phone again fails (unique); the new row before it is not kept.
            with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
                rows.run_in_turn(
                    app_session,
                    [
                        (add, {"phone": other, "password_hash": "!", "display_name": "y"}),
                        (add, {"phone": phone, "password_hash": "!", "display_name": "z"}),
                    ],
                    commit=True,
                )
            app_session.rollback()
            assert app_session.scalar(select(users.c.id).where(users.c.phone == other)) is None
            assert app_session.scalar(select(users.c.display_name).where(users.c.phone == phone)) == "陈小姐"
    finally:
        with engine.begin() as cleanup:
            cleanup.execute(delete(users).where(users.c.phone.in_([phone, other])))
