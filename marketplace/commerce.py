"""The app's side of checkout and payments: the settings and the gateway the services get."""

from __future__ import annotations

from flask import Flask, current_app

from services.orders.pricing import CheckoutSettings
from services.payments.gateway import PaymentGateway
from services.payments.stripe import StripeGateway


def init_app(app: Flask) -> None:
    # One gateway (one pooled HTTP session) per process, shared by its threads.
    app.extensions["payment_gateway"] = StripeGateway(
        app.config["STRIPE_API_BASE"],
        app.config["STRIPE_SECRET_KEY"],
        timeout=app.config["STRIPE_TIMEOUT_SECONDS"],
        max_retries=app.config["STRIPE_MAX_RETRIES"],
        pool_size=app.config["STRIPE_HTTP_POOL_SIZE"],
    )
    app.extensions["checkout_settings"] = CheckoutSettings.from_mapping(app.config)


def payment_gateway() -> PaymentGateway:
    return current_app.extensions["payment_gateway"]  # type: ignore[no-any-return]


def checkout_settings() -> CheckoutSettings:
    return current_app.extensions["checkout_settings"]  # type: ignore[no-any-return]


def enqueue(task_name: str, *args: object) -> None:
    """Queue a task by name (inline in the embedded default). Pages and the API never import
    marketplace.tasks: the entry points stay independent of each other."""
    current_app.extensions["celery"].tasks[task_name].delay(*args)
