"""What the periodic jobs cost on a month of orders (issue 10): `make bench B=jobs`.

The jobs of services/jobs.py run beside the web server (the embedded scheduler of `make run`, or
Celery beat), so what matters is how long one run holds the database. On PostgreSQL, a database
is built with sellers, products and buyers (bench/checkout.py's builder), then ORDERS orders of
two sellers each are placed, paid and moved through the services (checkout, payments' apply,
the state machine, which records each message the move tells the buyer), ending out for delivery
ten days ago. Then, timed:

- send-notifications sends the messages the moves recorded (SMS outbox channel): messages/s;
- complete-delivered completes the delivered sub-orders: sub-orders/s, against the baseline of
  writing one plain event row per sub-order in the same batches (what any per-row job costs);
- a payout batch over them;
- check-ledger (services/ledger_checks.py) over the whole ledger, against the baseline of the
  trial balance alone (one aggregate over the entries): how much more the full checks cost,
  and per thousand sub-orders;
- an idle scheduler tick: run_due when no job is due (the minute-by-minute cost of the
  scheduler itself), against a bare SELECT 1 round trip.

Each figure prints as `name: value`. Absolute times depend on the machine; the ratios do less.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
for path in (PROJECT_ROOT, PROJECT_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from checkout import PG_ADMIN_URL, _admin, build_database  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from domain import (  # noqa: E402
    OrderEvent,
    OrderStatus,
    Payment,
    PaymentStatus,
    Role,
    RoleGrant,
    SubOrder,
    User,
    clock,
)
from marketplace.db import make_engine  # noqa: E402
from services import jobs, ledger, ledger_checks, notify  # noqa: E402
from services.authz import Party  # noqa: E402
from services.orders import states  # noqa: E402
from services.orders.addresses import AddressInput  # noqa: E402
from services.orders.checkout import CheckoutInput, place_order  # noqa: E402
from services.orders.pickup import PickupCodeKeys  # noqa: E402
from services.orders.pricing import CheckoutSettings  # noqa: E402
from services.payments import service as payments  # noqa: E402
from services.payments.gateway import Intent  # noqa: E402

PG_DATABASE = "gdm_bench_jobs"
ORDERS = int(os.environ.get("BENCH_JOBS_ORDERS", "1000"))
ROUNDS = 3
NEEDS_GATEWAY = ("reconcile-payments", "retry-webhook-events")
# Open caps: one buyer places many orders here (the caps are checkout's business, not the jobs').
SETTINGS = CheckoutSettings(
    max_unpaid_orders=0,
    max_unpaid_units=0,
    max_unpaid_units_per_product=0,
    order_rate_limit=0,
    proxy_order_rate_limit=0,
    max_proxy_unpaid_orders=0,
    max_proxy_unpaid_units=0,
)
FORWARD = (
    (OrderStatus.ACCEPTED, Party.SELLER),
    (OrderStatus.HANDED_IN, Party.STAFF),
    (OrderStatus.IN_TRANSIT, Party.STAFF),
    (OrderStatus.OUT_FOR_DELIVERY, Party.STAFF),
)


def _paid(session: Session, payment: Payment) -> None:
    """The gateway's word that the order is paid, as a webhook brings it (no HTTP here)."""
    intent = Intent(
        id=f"pi_bench{payment.id:08d}",
        status="succeeded",
        amount=payment.amount_fen,
        amount_received=payment.amount_fen,
        amount_capturable=0,
        currency="cny",
        capture_method="automatic",
        client_secret=None,
        customer=None,
        metadata={payments.PAYMENT_KEY: payment.idempotency_key},
        payment_method_types=("card",),
        next_action=None,
        last_error=None,
        raw={},
    )
    payments.apply_intent(session, None, intent)  # type: ignore[arg-type]  # no refund is due


def build_orders(url: str, built: dict[str, Any]) -> int:
    """ORDERS orders of two sellers' goods, paid and out for delivery ten days ago; sub-orders."""
    engine = make_engine(url)
    products = built["product_ids"]
    start = clock.now() - timedelta(days=10)
    with Session(engine) as session, clock.frozen(start):
        buyers = list(session.scalars(select(User).where(User.phone.like("139%")).order_by(User.id)))
        for n in range(ORDERS):
            buyer = buyers[n % len(buyers)]
            # products[i] belongs to seller i % 16: these two are two sellers' goods.
            items = {products[(2 * n) % len(products)]: 1, products[(2 * n + 1) % len(products)]: 2}
            placed = place_order(
                session,
                buyer,
                CheckoutInput(
                    items=items,
                    idempotency_key=f"bench-jobs-{n}",
                    address=AddressInput("李华", "13900000000", built["division"], "村口第三户"),
                ),
                SETTINGS,
            )
            _paid(session, payments.payment_of(session, placed.order))
            for sub in placed.order.sub_orders:
                for status, party in FORWARD:
                    states.apply(session, sub, status, party=party)
            session.commit()
        count = session.scalar(select(SubOrder.id).order_by(SubOrder.id.desc()).limit(1)) or 0
        paid = session.scalar(select(Payment.id).where(Payment.status != PaymentStatus.SUCCEEDED).limit(1))
        if paid is not None:
            raise RuntimeError("a bench order is not paid")
        session.execute(text("ANALYZE"))
        session.commit()
    engine.dispose()
    return int(count)


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()  # elapsed time: not the product's clock
    result = fn()
    return time.perf_counter() - started, result


def main() -> int:
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    try:
        built = build_database(url)
        build_s, sub_orders = _timed(lambda: build_orders(url, built))
        engine = make_engine(url)
        keys = PickupCodeKeys(secret="bench-secret")
        with Session(engine) as session:
            entries = session.scalar(text("SELECT count(*) FROM ledger_entries"))
            print(f"orders: {ORDERS}")
            print(f"sub_orders: {sub_orders}")
            print(f"ledger_entries: {entries}")
            print(f"build_orders_per_s: {ORDERS / build_s:.1f}")

            send_s, sent = _timed(
                lambda: sum_sent(session, keys)  # every pending message, batch after batch
            )
            print(f"notifications_sent: {sent}")
            print(f"send_notifications_per_s: {sent / send_s:.0f}")

            # Baseline: one plain event row per sub-order, committed in complete-delivered's batches.
            sub_ids = list(session.scalars(select(SubOrder.id).order_by(SubOrder.id)))
            now = clock.now()

            def baseline() -> None:
                for i in range(0, len(sub_ids), jobs.AUTO_COMPLETE_BATCH):
                    session.execute(
                        insert(OrderEvent),
                        [
                            {
                                "sub_order_id": sid,
                                "from_status": OrderStatus.OUT_FOR_DELIVERY,
                                "to_status": OrderStatus.OUT_FOR_DELIVERY,
                                "note": "bench baseline",
                                "created_at": now,
                            }
                            for sid in sub_ids[i : i + jobs.AUTO_COMPLETE_BATCH]
                        ],
                    )
                    session.commit()

            base_s, _ = _timed(baseline)
            complete_s, completed = _timed(lambda: jobs.complete_delivered(session, days=7, now=now))
            if completed != sub_orders:
                raise RuntimeError(f"complete-delivered completed {completed} of {sub_orders}")
            print(f"complete_delivered_per_s: {completed / complete_s:.0f}")
            print(f"event_rows_baseline_per_s: {len(sub_ids) / base_s:.0f}")
            print(f"complete_delivered_vs_event_rows_ratio: {base_s / complete_s:.3f}")

            admin = session.scalar(select(User).where(User.phone.like("139%")).limit(1))
            assert admin is not None
            session.add(RoleGrant(user_id=admin.id, role=Role.ADMIN))
            session.commit()
            session.refresh(admin)
            batch_s, batch = _timed(
                lambda: ledger.create_payout_batch(session, admin, now=now + timedelta(days=8))
            )
            if batch is None or sum(p.sub_order_count for p in batch.payouts) != sub_orders:
                raise RuntimeError("the payout batch does not hold every completed sub-order")
            print(f"payout_batch_ms: {batch_s * 1000:.0f}")
            ledger.mark_batch_paid(session, admin, batch.id)

            checks, trials = [], []
            for _round in range(ROUNDS):
                seconds, breaches = _timed(lambda: ledger_checks.find_breaches(session))
                if breaches:
                    raise RuntimeError(f"the ledger checks found breaches: {breaches[:3]}")
                checks.append(seconds)
                trials.append(_timed(lambda: ledger.trial_balance(session))[0])
                session.rollback()
            check_ms, trial_ms = median(checks) * 1000, median(trials) * 1000
            print(f"check_ledger_ms: {check_ms:.0f}")
            print(f"check_ledger_per_1k_sub_orders_ms: {check_ms * 1000 / sub_orders:.0f}")
            print(f"trial_balance_ms: {trial_ms:.1f}")
            print(f"trial_balance_vs_check_ledger_ratio: {trial_ms / check_ms:.3f}")

        # The scheduler's minute: every job ran just now, so none is due.
        def sessions() -> Session:
            return Session(engine)

        ctx = jobs.JobContext(
            settings={"SECRET_KEY": "bench-secret"}, notification_channel=notify.SmsOutboxChannel
        )
        # The two jobs that talk to the payment gateway are left out: the bench has no gateway.
        registry = {n: s for n, s in jobs.REGISTRY.items() if n not in NEEDS_GATEWAY}
        jobs.run_due(sessions, context=ctx, registry=registry)
        ticks, pings = [], []
        with Session(engine) as session:
            for _round in range(20):
                seconds, ran = _timed(lambda: jobs.run_due(sessions, context=ctx, registry=registry))
                if ran:
                    raise RuntimeError(f"jobs ran on an idle tick: {[o.name for o in ran]}")
                ticks.append(seconds)
                pings.append(_timed(lambda: session.execute(text("SELECT 1")).scalar())[0])
        tick_ms, ping_ms = median(ticks) * 1000, median(pings) * 1000
        print(f"scheduled_jobs: {len(jobs.REGISTRY)}")
        print(f"idle_tick_ms: {tick_ms:.1f}")
        print(f"select_1_ms: {ping_ms:.2f}")
        print(f"select_1_vs_idle_tick_ratio: {ping_ms / tick_ms:.3f}")
        engine.dispose()
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    return 0


def sum_sent(session: Session, keys: PickupCodeKeys) -> int:
    channel = notify.SmsOutboxChannel()
    sent = 0
    while True:
        report = notify.send_pending(session, channel, keys)
        if not report.sent:
            return sent
        sent += report.sent


if __name__ == "__main__":
    sys.exit(main())
