"""Placeholder endpoints."""

from marketplace.web.dev import bp


@bp.get("/sms")
def sms_outbox():  # type: ignore[no-untyped-def]
    return "sms"
