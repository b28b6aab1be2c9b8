"""The payment gateway's webhook: the gateway verifies the signature and reads the event; the
event is kept once and the work queued.

Answers fast (the gateway retries slow or failed deliveries); the processing runs on the task
queue (inline in the embedded default). Once the event is kept it is ours: a processing failure
is recorded and retried with backoff by the retry-webhook-events job (services/payments/events.py),
so the delivery is acknowledged. A replayed event that was already processed (or given up to the
admins) is acknowledged and ignored; one that arrived but is not processed yet is queued again.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify, request

from marketplace.db import get_session
from marketplace.extensions import csrf
from marketplace.gateways import enqueue, payment_gateway
from marketplace.web.webhooks import bp
from services.errors import ServiceError
from services.i18n import _
from services.payments import events

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 256 * 1024


def _error(status: int, code: str, message: Any):  # type: ignore[no-untyped-def]
    return jsonify(code=code, message=str(message), errors={}), status


@bp.post("/webhooks/stripe")
@csrf.exempt  # authenticated by the gateway's signature, not a session
def stripe_webhook():  # type: ignore[no-untyped-def]
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return _error(413, "too_large", _("The request is too large."))
    payload = request.get_data(cache=False)
    try:
        event = payment_gateway().parse_webhook(payload, request.headers.get("Stripe-Signature"))
    except ServiceError as exc:
        log.warning("webhook refused: %s", exc.code)
        return _error(exc.status, exc.code, exc.message)
    except ValueError:
        return _error(400, "malformed", _("The request body is not valid JSON."))
    session = get_session()
    try:
        event_id = events.record_event(session, event)
    except ServiceError as exc:
        return _error(exc.status, exc.code, exc.message)
    if event_id is None:
        return jsonify(received=True, duplicate=True)
    try:
        enqueue("marketplace.tasks.process_payment_event", event_id)
    except Exception:  # the queue is away: the event is kept and due for the retry job already
        log.exception("queueing webhook event %s failed", event_id)
        return _error(503, "retry_later", _("Please try again later."))
    return jsonify(received=True)
