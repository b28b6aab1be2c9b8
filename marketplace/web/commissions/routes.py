"""The commission pages: an agent's earnings per month; a county's commission rates, set by its
county service center staff (services/commissions.py decides who may do what)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.commissions import bp
from marketplace.web.commissions.forms import RateForm
from marketplace.web.forms import form_error
from services import authz, commissions
from services.errors import ServiceError


@bp.get("/agent/earnings")
@login_required
def earnings():  # type: ignore[no-untyped-def]
    month = request.args.get("month") or None
    try:
        view = commissions.earnings(get_session(), actor(), month)
    except ServiceError as exc:
        if exc.status != 422:
            raise
        view = commissions.earnings(get_session(), actor())
        flash(str(exc.message))
    return render_template("commissions/earnings.html", view=view)


@bp.get("/county/commission-rates")
@login_required
def my_county_rates():  # type: ignore[no-untyped-def]
    """County staff: straight to their (first) county's rates."""
    counties = sorted(authz.staff_county_codes(actor()))
    if not counties:
        abort(403)
    return redirect(url_for("commissions.county_rates", county_code=counties[0]))


def _rates_page(county_code: str, errors: dict[str, str] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    view = commissions.county_rates(get_session(), actor(), county_code)
    return (
        render_template(
            "commissions/rates.html",
            view=view,
            form=RateForm(formdata=None),
            errors=errors or {},
            percent=commissions.percent_text,
        ),
        status,
    )


@bp.get("/county/<county_code>/commission-rates")
@login_required
def county_rates(county_code: str):  # type: ignore[no-untyped-def]
    return _rates_page(county_code)


@bp.post("/county/<county_code>/commission-rates")
@login_required
def set_rate(county_code: str):  # type: ignore[no-untyped-def]
    form = RateForm()
    row_id = f"{form.kind.data}-{form.category_id.data or 0}"
    if not form.validate_on_submit():
        return _rates_page(
            county_code,
            {row_id: gettext("This form has expired. Please reload the page and try again.")},
            422,
        )
    try:
        commissions.set_rate(
            get_session(), actor(), county_code, form.kind.data, form.category_id.data or None, form.rate.data
        )
    except ServiceError as exc:
        message, status = form_error(form, exc)
        text = message or " ".join(str(e) for e in form.rate.errors) or str(exc.message)
        return _rates_page(county_code, {row_id: text}, status)
    flash(gettext("Commission rate saved."))
    return redirect(url_for("commissions.county_rates", county_code=county_code) + f"#rate-{row_id}")
