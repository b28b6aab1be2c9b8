"""Standing order pages (/agent/standing): the agent's cycles to confirm (nearest cut-off first)
and standing orders; setting one up for a villager (goods picked through the proxy search,
quantities, cadence, how the villager pays); a cycle's confirm form (quantities for this time)
and skip; pausing, resuming, cancelling. services/standing.py decides who may do what. Plain
forms: every page works without JavaScript."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import Product, ProductStatus, clock
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway
from marketplace.web.forms import form_error, reraise_access
from marketplace.web.standing import bp
from marketplace.web.standing.forms import KeyForm, SetUpForm
from services import proxy, standing, villagers
from services.errors import ServiceError, ValidationError
from services.orders import checkout
from services.validation import id_or_none

# Quantities typed on a page: qty-<product id>; at most this many are read.
MAX_TYPED_LINES = 60


def _typed_quantities() -> dict[int, str]:
    """The qty-<product id> fields of the posted form, as typed (blank dropped)."""
    found: dict[int, str] = {}
    for name, raw in request.form.items():
        if not name.startswith("qty-") or len(found) >= MAX_TYPED_LINES:
            continue
        product_id = id_or_none(name[4:])
        value = (raw or "").strip()[:12]
        if product_id is not None and value:
            found[product_id] = value
    return found


# --- the list -----------------------------------------------------------------------------------


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    settings = checkout_settings()
    to_confirm = [
        standing.describe_cycle(session, user, c, settings)
        for c in standing.cycles_to_confirm(session, user)  # 403: not an agent
    ]
    orders = [standing.describe(session, user, s, settings) for s in standing.list_standing(session, user)]
    return render_template(
        "standing/index.html",
        to_confirm=to_confirm,
        orders=orders,
        skip=KeyForm(formdata=None),
    )


# --- setting one up -----------------------------------------------------------------------------


def _render_new(villager_id: int, form: SetUpForm, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    villager = proxy.villager_for(session, user, villager_id)  # 403: another point's
    typed = _typed_quantities() if request.method == "POST" else {}
    chosen = []
    for product_id, value in typed.items():
        product = session.get(Product, product_id)
        if product is not None and value not in ("0", "０"):
            chosen.append((product, value))
    q = (form.q.data or "").strip()[:60]
    results = None
    if q or request.values.get("browse"):
        try:
            results = proxy.search_goods(session, user, q=q)
        except ValidationError as exc:
            error = error or str(exc.message)
    picked = {product.id for product, _ in chosen}
    return (
        render_template(
            "standing/new.html",
            villager=villagers.present(villager, user),
            form=form,
            chosen=chosen,
            results=[p for p in results.items if p.id not in picked] if results else None,
            found_any=bool(results and results.items),
            active=ProductStatus.ACTIVE,
            error=error,
        ),
        status,
    )


@bp.get("/villagers/<int:villager_id>/new")
@login_required
def new(villager_id: int):  # type: ignore[no-untyped-def]
    form = SetUpForm(
        formdata=None,
        data={
            "key": checkout.new_idempotency_key(),
            "start_date": f"{clock.today():%Y-%m-%d}",
        },
    )
    form.q.data = request.args.get("q", "")[:60]
    return _render_new(villager_id, form)


@bp.post("/villagers/<int:villager_id>/new")
@login_required
def create(villager_id: int):  # type: ignore[no-untyped-def]
    form = SetUpForm()
    if request.form.get("action") != "create":  # a search: the page again, as typed
        return _render_new(villager_id, form)
    if not form.validate_on_submit():
        return _render_new(
            villager_id,
            form,
            error=gettext("This form has expired. Please reload the page and try again."),
            status=422,
        )
    items = {pid: value for pid, value in _typed_quantities().items() if value not in ("0", "０")}
    weekly = form.cadence.data == "weekly"
    data = standing.StandingInput(
        villager_id=villager_id,
        items=items,
        payment_method=form.payment_method.data,
        cadence=form.cadence.data,
        repeat_every=form.repeat_every.data,
        weekday=form.weekday.data if weekly else None,
        day_of_month=None if weekly else form.day_of_month.data,
        start_date=form.start_date.data or None,
        note=form.note.data or "",
    )
    try:
        created = standing.create(get_session(), actor(), data, form.key.data)
    except ServiceError as exc:
        message, status = form_error(form, exc)
        if "items" in exc.field_errors:
            message = " ".join(str(m) for m in exc.field_errors["items"])
        return _render_new(villager_id, form, error=message, status=status)
    flash(gettext("Standing order set up. Each time it is due it waits here for you to confirm."))
    return redirect(url_for(".show", standing_id=created.id))


# --- one standing order -------------------------------------------------------------------------


@bp.get("/<int:standing_id>")
@login_required
def show(standing_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    found = standing.get_standing(session, user, standing_id)  # 404: another point's
    return render_template(
        "standing/show.html",
        view=standing.describe(session, user, found, checkout_settings()),
        cycles=standing.cycles_of(session, found),
        state=standing.cycle_state,
        action=KeyForm(formdata=None),
    )


def _change(standing_id: int, change: Any, message: str):  # type: ignore[no-untyped-def]
    form = KeyForm()
    if not form.validate_on_submit():
        flash(gettext("This form has expired. Please reload the page and try again."), "error")
        return redirect(url_for(".show", standing_id=standing_id))
    try:
        change(get_session(), actor(), standing_id)
    except ServiceError as exc:
        reraise_access(exc)
        flash(str(exc.message), "error")
        return redirect(url_for(".show", standing_id=standing_id))
    flash(message)
    return redirect(url_for(".show", standing_id=standing_id))


@bp.post("/<int:standing_id>/pause")
@login_required
def pause(standing_id: int):  # type: ignore[no-untyped-def]
    return _change(standing_id, standing.pause, gettext("Standing order paused."))


@bp.post("/<int:standing_id>/resume")
@login_required
def resume(standing_id: int):  # type: ignore[no-untyped-def]
    return _change(standing_id, standing.resume, gettext("Standing order resumed."))


@bp.post("/<int:standing_id>/cancel")
@login_required
def cancel(standing_id: int):  # type: ignore[no-untyped-def]
    return _change(standing_id, standing.cancel, gettext("Standing order cancelled."))


# --- a cycle: confirm or skip -------------------------------------------------------------------


def _render_cycle(
    cycle_id: int,
    *,
    form: KeyForm | None = None,
    typed: dict[int, str] | None = None,
    error: str | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    cycle = standing.get_cycle(session, user, cycle_id)  # 404: another point's
    return (
        render_template(
            "standing/cycle.html",
            view=standing.describe_cycle(session, user, cycle, checkout_settings()),
            form=form or KeyForm(formdata=None, data={"key": checkout.new_idempotency_key()}),
            skip=KeyForm(formdata=None),
            typed=typed or {},
            error=error,
        ),
        status,
    )


@bp.get("/cycles/<int:cycle_id>")
@login_required
def cycle(cycle_id: int):  # type: ignore[no-untyped-def]
    return _render_cycle(cycle_id)


@bp.post("/cycles/<int:cycle_id>/confirm")
@login_required
def confirm(cycle_id: int):  # type: ignore[no-untyped-def]
    form = KeyForm()
    typed = _typed_quantities()
    if not form.validate_on_submit():
        return _render_cycle(
            cycle_id,
            typed=typed,
            error=gettext("This form has expired. Please reload the page and try again."),
            status=422,
        )
    # A blank quantity leaves the line out this time, as 0 does.
    quantities: dict[int, Any] = {pid: value for pid, value in typed.items()}
    for name in request.form:
        if name.startswith("qty-") and not (request.form.get(name) or "").strip():
            product_id = id_or_none(name[4:])
            if product_id is not None:
                quantities[product_id] = 0
    try:
        done = standing.confirm(
            get_session(),
            payment_gateway(),
            actor(),
            cycle_id,
            form.key.data,
            checkout_settings(),
            quantities=quantities,
        )
    except ServiceError as exc:
        message, status = form_error(form, exc)
        return _render_cycle(
            cycle_id, form=form, typed=typed, error=message or str(exc.message), status=status
        )
    assert done.order is not None
    flash(gettext("Confirmed: order %(number)s is placed.", number=done.order.number))
    return redirect(url_for("proxy.order", number=done.order.number))


@bp.post("/cycles/<int:cycle_id>/skip")
@login_required
def skip(cycle_id: int):  # type: ignore[no-untyped-def]
    form = KeyForm()
    if not form.validate_on_submit():
        return _render_cycle(
            cycle_id,
            error=gettext("This form has expired. Please reload the page and try again."),
            status=422,
        )
    try:
        standing.skip(get_session(), actor(), cycle_id)
    except ServiceError as exc:
        reraise_access(exc)
        return _render_cycle(cycle_id, error=str(exc.message), status=exc.status)
    flash(gettext("Skipped this time: no order."))
    return redirect(url_for(".index"))
