"""The cold-chain pages for county and DC staff: open excursions of their nodes with the lots they
marked (acknowledge), their loggers (register one: its token shown once), and a CSV upload for
loggers read out by cable (services/logistics/coldchain.py decides who may do what)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.coldchain import bp
from marketplace.web.coldchain.forms import ActionForm, LoggerForm, UploadForm
from marketplace.web.forms import form_error
from services.errors import ServiceError
from services.logistics import coldchain
from services.logistics.readings import MAX_CSV_BYTES


def _grace() -> timedelta:
    return timedelta(minutes=int(current_app.config.get("COLD_CHAIN_GRACE_MINUTES", 30)))


@bp.get("/coldchain/excursions")
@login_required
def excursions():  # type: ignore[no-untyped-def]
    views = coldchain.open_excursions(get_session(), actor())
    return render_template("coldchain/excursions.html", views=views, form=ActionForm(formdata=None))


@bp.post("/coldchain/excursions/<int:excursion_id>/acknowledge")
@login_required
def acknowledge(excursion_id: int):  # type: ignore[no-untyped-def]
    if not ActionForm().validate_on_submit():
        flash(gettext("This form has expired. Please reload the page and try again."))
        return redirect(url_for("coldchain.excursions"))
    coldchain.acknowledge(get_session(), actor(), excursion_id)
    flash(gettext("Excursion acknowledged."))
    return redirect(url_for("coldchain.excursions"))


def _loggers_page(  # type: ignore[no-untyped-def]
    form: LoggerForm, *, token: str | None = None, made=None, renewed=False, message=None, status: int = 200
):
    session = get_session()
    loggers = coldchain.visible_loggers(session, actor())
    managed = {lg.id for lg in loggers if coldchain.may_manage(actor(), lg)}
    places = coldchain.places_for(session, actor())
    form.place.choices = [(p.value, p.label) for p in places]
    return (
        render_template(
            "coldchain/loggers.html",
            form=form,
            loggers=loggers,
            can_register=bool(places),
            token=token,
            made=made,
            message=message,
            place_label=coldchain.place_label,
            managed=managed,
            renewed=renewed,
        ),
        status,
    )


@bp.get("/coldchain/loggers")
@login_required
def loggers():  # type: ignore[no-untyped-def]
    return _loggers_page(LoggerForm(formdata=None))


@bp.post("/coldchain/loggers")
@login_required
def register():  # type: ignore[no-untyped-def]
    form = LoggerForm()
    if not form.validate_on_submit():
        return _loggers_page(form, status=422)
    try:
        made = coldchain.register_logger(
            get_session(),
            actor(),
            serial=form.serial.data,
            place=form.place.data or "",
            storage_class=form.storage_class.data or "",
        )
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _loggers_page(form, message=message, status=status)
    # The token is shown on this answer only (never stored in clear, never redirected with).
    return _loggers_page(LoggerForm(formdata=None), token=made.token, made=made.logger, status=201)


@bp.post("/coldchain/loggers/<int:logger_id>/token")
@login_required
def new_token(logger_id: int):  # type: ignore[no-untyped-def]
    if not ActionForm().validate_on_submit():
        return _loggers_page(
            LoggerForm(formdata=None),
            message=gettext("This form has expired. Please reload the page and try again."),
            status=422,
        )
    made = coldchain.new_token(get_session(), actor(), logger_id)
    return _loggers_page(LoggerForm(formdata=None), token=made.token, made=made.logger, renewed=True)


def _upload_page(form: UploadForm, *, message=None, result=None, status: int = 200):  # type: ignore[no-untyped-def]
    coldchain.require_manager(get_session(), actor())  # the staff who look after loggers
    return render_template("coldchain/upload.html", form=form, message=message, result=result), status


@bp.get("/coldchain/upload")
@login_required
def upload():  # type: ignore[no-untyped-def]
    return _upload_page(UploadForm(formdata=None))


@bp.post("/coldchain/upload")
@login_required
def upload_post():  # type: ignore[no-untyped-def]
    coldchain.require_manager(get_session(), actor())
    form = UploadForm()
    if not form.validate_on_submit():
        return _upload_page(
            form, message=gettext("This form has expired. Please reload the page and try again."), status=422
        )
    storage = form.file.data
    if storage is None or not getattr(storage, "filename", ""):
        form.file.errors = [gettext("Choose the CSV file to upload.")]
        return _upload_page(form, status=422)
    data = storage.read(MAX_CSV_BYTES + 1)
    try:
        result = coldchain.ingest_csv(get_session(), actor(), data, grace=_grace())
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _upload_page(form, message=message, status=status)
    return _upload_page(UploadForm(formdata=None), result=result)
