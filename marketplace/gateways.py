"""The outside world, wired in one place: every gateway the services talk through is built here,
once per app, from settings, and handed out by an accessor.

    edge            Protocol (services)                      setting          built by
    payments        services.payments.gateway.PaymentGateway  STRIPE_*        build_payment_gateway
    SMS             services.sms.SmsGateway                   SMS_GATEWAY     build_sms_gateway
    photo storage   services.media.Storage                    MEDIA_STORAGE   build_media_storage
    notifications   services.notify.NotificationChannel       NOTIFICATION_CHANNEL
                                                                              build_notification_channel
    distances       services.logistics.distance.DistanceMatrix DISTANCE_MATRIX build_distance_matrix

`create_app` calls `init_app(app)` once; it stores each gateway in `app.extensions` under its
name. Views, the API, tasks and commands call the accessors (`payment_gateway()`,
`sms_gateway()`, `media_storage()`) and pass the result to a service: services receive gateways
as arguments and never build one. Tests swap one with
`monkeypatch.setitem(app.extensions, "<name>", fake)`.

A gateway is shared by every thread of a worker, so it holds no request state. One that writes
through the request's database session (the SMS outbox) is given a function returning that
session (`marketplace.db.get_session`), not a session.

Adding an edge (the temperature loggers, a road-network distance provider):
1. services: a `Protocol` saying what the services need (e.g. a `DistanceMatrix` in
   services/logistics/), the real implementation(s) beside it; fakes only in tests.
2. marketplace/config.py: the setting that names the implementation, and its credentials, with
   a working local default; document them in docs/deploy.md.
3. here: a `build_<edge>(config)` that picks the implementation the setting names and raises
   ValueError for an unknown name; one line in `init_app` storing it under its extensions key;
   an accessor `<edge>()` returning it, typed as the Protocol. Add a row to the table above.
4. callers: `from marketplace.gateways import <edge>`, and pass `<edge>()` to the service.

The module also holds the two other things the use cases take from the app rather than from the
request: the checkout settings (built once from the config) and `enqueue`, the way into the task
queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from marketplace.db import get_session
from services.campaigns import gate as campaign_gate
from services.logistics.distance import DistanceMatrix
from services.logistics.distance import build_distance_matrix as _distance_matrix_from
from services.media import LocalStorage, Storage
from services.notify import NotificationChannel, SmsGatewayChannel, SmsOutboxChannel
from services.orders.pickup import PickupCodeKeys
from services.orders.pricing import CheckoutSettings
from services.payments.gateway import PaymentGateway
from services.payments.stripe import StripeGateway
from services.sms import OutboxSmsGateway, SmsGateway

PAYMENT_GATEWAY = "payment_gateway"
SMS_GATEWAY = "sms_gateway"
MEDIA_STORAGE = "media_storage"
CHECKOUT_SETTINGS = "checkout_settings"
NOTIFICATION_CHANNEL = "notification_channel"
PICKUP_CODE_KEYS = "pickup_code_keys"
DISTANCE_MATRIX = "distance_matrix"


def init_app(app: Flask) -> None:
    """Build every gateway (and the checkout settings) once, from the app's config."""
    app.extensions[PAYMENT_GATEWAY] = build_payment_gateway(app.config)
    app.extensions[SMS_GATEWAY] = build_sms_gateway(app.config)
    app.extensions[MEDIA_STORAGE] = build_media_storage(app.config)
    app.extensions[CHECKOUT_SETTINGS] = CheckoutSettings.from_mapping(app.config)
    app.extensions[NOTIFICATION_CHANNEL] = build_notification_channel(app.config, app.extensions[SMS_GATEWAY])
    app.extensions[PICKUP_CODE_KEYS] = PickupCodeKeys.from_settings(app.config)
    app.extensions[DISTANCE_MATRIX] = build_distance_matrix(app.config)
    campaign_gate.install(build_flash_gate(app.config))


REDIS_POOL_SIZE = 32  # Redis connections a process's flash-sale gate keeps


def build_flash_gate(config: Mapping[str, Any]) -> campaign_gate.Gate | None:
    """The flash-sale gate in Redis (services/campaigns/gate.py) when REDIS_URL is set, its keys
    named after the database so two databases on one Redis never share a counter; else None
    (the database alone decides)."""
    url = config.get("REDIS_URL") or ""
    if not url:
        return None
    import hashlib

    import redis

    database = hashlib.sha256(str(config.get("DATABASE_URL") or "").encode())
    # A bounded pool that waits for a free connection: a flash sale's crowd reaches a gevent
    # worker as hundreds of requests at once, and an unbounded pool opened a connection for each.
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=REDIS_POOL_SIZE, timeout=10)
    return campaign_gate.RedisGate(
        redis.Redis(connection_pool=pool), prefix=f"gdm:flash:{database.hexdigest()[:10]}:"
    )


# --- builders: the implementation each setting names -----------------------------------------


def build_payment_gateway(config: Mapping[str, Any]) -> PaymentGateway:
    """Stripe's HTTP API at STRIPE_API_BASE (api.stripe.com, or localstripe locally)."""
    # One gateway (one pooled HTTP session) per process, shared by its threads.
    return StripeGateway(
        config["STRIPE_API_BASE"],
        config["STRIPE_SECRET_KEY"],
        timeout=config["STRIPE_TIMEOUT_SECONDS"],
        max_retries=config["STRIPE_MAX_RETRIES"],
        pool_size=config["STRIPE_HTTP_POOL_SIZE"],
        webhook_secret=config["STRIPE_WEBHOOK_SECRET"],
    )


def build_sms_gateway(config: Mapping[str, Any]) -> SmsGateway:
    """The SMS gateway SMS_GATEWAY names; "outbox" writes to the request's session."""
    name = config.get("SMS_GATEWAY", "outbox")
    if name == "outbox":
        return OutboxSmsGateway(get_session)
    raise ValueError(f"unknown SMS_GATEWAY {name!r}; only 'outbox' ships with the code")


def build_media_storage(config: Mapping[str, Any]) -> Storage:
    """The photo storage MEDIA_STORAGE names; "local" keeps files under MEDIA_ROOT."""
    kind = config.get("MEDIA_STORAGE", "local")
    if kind == "local":
        return LocalStorage(config["MEDIA_ROOT"])
    raise ValueError(f"unknown MEDIA_STORAGE {kind!r}; only 'local' ships with the code")


def build_notification_channel(config: Mapping[str, Any], sms: SmsGateway) -> NotificationChannel:
    """The channel buyers' order messages go through, as NOTIFICATION_CHANNEL names it:
    "outbox" (the SMS outbox table, written in the sending job's transaction; shown on /dev/sms)
    or "sms" (through the app's SMS gateway, i.e. an SMS provider)."""
    name = config.get("NOTIFICATION_CHANNEL", "outbox")
    if name == "outbox":
        return SmsOutboxChannel()
    if name == "sms":
        return SmsGatewayChannel(sms)
    raise ValueError(f"unknown NOTIFICATION_CHANNEL {name!r}; 'outbox' or 'sms'")


def build_distance_matrix(config: Mapping[str, Any]) -> DistanceMatrix:
    """The distances vehicle routes are planned on, as DISTANCE_MATRIX names them: "haversine"
    (great-circle × ROAD_FACTOR at ROAD_SPEED_KMH). A road-network provider (a map vendor's
    distance-matrix API, an OSRM server) is a class implementing the Protocol, named here."""
    return _distance_matrix_from(config)


# --- accessors: the current app's gateways ----------------------------------------------------


def payment_gateway() -> PaymentGateway:
    """The app's payment gateway."""
    return current_app.extensions[PAYMENT_GATEWAY]  # type: ignore[no-any-return]


def sms_gateway() -> SmsGateway:
    """The app's SMS gateway."""
    return current_app.extensions[SMS_GATEWAY]  # type: ignore[no-any-return]


def media_storage() -> Storage:
    """The app's photo storage."""
    return current_app.extensions[MEDIA_STORAGE]  # type: ignore[no-any-return]


def notification_channel() -> NotificationChannel:
    """The channel buyers' order messages go through (services/notify.py)."""
    return current_app.extensions[NOTIFICATION_CHANNEL]  # type: ignore[no-any-return]


def pickup_code_keys() -> PickupCodeKeys:
    """The secret pickup codes are derived from and their attempt limit (PICKUP_CODE_SECRET,
    by default SECRET_KEY; SMS_CODE_MAX_ATTEMPTS)."""
    return current_app.extensions[PICKUP_CODE_KEYS]  # type: ignore[no-any-return]


def distance_matrix() -> DistanceMatrix:
    """Metres and driving seconds between points (services/logistics/distance.py)."""
    return current_app.extensions[DISTANCE_MATRIX]  # type: ignore[no-any-return]


def route_time_limit() -> float:
    """How long the day's route planning may search (ROUTE_TIME_LIMIT_SECONDS)."""
    return float(current_app.config.get("ROUTE_TIME_LIMIT_SECONDS", 3.0))


def checkout_settings() -> CheckoutSettings:
    """Shipping fees, commission, payment windows, currency, the checkout total cap and the caps
    on stock held unpaid (services.orders.pricing.CheckoutSettings), read once from the config."""
    return current_app.extensions[CHECKOUT_SETTINGS]  # type: ignore[no-any-return]


def enqueue(task_name: str, *args: object) -> None:
    """Queue a task by name (inline in the embedded default). Pages and the API never import
    marketplace.tasks: the entry points stay independent of each other.

    Whether to queue is this app's setting, not the Celery object's (one per process, bound to
    whichever app was built last): without a broker the task runs here and now, in this app."""
    task = current_app.extensions["celery"].tasks[task_name]
    if not current_app.config.get("CELERY_BROKER_URL"):
        task.apply(args=args, throw=True)
        return
    task.delay(*args)
