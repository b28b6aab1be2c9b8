"""The village point's overviews: the agent's day at a glance (the agent's home page) and
county staff's view of their county's points (services/dashboard.py gathers the figures)."""

from __future__ import annotations

from flask import render_template
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.agent import bp
from services import dashboard


@bp.get("/agent")
@login_required
def day():  # type: ignore[no-untyped-def]
    return render_template("agent/day.html", day=dashboard.agent_day(get_session(), actor()))


@bp.get("/county/points")
@login_required
def county():  # type: ignore[no-untyped-def]
    view = dashboard.county_overview(get_session(), actor())
    return render_template("agent/county.html", view=view, totals=view.totals)
