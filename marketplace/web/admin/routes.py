"""The admins' operations pages: the periodic jobs, their last runs, and "run now"; the payment
gateway's webhook events whose processing failed, and "process again"."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm

from marketplace.auth import actor
from marketplace.db import get_db, get_session
from marketplace.gateways import payment_gateway
from marketplace.scheduler import job_context
from marketplace.web.admin import bp
from services import jobs
from services.payments import events


class RunJobForm(FlaskForm):
    """Only the CSRF token: the job is in the URL."""


@bp.get("/jobs")
@login_required
def job_list():  # type: ignore[no-untyped-def]
    statuses = jobs.job_statuses(get_session(), actor())  # admins only
    return render_template("admin/jobs.html", statuses=statuses, form=RunJobForm())


@bp.post("/jobs/<job_name>/run")
@login_required
def run_job(job_name: str):  # type: ignore[no-untyped-def]
    # CSRFProtect has checked the token of this form already.
    outcome = jobs.run_now(
        get_session(), get_db().session_scope, actor(), job_name, context=job_context(current_app)
    )
    if not outcome.ran:
        flash(gettext("This job is running already; it was not started again."), "info")
    elif outcome.ok:
        flash(gettext("The job has run."), "success")
    else:
        flash(gettext("The job failed: %(error)s", error=outcome.error), "error")
    return redirect(url_for(".job_list"))


class ProcessEventForm(FlaskForm):
    """Only the CSRF token: the event is in the URL."""


@bp.get("/webhooks")
@login_required
def webhook_list():  # type: ignore[no-untyped-def]
    failed = events.failed_events(get_session(), actor())  # admins only
    return render_template(
        "admin/webhooks.html",
        failed=failed,
        form=ProcessEventForm(),
        max_attempts=_max_webhook_attempts(),
    )


@bp.post("/webhooks/<event_id>/retry")
@login_required
def retry_webhook(event_id: str):  # type: ignore[no-untyped-def]
    # CSRFProtect has checked the token of this form already.
    outcome = events.process_again(
        get_session(), payment_gateway(), actor(), event_id, max_attempts=_max_webhook_attempts()
    )
    if not outcome.ran and outcome.state == "processed":
        flash(gettext("This event was processed already."), "info")
    elif not outcome.ran:
        flash(gettext("This event is being processed right now; it was not started again."), "info")
    elif outcome.ok:
        flash(gettext("The event %(id)s has been processed.", id=event_id), "success")
    else:
        flash(gettext("Processing the event failed again: %(error)s", error=outcome.error), "error")
    return redirect(url_for(".webhook_list"))


def _max_webhook_attempts() -> int:
    return int(current_app.config.get("WEBHOOK_MAX_ATTEMPTS") or events.DEFAULT_MAX_ATTEMPTS)
