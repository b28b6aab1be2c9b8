"""The cash pages: the agent's cash held, the proxy orders waiting for their cash (take it: the
order is paid at once), declaring a remittance and the agent's remittances; county staff's
remittances to confirm with the counted amount. services/cash.py decides who may do what."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.cash import bp
from marketplace.web.cash.forms import ConfirmForm, DeclareForm, TakeCashForm
from marketplace.web.forms import form_error
from services import cash
from services.errors import ServiceError
from services.orders import checkout


def _agent_page(declare: DeclareForm | None = None, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    remittances = cash.my_remittances(session, user)  # Forbidden for anyone not an agent
    assert user is not None
    form = declare or DeclareForm(formdata=None, data={"key": checkout.new_idempotency_key()})
    return (
        render_template(
            "cash/agent.html",
            held=cash.cash_held(session, user.id),
            available=cash.available_to_declare(session, user.id),
            awaiting=cash.awaiting_cash(session, user),
            remittances=remittances,
            form=form,
            take=TakeCashForm(formdata=None, data={"key": checkout.new_idempotency_key()}),
            error=error,
        ),
        status,
    )


@bp.get("/agent/cash")
@login_required
def agent_cash():  # type: ignore[no-untyped-def]
    return _agent_page()


@bp.post("/agent/cash/orders/<order_number>")
@login_required
def take_cash(order_number: str):  # type: ignore[no-untyped-def]
    form = TakeCashForm()
    try:
        cash.take_cash(get_session(), actor(), order_number, form.key.data)
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _agent_page(error=message or str(exc.message), status=status)
    flash(gettext("Cash received: order %(number)s is paid.", number=order_number))
    return redirect(url_for("cash.agent_cash"))


@bp.post("/agent/cash/remittances")
@login_required
def declare():  # type: ignore[no-untyped-def]
    form = DeclareForm()
    if not form.validate_on_submit():
        return _agent_page(form, status=422)
    try:
        amount = cash.parse_yuan_amount(form.amount.data, "amount")
        cash.declare_remittance(get_session(), actor(), amount, form.key.data, note=form.note.data or "")
    except ServiceError as exc:
        message, status = form_error(form, exc, renamed={"amount_fen": "amount"})
        # The whole message too: it says how much may be handed in.
        return _agent_page(form, error=message or str(exc.message), status=status)
    flash(gettext("Remittance declared. County staff will count and confirm it."))
    return redirect(url_for("cash.agent_cash"))


def _county_page(errors: dict[int, str] | None = None, *, status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    return (
        render_template(
            "cash/county.html",
            to_confirm=cash.county_remittances(session, user, to_confirm=True),
            recent=cash.county_remittances(session, user, limit=50),
            form=ConfirmForm(formdata=None),
            errors=errors or {},
        ),
        status,
    )


@bp.get("/county/remittances")
@login_required
def county_remittances():  # type: ignore[no-untyped-def]
    return _county_page()


@bp.post("/county/remittances/<int:remittance_id>/confirm")
@login_required
def confirm(remittance_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _county_page({remittance_id: gettext("Enter the counted amount.")}, status=422)
    try:
        counted = cash.parse_yuan_amount(form.counted.data, "counted", allow_zero=True)
        cash.confirm_remittance(get_session(), actor(), remittance_id, counted)
    except ServiceError as exc:
        message, status = form_error(form, exc, renamed={"counted_fen": "counted"})
        text = message or " ".join(str(e) for e in form.counted.errors)
        return _county_page({remittance_id: text}, status=status)
    flash(gettext("Remittance confirmed."))
    return redirect(url_for("cash.county_remittances"))
