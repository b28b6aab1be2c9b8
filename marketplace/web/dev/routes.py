"""Developer pages, registered only when DEV_PAGES is on: the SMS outbox."""

from __future__ import annotations

from flask import render_template

from marketplace.db import get_session
from marketplace.web.dev import bp
from services import sms

OUTBOX_LIMIT = 50


@bp.get("/sms")
def sms_outbox():  # type: ignore[no-untyped-def]
    messages = sms.list_outbox(get_session(), limit=OUTBOX_LIMIT)
    return render_template("dev/sms.html", messages=messages, limit=OUTBOX_LIMIT)
