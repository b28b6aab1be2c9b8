"""Produce handed in at the village point, weighed and graded (pages).

The receiving agent (or county staff) sees the produce to receive (accepted sub-orders of the
sellers whose home point is theirs), opens one, and records per line the weighed weight (kg, or
斤 for produce sold in 斤), the grade, the accepted quantity and a photo: that is the hand-in
(services/intake.py decides who may, what is charged and what goes back). The form works
without JavaScript: one multipart POST with the photos; a refused form comes back with the typed
values, the errors beside their fields, and the photos already uploaded kept (photo_id-<line>).
The same page afterwards shows the result: weights, grades, what went back and the lots with
their trace codes. `/trace/<code>` is the lot's public page (no login), registered at the root
by this blueprint (see `_register_trace`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import Grade, IntakePhoto, SubOrder
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.extensions import csrf
from marketplace.gateways import media_storage, payment_gateway
from marketplace.web.forms import form_status, reraise_access
from marketplace.web.intake import bp
from services import intake
from services.errors import ServiceError, ValidationError
from services.logistics import trace as lot_chain
from services.orders import checkout
from services.validation import id_or_none

GRADES = tuple(Grade)


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    subs = intake.to_receive(session, user)  # Forbidden for anyone who receives nothing
    return render_template(
        "intake/index.html",
        subs=subs,
        origins={s.id: intake.seller_origin(session, s) for s in subs},
        received=intake.received(session, user, limit=20),
    )


def _values(sub: SubOrder) -> dict[str, str]:
    """The form as first shown: every quantity accepted, grade 一级, nothing weighed yet."""
    out: dict[str, str] = {}
    for line in sub.lines:
        out[f"quantity-{line.id}"] = str(line.quantity)
        out[f"grade-{line.id}"] = Grade.FIRST.value
    return out


def _render_form(
    sub: SubOrder,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    error: str | None = None,
    key: str | None = None,
    photos: dict[int, Any] | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    return (
        render_template(
            "intake/receive.html",
            sub=sub,
            values=values or _values(sub),
            errors=errors or {},
            error=error,
            key=key or checkout.new_idempotency_key(),
            photos=photos or {},
            grades=GRADES,
            by_weight={line.id: intake.sold_by_weight(line.unit) for line in sub.lines},
            max_factor=intake.MAX_WEIGHT_FACTOR,
            max_mb=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024),
        ),
        status,
    )


def _photo_ids(sub: SubOrder) -> dict[int, Any]:
    """Photos uploaded with an earlier try of this form (kept in hidden fields)."""
    out: dict[int, Any] = {}
    for line in sub.lines:
        raw = request.form.get(f"photo_id-{line.id}", "")
        found = id_or_none(raw) if raw else None
        if found is not None:
            out[line.id] = found
    return out


@bp.route("/<sub_number>", methods=["GET", "POST"])
@login_required
@csrf.exempt  # checked below, once the request limit has been raised to fit the photos
def receive(sub_number: str):  # type: ignore[no-untyped-def]
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if request.method == "POST":
        # Room for a few photos up to twice the limit each: a too large one gets the clear message.
        request.max_content_length = max(current_app.config.get("MAX_CONTENT_LENGTH") or 0, 6 * limit + 65536)
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
    session = get_session()
    user = actor()
    sub = intake.receivable_sub_order(session, user, sub_number)
    done = intake.intake_of(session, sub)
    if request.method == "GET":
        return _render_done(done) if done is not None else _render_form(sub)
    key = request.form.get("key", "")
    if done is not None:
        # Sent again: the same key returns the intake (finishing its money if the gateway failed
        # then); another key finds it received already.
        try:
            intake.record_intake(session, payment_gateway(), user, sub_number, [], key)
        except ServiceError as exc:
            reraise_access(exc)
            session.rollback()
            return _render_done(done, error=str(exc.message), status=form_status(exc))
        return redirect(url_for(".receive", sub_number=sub.number))
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    photos = _photo_ids(sub)
    errors: dict[str, list[str]] = {}
    try:
        for line in sub.lines:
            upload = request.files.get(f"photo-{line.id}")
            if upload is not None and upload.filename:
                try:
                    photo = intake.upload_photo(
                        session, media_storage(), user, upload.read(limit + 1), max_bytes=limit
                    )
                except ValidationError as exc:
                    messages = exc.field_errors.get("photo", [exc.message])
                    errors[f"photo-{line.id}"] = [str(m) for m in messages]
                    continue
                photos[line.id] = photo.id
        if errors:
            raise ValidationError(next(iter(errors.values()))[0], field_errors=errors)
        lines = [
            intake.LineInput(
                line_id=line.id,
                weighed_g=request.form.get(f"weight-{line.id}", ""),
                grade=request.form.get(f"grade-{line.id}", ""),
                accepted_quantity=request.form.get(f"quantity-{line.id}", ""),
                photo_id=photos.get(line.id),
            )
            for line in sub.lines
        ]
        recorded = intake.record_intake(session, payment_gateway(), user, sub_number, lines, key)
    except ServiceError as exc:
        reraise_access(exc)
        session.rollback()
        sub = intake.receivable_sub_order(session, user, sub_number)
        field_errors = {k: [str(m) for m in v] for k, v in exc.field_errors.items()}
        named = {f"{p}-{line.id}" for line in sub.lines for p in ("weight", "grade", "quantity", "photo")}
        fitted = set(field_errors) <= named
        return _render_form(
            sub,
            values=values,
            errors=field_errors,
            error=None if field_errors and fitted else str(exc.message),
            key=key if exc.status != 409 else None,
            photos={line_id: session.get(IntakePhoto, pid) for line_id, pid in photos.items()},
            status=form_status(exc),
        )
    flash(gettext("Order %(number)s is received and handed in.", number=recorded.sub_order.number), "success")
    return redirect(url_for(".receive", sub_number=recorded.sub_order.number))


def _render_done(done: intake.Intake, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("intake/done.html", intake=done, sub=done.sub_order, error=error), status


# --- the public trace page ------------------------------------------------------------------------

trace_bp = Blueprint("trace", __name__)


@trace_bp.get("/t/<code>")
def trace_page(code: str):  # type: ignore[no-untyped-def]
    """A lot's public trace (no login, phone first): product, origin village and county, the farmer
    (masked), harvest, certifications, grade, intake day and point, every event of its journey and
    whether its hash chain verifies (services/logistics/trace.py). Nothing personal."""
    return render_template("intake/trace.html", trace=lot_chain.lot_trace(get_session(), code))


@trace_bp.get("/trace/<code>")
def old_trace_page(code: str):  # type: ignore[no-untyped-def]
    """Where trace codes pointed before /t/<code>: printed labels keep working."""
    return redirect(url_for(".trace_page", code=code), code=301)


@bp.record_once
def _register_trace(state: Any) -> None:
    """/trace/<code> lives at the root, beside this blueprint's /agent/intake pages."""
    state.app.register_blueprint(trace_bp)
