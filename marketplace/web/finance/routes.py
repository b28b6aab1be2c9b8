"""The admins' finance pages: ledger balances, payout batches, and the files for the bank."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.finance import bp
from marketplace.web.finance.forms import MarkPaidForm, PayoutBatchForm
from marketplace.web.forms import show_service_error
from services import ledger
from services.errors import Conflict, ValidationError

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    overview = ledger.finance_overview(session, user)  # admins only: refuses before any write
    form = PayoutBatchForm()
    error = None
    if form.validate_on_submit():
        try:
            batch = ledger.create_payout_batch(session, user, holding_days=form.holding_days.data)
        except (ValidationError, Conflict) as exc:
            error = show_service_error(form, exc)
        else:
            if batch is None:
                flash(gettext("Nothing to pay out: no completed orders past the holding period."), "info")
                return redirect(url_for(".index"))
            flash(gettext("Payout batch %(id)d has been created.", id=batch.id), "success")
            return redirect(url_for(".batch", batch_id=batch.id))
    status = 422 if form.errors or error else 200
    return render_template("finance/index.html", overview=overview, form=form, error=error), status


@bp.get("/batches/<int:batch_id>")
@login_required
def batch(batch_id: int):  # type: ignore[no-untyped-def]
    found = ledger.get_batch(get_session(), actor(), batch_id)
    return render_template(
        "finance/batch.html", batch=found, rows=ledger.payout_rows(found), form=MarkPaidForm()
    )


@bp.post("/batches/<int:batch_id>/paid")
@login_required
def mark_paid(batch_id: int):  # type: ignore[no-untyped-def]
    # CSRFProtect has checked the token of this form already.
    found = ledger.mark_batch_paid(get_session(), actor(), batch_id)
    flash(gettext("Payout batch %(id)d is marked as paid.", id=found.id), "success")
    return redirect(url_for(".batch", batch_id=batch_id))


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"  # sellers' phones and amounts
    return response


@bp.get("/batches/<int:batch_id>.csv")
@login_required
def batch_csv(batch_id: int):  # type: ignore[no-untyped-def]
    found = ledger.get_batch(get_session(), actor(), batch_id)
    return _download(ledger.export_batch_csv(found), "text/csv", f"payout-batch-{found.id}.csv")


@bp.get("/batches/<int:batch_id>.xlsx")
@login_required
def batch_xlsx(batch_id: int):  # type: ignore[no-untyped-def]
    found = ledger.get_batch(get_session(), actor(), batch_id)
    return _download(ledger.export_batch_xlsx(found), XLSX_TYPE, f"payout-batch-{found.id}.xlsx")
