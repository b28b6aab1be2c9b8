"""A hub's day (issue 12, item 9): county staff of a county center's county and DC staff of their
distribution center see its vehicles, pallets and route plan, and act on them. Thin: each view
parses a form, calls one service (services/logistics/), renders or redirects."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import clock
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import distance_matrix, route_time_limit
from marketplace.web.forms import form_error
from marketplace.web.hubs import bp
from marketplace.web.hubs.forms import ActionForm, LoadedForm, LockForm, VehicleForm
from services.errors import ServiceError
from services.logistics import fleet, hubday, pallets, routes
from services.validation import id_or_none


def _day(raw: Any) -> date:
    """A day in the URL or a form (2026-11-26); today when absent; 404 for what is no day."""
    text = str(raw or "").strip()
    if not text:
        return clock.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(404)


def _page(
    hub_id: int,
    day: date,
    *,
    vehicle_form: VehicleForm | None = None,
    vehicle_errors: dict[int, VehicleForm] | None = None,
    loaded: LoadedForm | None = None,
    lock_errors: dict[int, str] | None = None,
    error: str | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    view = hubday.hub_day(get_session(), actor(), hub_id, day)
    edit_forms = {
        v.id: (vehicle_errors or {}).get(v.id)
        or VehicleForm(
            formdata=None,
            data={
                "plate": v.plate,
                "kind": v.kind.value,
                "capacity_kg": str(v.capacity_kg),
                "capacity_m3": f"{v.capacity_l / 1000:g}",
                "shift_start": v.shift_start.strftime("%H:%M"),
                "shift_end": v.shift_end.strftime("%H:%M"),
                "active": v.active,
            },
            prefix=f"v{v.id}",
        )
        for v in view.vehicles
    }
    return (
        render_template(
            "hubs/day.html",
            view=view,
            today=clock.today(),
            vehicle_form=vehicle_form or VehicleForm(formdata=None),
            edit_forms=edit_forms,
            action=ActionForm(formdata=None, data={"day": day.isoformat()}),
            loaded=loaded or LoadedForm(formdata=None),
            lock_errors=lock_errors or {},
            reasons=routes.REASON_TEXT,
            pallet_max_kg=pallets.PALLET_MAX_LOAD_KG,
            pallet_volume_l=pallets.PALLET_VOLUME_L,
            storage_labels={
                "ambient": gettext("Ambient"),
                "chilled": gettext("Chilled"),
                "frozen": gettext("Frozen"),
            },
            pallet_status={
                "built": gettext("Built"),
                "loaded": gettext("Loaded"),
                "departed": gettext("Departed"),
            },
            error=error,
        ),
        status,
    )


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    hubs = fleet.hubs_of(get_session(), actor())
    if not hubs:
        abort(403)
    return render_template("hubs/index.html", hubs=hubs, today=clock.today())


@bp.get("/<int:hub_id>")
@login_required
def day(hub_id: int):  # type: ignore[no-untyped-def]
    return _page(hub_id, _day(request.args.get("day")))


def _vehicle_input(form: VehicleForm) -> fleet.VehicleInput:
    return fleet.VehicleInput(
        plate=form.plate.data or "",
        kind=form.kind.data or "",
        capacity_kg=form.capacity_kg.data or "",
        capacity_m3=form.capacity_m3.data or "",
        shift_start=form.shift_start.data or "",
        shift_end=form.shift_end.data or "",
        active=bool(form.active.data),
    )


@bp.post("/<int:hub_id>/vehicles")
@login_required
def add_vehicle(hub_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    form = VehicleForm()
    form.active.data = True
    try:
        vehicle = fleet.save_vehicle(session, actor(), hub, _vehicle_input(form))
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _page(hub_id, clock.today(), vehicle_form=form, error=message, status=status)
    flash(gettext("Vehicle %(plate)s saved.", plate=vehicle.plate))
    return redirect(url_for("hubs.day", hub_id=hub_id) + "#vehicles")


@bp.post("/<int:hub_id>/vehicles/<int:vehicle_id>")
@login_required
def edit_vehicle(hub_id: int, vehicle_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    form = VehicleForm(prefix=f"v{vehicle_id}")
    try:
        vehicle = fleet.save_vehicle(session, actor(), hub, _vehicle_input(form), vehicle_id=vehicle_id)
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _page(hub_id, clock.today(), vehicle_errors={vehicle_id: form}, error=message, status=status)
    flash(gettext("Vehicle %(plate)s saved.", plate=vehicle.plate))
    return redirect(url_for("hubs.day", hub_id=hub_id) + "#vehicles")


@bp.post("/<int:hub_id>/pallets")
@login_required
def build_pallets(hub_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    try:
        result = pallets.build_pallets(session, actor(), hub)
    except ServiceError as exc:
        message, status = form_error(ActionForm(), exc)
        return _page(hub_id, clock.today(), error=message, status=status)
    flash(
        gettext(
            "%(added)d parcels put on pallets (%(new)d new pallets).",
            added=result.added,
            new=result.new_pallets,
        )
    )
    if result.loose:
        flash(
            gettext(
                "Larger than a pallet, left loose: %(labels)s",
                labels=", ".join(p.label for p in result.loose),
            )
        )
    return redirect(url_for("hubs.day", hub_id=hub_id) + "#pallets")


@bp.post("/<int:hub_id>/pallets/loaded")
@login_required
def pallet_loaded(hub_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    form = LoadedForm()
    try:
        pallet = pallets.mark_loaded(session, actor(), hub, form.code.data or "")
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _page(hub_id, clock.today(), loaded=form, error=message, status=status)
    flash(gettext("Pallet %(code)s loaded.", code=pallet.code))
    return redirect(url_for("hubs.day", hub_id=hub_id) + "#pallets")


@bp.post("/<int:hub_id>/plan")
@login_required
def plan(hub_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    form = ActionForm()
    day = _day(form.day.data)
    try:
        routes.plan_day(session, actor(), hub, day, distance_matrix(), time_limit_s=route_time_limit())
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _page(hub_id, day, error=message, status=status)
    flash(gettext("The day is planned."))
    return redirect(url_for("hubs.day", hub_id=hub_id, day=day.isoformat()) + "#plan")


@bp.post("/<int:hub_id>/plan/lock")
@login_required
def lock(hub_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    hub = fleet.hub(session, hub_id)
    form = LockForm()
    day = _day(form.day.data)
    stop = id_or_none(form.stop.data)
    try:
        routes.lock_stop(
            session,
            actor(),
            hub,
            day,
            form.stop.data,
            form.vehicle.data,
            distance_matrix(),
            time_limit_s=route_time_limit(),
        )
    except ServiceError as exc:
        message, status = form_error(form, exc)
        errors = {stop: message or " ".join(str(e) for e in form.vehicle.errors)} if stop else {}
        return _page(hub_id, day, lock_errors=errors, error=message, status=status)
    locked = bool((form.vehicle.data or "").strip())
    flash(
        gettext("Stop locked and the day planned again.")
        if locked
        else gettext("Stop unlocked and the day planned again.")
    )
    return redirect(url_for("hubs.day", hub_id=hub_id, day=day.isoformat()) + "#plan")
