"""The staff's scan page (issue 12, item 2) and a parcel's printed label.

- GET /scan (?node=, ?kind=): for anyone who works at a node (authz.works_at): choose the node
  (preselected when there is one), what happens (arrived, departed, delivered at the door,
  exception with a note), for a departure the vehicle it leaves on when the node has vehicles
  (kept chosen between scans), and scan: a USB scanner types the label into the focused field and
  presses Enter; a phone with the BarcodeDetector API reads Code 128 or QR from its camera
  (static/js/scan.js). Below: the node's exceptions (services/logistics/exceptions.py), today's
  scans at the node, the parcels there and those on their way.
- POST /scan: one scan through services.logistics (scans.record_scan), with the form's hidden
  idempotency key; applied or repeated → back to the page with the result on top (PRG, so the
  offline queue replays it: static/js/offline.js); refused (unknown label, another node's
  staff, out of order) → the page again with the service's message (4xx), nothing written.
- GET /parcels/<label>/label.pdf: the A6 label (marketplace/labels.py) for the parcel's seller,
  the staff of its origin node and admins; a 404 for anyone else.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext
from flask_login import login_required

from domain import ScanKind
from marketplace import labels
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.formatting import scan_kind_label
from marketplace.web.forms import form_error, query_id
from marketplace.web.scans import bp
from marketplace.web.scans.forms import ScanForm
from services.errors import ServiceError
from services.logistics import desk, exceptions
from services.orders import checkout

KINDS = {k.value for k in ScanKind} - {ScanKind.COLLECTED.value}


def _kind(raw: str | None) -> str:
    return raw if raw in KINDS else ScanKind.ARRIVED.value


def _page(form: ScanForm | None = None, *, node_id: int | None = None, error: Any = None, status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    nodes = desk.scan_nodes(session, user)
    if form is not None and node_id not in {n.id for n in nodes}:
        node_id = None  # a refused post for a node they do not work at: said on the form
    board = desk.node_desk(session, user, node_id)  # Forbidden for someone who works at no node
    vehicles = desk.departure_vehicles(session, board.node)
    if form is None:
        form = ScanForm(
            formdata=None,
            data={
                "key": checkout.new_idempotency_key(),
                "node_id": str(board.node.id),
                "kind": _kind(request.args.get("kind")),
                "vehicle_id": request.args.get("vehicle", "")[:12],
            },
        )
    form.node_id.choices = [(str(n.id), n.name) for n in nodes]
    form.vehicle_id.choices = [("", gettext("Not said"))] + [(str(v.id), v.plate) for v in vehicles]
    return (
        render_template(
            "scans/index.html",
            form=form,
            desk=board,
            nodes=nodes,
            vehicles=vehicles,
            issues=exceptions.node_exceptions(session, user, board.node),
            error=error,
        ),
        status,
    )


@bp.get("/scan")
@login_required
def index():  # type: ignore[no-untyped-def]
    return _page(node_id=query_id("node"))


@bp.post("/scan")
@login_required
def scan():  # type: ignore[no-untyped-def]
    form = ScanForm()
    raw_node = form.node_id.data or ""
    node_id = int(raw_node) if raw_node.isdigit() and len(raw_node) < 12 else None
    if not form.validate_on_submit():
        return _page(form, node_id=node_id, status=422)
    try:
        done = desk.scan_at_node(
            get_session(),
            actor(),
            form.label.data,
            form.kind.data,
            form.key.data,
            node_id=raw_node,
            note=form.note.data or "",
            scanned_at=form.scanned_at.data,
            vehicle_id=form.vehicle_id.data,
        )
    except ServiceError as exc:
        get_session().rollback()
        # Every refusal is said on the form, the scanned label kept: the staff scan the next one.
        message, status = form_error(form, exc, reraise=(401,), renamed={"idempotency_key": "key"})
        if form.key.errors:
            message = " ".join(str(e) for e in form.key.errors)
        form.key.data = checkout.new_idempotency_key()
        form.label.data = ""
        label = str(request.form.get("label", "")).strip()[:40]
        if message and label:
            message = f"{label}: {message}"
        return _page(form, node_id=node_id, error=message, status=status)
    number = done.scan.shipment.sub_order.number
    what = scan_kind_label(done.scan.kind)
    if done.applied:
        flash(gettext("%(label)s: %(kind)s. Scanned.", label=number, kind=what), "success")
    else:
        flash(
            gettext("%(label)s was scanned already (%(kind)s): nothing changed.", label=number, kind=what),
            "info",
        )
    return redirect(
        url_for(".index", node=node_id, kind=form.kind.data, vehicle=form.vehicle_id.data or None)
    )


@bp.get("/parcels/<label>/label.pdf")
@login_required
def label_pdf(label: str):  # type: ignore[no-untyped-def]
    found = desk.parcel_label(get_session(), actor(), label)  # 404 unless they may print it
    with force_locale("zh_Hans_CN"):  # printed for couriers and counters in Guangdong
        body = labels.render(found)
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="label-{found.label}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
