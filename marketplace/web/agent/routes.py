"""The village point's overviews: the agent's day at a glance (the agent's home page) and
county staff's view of their county's points (services/dashboard.py gathers the figures), with
the agents' credit limits county staff set."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.agent import bp
from marketplace.web.forms import form_error
from marketplace.web.proxy.forms import CreditLimitForm
from services import cash, dashboard, proxy
from services.errors import ServiceError
from services.orders import checkout


@bp.get("/agent")
@login_required
def day():  # type: ignore[no-untyped-def]
    return render_template("agent/day.html", day=dashboard.agent_day(get_session(), actor()))


@bp.get("/county/points")
@login_required
def county():  # type: ignore[no-untyped-def]
    view = dashboard.county_overview(get_session(), actor())
    return render_template("agent/county.html", view=view, totals=view.totals)


# --- county staff: the agents' credit --------------------------------------------------------------


def _render_credit(errors: dict[int, str] | None = None, *, status: int = 200):  # type: ignore[no-untyped-def]
    agents = proxy.county_credit(get_session(), actor())  # 403: not county staff
    forms: dict[int, Any] = {}
    for c in agents:
        limit = f"{c.limit_fen // 100}.{c.limit_fen % 100:02d}"
        forms[c.agent.id] = CreditLimitForm(
            formdata=None, data={"key": checkout.new_idempotency_key(), "limit": limit}
        )
    return render_template("agent/credit.html", agents=agents, forms=forms, errors=errors or {}), status


@bp.get("/county/credit")
@login_required
def credit():  # type: ignore[no-untyped-def]
    """County staff: their agents' credit limits, credit used and available."""
    return _render_credit()


@bp.post("/county/credit/<int:agent_id>")
@login_required
def set_limit(agent_id: int):  # type: ignore[no-untyped-def]
    form = CreditLimitForm()
    if not form.validate_on_submit():
        return _render_credit({agent_id: gettext("Enter the credit limit in yuan.")}, status=422)
    try:
        limit = cash.parse_yuan_amount(form.limit.data, "limit", allow_zero=True)
        proxy.set_credit_limit(get_session(), actor(), agent_id, limit, form.key.data)
    except ServiceError as exc:
        message, status = form_error(form, exc, renamed={"limit_fen": "limit"})
        text = message or " ".join(str(e) for e in form.limit.errors)
        return _render_credit({agent_id: text}, status=status)
    flash(gettext("Credit limit saved."))
    return redirect(url_for(".credit"))
