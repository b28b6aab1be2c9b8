"""Properties of the sub-order state table (issue 10, item 1): no sub-order can be frozen.

From every state reachable from PENDING_PAYMENT, a terminal state can be reached; and from every
state that still holds the buyer's money for goods (anything not cancelled or refunded), the
sub-order can still be completed, so its seller can be paid. A partial refund is money, not a
state: no move of the table leads into PARTIALLY_REFUNDED.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import OrderStatus
from services.orders import states

S = OrderStatus


def reachable(start: Iterable[OrderStatus]) -> set[OrderStatus]:
    seen = set(start)
    todo = deque(seen)
    while todo:
        for target in states.TRANSITIONS.get(todo.popleft(), {}):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


LIVE = sorted(reachable([S.PENDING_PAYMENT]) - states.TERMINAL)


def test_from_every_live_state_a_terminal_state_is_reachable():
    for status in LIVE:
        assert reachable([status]) & states.TERMINAL, status


def test_from_every_live_state_but_pending_payment_the_sub_order_can_still_complete():
    # Paid money is either given back in full (REFUNDED) or reaches the seller (COMPLETED).
    for status in LIVE:
        if status != S.PENDING_PAYMENT:
            assert S.COMPLETED in reachable([status]), status


def test_no_move_leads_into_partially_refunded():
    assert S.PARTIALLY_REFUNDED not in reachable([S.PENDING_PAYMENT])


def test_a_refund_request_can_return_to_the_state_it_came_from():
    for status, moves in states.TRANSITIONS.items():
        if S.REFUND_REQUESTED in moves:
            assert states.can_move(S.REFUND_REQUESTED, status, {states.Party.SYSTEM, states.Party.ADMIN}), (
                status
            )


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=1000), max_size=40))
def test_a_random_walk_never_gets_stuck(choices):
    """Any walk through the table, however long, ends in a state from which a terminal state
    and (unless cancelled or refunded) completion are still reachable."""
    status = S.PENDING_PAYMENT
    for choice in choices:
        moves = list(states.TRANSITIONS[status])
        if not moves:
            break
        status = moves[choice % len(moves)]
    assert status in states.TERMINAL or reachable([status]) & states.TERMINAL
    if status not in states.TERMINAL and status != S.PENDING_PAYMENT:
        assert S.COMPLETED in reachable([status])
