"""The admins' operations pages: the periodic jobs, their last runs, and "run now"."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm

from marketplace.auth import actor
from marketplace.db import get_db, get_session
from marketplace.scheduler import job_context
from marketplace.web.admin import bp
from services import jobs


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
