"""Refund re-sends that cannot refund twice (issue 10, item 4).

A refund whose answer was lost, or that never reached the gateway, is sent again by the staff's
repeated request or the reconciliation job, possibly long after the gateway forgot its
Idempotency-Key (Stripe keeps keys about 24 hours; localstripe here forgets them after 24 hours
of its own clock, which the tests move). Before sending again the refund is looked up at the
gateway by its metadata among the PaymentIntent's refunds: found, it is adopted; not found, it is
sent (with a fresh, deterministic key once the old one may be forgotten). The buyer is refunded
exactly once and the ledger posts it once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from domain import LedgerTransaction, OrderStatus, Refund, RefundStatus, clock
from services import ledger
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import GatewayUnavailable
from services.payments.stripe import StripeGateway
from tests.conftest import count
from tests.integration.test_payment_faults import LossyProxy

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
A_DAY_AND_MORE = timedelta(hours=30)


@pytest.fixture()
def gateway_clock(localstripe):  # type: ignore[no-untyped-def]
    """The run's localstripe, whose clock the test may move forward; put back after."""
    yield localstripe
    localstripe.reset_clock()


@pytest.fixture()
def proxy(localstripe):  # type: ignore[no-untyped-def]
    """A proxy in front of the run's localstripe (which honours Idempotency-Key for a day) that
    can let the gateway act and lose its answer."""
    p = LossyProxy(localstripe.url)
    yield p
    p.close()


def paid_sub(session, market, gateway):  # type: ignore[no-untyped-def]
    order = market.pay(market.place({"英德红茶": 1}, SETTINGS), gateway)
    session.expire_all()
    return order, order.sub_orders[0]


def refund_postings(session) -> int:  # type: ignore[no-untyped-def]
    return count(session, LedgerTransaction, LedgerTransaction.kind == "refund")


def assert_refunded_once(session, localstripe, order, sub, refund) -> None:  # type: ignore[no-untyped-def]
    """One refund at the gateway, ours, adopted; the sub-order refunded; the ledger posted once."""
    made = localstripe.refunds(order.payment.intent_id)
    assert len(made) == 1
    assert made[0]["metadata"]["refund_key"] == refund.idempotency_key
    session.expire_all()
    assert (refund.status, refund.gateway_refund_id) == (RefundStatus.SUCCEEDED, made[0]["id"])
    assert (sub.status, sub.refunded_fen) == (OrderStatus.REFUNDED, sub.total_fen)
    assert refund_postings(session) == 1
    assert ledger.balance(session, "buyer_payments_clearing") == 0
    assert ledger.trial_balance(session) == 0


class TestLostAnswer:
    def _lost(self, session, market, gateway, proxy, localstripe, admin):  # type: ignore[no-untyped-def]
        """A full refund the gateway made, whose answer never came back."""
        order, sub = paid_sub(session, market, gateway)
        lossy = StripeGateway(proxy.url, localstripe.secret_key, max_retries=0)
        proxy.drops.append(("POST", "/v1/refunds"))
        with pytest.raises(GatewayUnavailable):
            payments.refund_sub_order(
                session,
                lossy,
                admin,
                sub.id,
                None,
                reason="茶叶受潮",
                idempotency_key=f"refund-{order.number}",
            )
        session.expire_all()
        refund = session.scalars(select(Refund)).one()
        assert (refund.status, refund.gateway_refund_id) == (RefundStatus.PENDING, None)
        assert len(localstripe.refunds(order.payment.intent_id)) == 1  # the gateway did refund
        assert refund_postings(session) == 0
        return order, sub, refund

    def test_30_hours_later_reconciliation_adopts_it_and_sends_nothing(
        self, session, market, gateway, proxy, gateway_clock, admin
    ):
        order, sub, refund = self._lost(session, market, gateway, proxy, gateway_clock, admin)
        gateway_clock.advance_clock(A_DAY_AND_MORE.total_seconds())  # the key is forgotten
        report = payments.reconcile(session, gateway, now=clock.now() + A_DAY_AND_MORE)
        assert (report.refunds_adopted, report.refunds_sent, report.failed) == (1, 0, 0)
        assert_refunded_once(session, gateway_clock, order, sub, refund)
        assert refund.key_generation == 0  # nothing was sent, no new key taken
        # Settled: the next runs leave it alone.
        report = payments.reconcile(session, gateway, now=clock.now() + A_DAY_AND_MORE + timedelta(hours=1))
        assert (report.refunds_adopted, report.refunds_sent) == (0, 0)
        assert len(gateway_clock.refunds(order.payment.intent_id)) == 1

    def test_the_staffs_request_again_a_day_later_adopts_it(
        self, session, market, gateway, proxy, gateway_clock, admin
    ):
        order, sub, refund = self._lost(session, market, gateway, proxy, gateway_clock, admin)
        gateway_clock.advance_clock(A_DAY_AND_MORE.total_seconds())
        again = payments.refund_sub_order(
            session,
            gateway,
            admin,
            sub.id,
            None,
            reason="茶叶受潮",
            idempotency_key=f"refund-{order.number}",
            now=clock.now() + A_DAY_AND_MORE,
        )
        assert again.id == refund.id
        assert_refunded_once(session, gateway_clock, order, sub, refund)
        assert count(session, Refund) == 1


class TestNeverReachedTheGateway:
    def _stuck(self, session, market, gateway, admin, amount=None):  # type: ignore[no-untyped-def]
        order, sub = paid_sub(session, market, gateway)
        down = StripeGateway("http://127.0.0.1:9", "sk_test_x", max_retries=0)
        with pytest.raises(GatewayUnavailable):
            payments.refund_sub_order(
                session,
                down,
                admin,
                sub.id,
                amount,
                reason="少了半斤",
                idempotency_key=f"refund-{order.number}",
            )
        session.expire_all()
        return order, sub, session.scalars(select(Refund)).one()

    def test_30_hours_later_it_is_sent_once_with_a_fresh_key(
        self, session, market, gateway, gateway_clock, admin
    ):
        order, sub, refund = self._stuck(session, market, gateway, admin)
        gateway_clock.advance_clock(A_DAY_AND_MORE.total_seconds())
        later = clock.now() + A_DAY_AND_MORE
        report = payments.reconcile(session, gateway, now=later)
        assert (report.refunds_adopted, report.refunds_sent, report.failed) == (0, 1, 0)
        assert_refunded_once(session, gateway_clock, order, sub, refund)
        # The old key may be forgotten by now: the refund went with the next one of its name,
        # and the metadata still names the refund.
        assert (refund.key_generation, refund.key_used_at) == (1, later)
        assert payments.reconcile(session, gateway, now=later + timedelta(hours=1)).refunds_sent == 0

    def test_within_a_day_it_is_sent_with_its_own_key(self, session, market, gateway, gateway_clock, admin):
        order, sub, refund = self._stuck(session, market, gateway, admin, amount=1000)
        report = payments.reconcile(session, gateway, now=clock.now() + timedelta(minutes=10))
        assert (report.refunds_adopted, report.refunds_sent) == (0, 1)
        session.expire_all()
        assert (refund.status, refund.key_generation) == (RefundStatus.SUCCEEDED, 0)
        # A partial refund is money, not a state: the paid sub-order stays paid.
        assert (sub.status, sub.refunded_fen) == (OrderStatus.PAID, 1000)
        assert len(gateway_clock.refunds(order.payment.intent_id)) == 1
        assert refund_postings(session) == 1

    def test_two_senders_after_the_key_expired_agree_on_one_key(self, session, market, gateway, admin):
        _order, _sub, refund = self._stuck(session, market, gateway, admin)
        later = clock.now() + A_DAY_AND_MORE
        first = payments._send_key(session, refund, later)
        # A second sender that read the refund before the first took the new key: its
        # compare-and-set finds the generation moved on and it sends with the same key.
        set_committed_value(refund, "key_generation", 0)
        set_committed_value(refund, "key_used_at", None)
        second = payments._send_key(session, refund, later)
        assert first == second == f"{refund.idempotency_key}.1"
        session.expire_all()
        assert refund.key_generation == 1
        # A day after that key's first use, the next.
        assert payments._send_key(session, refund, later + A_DAY_AND_MORE) == f"{refund.idempotency_key}.2"


class TestTheGatewayForgetsKeys:
    """What the lookup guards against, at the local gateway: a key is replayed for a day, then a
    resend with it is a new refund."""

    def test_a_key_is_replayed_within_a_day_and_forgotten_after(
        self, session, market, gateway, gateway_clock
    ):
        order, _sub = paid_sub(session, market, gateway)
        intent = order.payment.intent_id
        send = dict(payment_intent=intent, amount=100, idempotency_key=f"k-{order.number}", metadata={})
        first = gateway.create_refund(**send)
        gateway_clock.advance_clock(timedelta(hours=23).total_seconds())
        assert gateway.create_refund(**send).id == first.id
        gateway_clock.advance_clock(timedelta(hours=2).total_seconds())
        assert gateway.create_refund(**send).id != first.id
        assert len(gateway_clock.refunds(intent)) == 2

    def test_a_refund_is_found_by_its_metadata_among_the_intents_refunds(self, session, market, gateway):
        order, _sub = paid_sub(session, market, gateway)
        intent = order.payment.intent_id
        for n in (1, 2):
            gateway.create_refund(
                payment_intent=intent,
                amount=100 * n,
                idempotency_key=f"find-{order.number}-{n}",
                metadata={"refund_key": f"find-{order.number}-{n}"},
            )
        found = gateway.find_refund(
            payment_intent=intent, metadata_key="refund_key", metadata_value=f"find-{order.number}-2"
        )
        assert found is not None and (found.amount, found.payment_intent) == (200, intent)
        missing = gateway.find_refund(
            payment_intent=intent, metadata_key="refund_key", metadata_value=f"find-{order.number}-3"
        )
        assert missing is None
