"""Parcels arriving at the village point and handed over (pages): the agent's list of parcels on
their way (marked arrived by a tap, or by scanning or typing the number into one field a USB
scanner types into), the parcels waiting with their age and flags, and the hand-over form (the
pickup code, or the recorded reason when it is lost; the cash of an order on the agent's
credit). services/parcels.py decides who may do what."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import pickup_code_keys
from marketplace.web.forms import form_error
from marketplace.web.parcels import bp
from marketplace.web.parcels.forms import ArrivedForm, HandoverForm
from services import parcels
from services.errors import ServiceError
from services.orders import checkout


def days() -> dict[str, int]:
    """The reminder and return days the job uses (the app's settings)."""
    config = current_app.config
    return {
        "remind_days": int(config.get("PARCEL_REMIND_DAYS") or parcels.REMIND_DAYS),
        "return_days": int(config.get("PARCEL_RETURN_DAYS") or parcels.RETURN_DAYS),
    }


def _fresh_key() -> dict[str, str]:
    return {"key": checkout.new_idempotency_key()}


def _index(form: ArrivedForm | None = None, *, error: Any = None, status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    arriving = parcels.arriving(session, user)  # Forbidden for anyone who runs no point
    return (
        render_template(
            "parcels/index.html",
            arriving=arriving,
            waiting=parcels.waiting(session, user, **days()),
            form=form or ArrivedForm(formdata=None, data=_fresh_key()),
            tap=ArrivedForm(formdata=None, data=_fresh_key()),
            error=error,
            **days(),
        ),
        status,
    )


@bp.get("")
@login_required
def index():  # type: ignore[no-untyped-def]
    return _index()


@bp.post("/arrived")
@login_required
def arrived():  # type: ignore[no-untyped-def]
    form = ArrivedForm()
    if not form.validate_on_submit():
        return _index(form, status=422)
    try:
        sub = parcels.mark_arrived(get_session(), actor(), form.number.data, form.key.data)
    except ServiceError as exc:
        # A number that is not one of this point's parcels is said on the form (no page of its own).
        message, status = form_error(form, exc, reraise=(401, 403), renamed={"idempotency_key": "key"})
        if form.key.errors:
            message = " ".join(str(e) for e in form.key.errors)
            form.key.data = checkout.new_idempotency_key()
        return _index(form, error=message, status=status)
    flash(gettext("Parcel %(number)s arrived: the recipient is sent the pickup code.", number=sub.number))
    return redirect(url_for("parcels.index"))


def _handover_page(number: str, form: HandoverForm | None = None, *, error: Any = None, status: int = 200):  # type: ignore[no-untyped-def]
    parcel = parcels.get_parcel(get_session(), actor(), number, **days())
    return (
        render_template(
            "parcels/handover.html",
            parcel=parcel,
            form=form or HandoverForm(formdata=None, data=_fresh_key()),
            error=error,
        ),
        status,
    )


@bp.get("/<sub_number>")
@login_required
def parcel(sub_number: str):  # type: ignore[no-untyped-def]
    return _handover_page(sub_number)


@bp.post("/<sub_number>/handover")
@login_required
def handover(sub_number: str):  # type: ignore[no-untyped-def]
    form = HandoverForm()
    if not form.validate_on_submit():
        return _handover_page(sub_number, form, status=422)
    data = parcels.HandoverInput(
        pickup_code=form.pickup_code.data or "",
        reason=form.reason.data or "",
        reason_text=form.reason_text.data or "",
        collected_by=form.collected_by.data or "",
        cash_received=bool(form.cash_received.data),
    )
    try:
        parcels.hand_over(get_session(), actor(), sub_number, data, form.key.data, pickup_code_keys())
    except ServiceError as exc:
        message, status = form_error(form, exc, renamed={"idempotency_key": "key"})
        if form.key.errors:  # an expired form: said on top, with a fresh key to send it again
            message = " ".join(str(e) for e in form.key.errors)
            form.key.data = checkout.new_idempotency_key()
        return _handover_page(sub_number, form, error=message, status=status)
    flash(gettext("Parcel %(number)s handed over.", number=sub_number))
    return redirect(url_for("parcels.index"))
