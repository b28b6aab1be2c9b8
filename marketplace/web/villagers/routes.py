"""The villager pages of a village agent (/agent/villagers): find a villager by name, phone or
pinyin initials, register one with their consent, see one and change the notes. County staff may
open a point's list with ?point=<id>. Plain forms: every page works without JavaScript."""

from __future__ import annotations

import re
import uuid

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor, auth_policy, client_ip
from marketplace.db import get_session
from marketplace.gateways import sms_gateway
from marketplace.web.auth.routes import sms_code_limit
from marketplace.web.forms import form_error, query_id
from marketplace.web.villagers import bp
from marketplace.web.villagers.forms import NotesForm, VillagerForm
from services import places, villagers
from services.errors import ServiceError

KEY_RE = re.compile(r"^[0-9a-f]{32}$", re.ASCII)


@bp.route("/", methods=["GET", "POST"])
@login_required
@sms_code_limit
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    q = request.args.get("q", "")[:40]
    point_id = query_id("point")
    found = villagers.list_villagers(session, user, q=q, point_id=point_id)  # 403: not an agent or staff
    # The points the agent registers for (county staff looking at a point register nobody).
    groups = [g for g in _groups(user) if point_id is None or g.point.id == point_id]
    form = VillagerForm()
    form.village_code.choices = [("", gettext("— choose —"))] + [  # type: ignore[assignment]
        (d.code, d.short_name) for g in groups for d in g.villages
    ]
    if not KEY_RE.match(form.key.data or ""):
        form.key.data = uuid.uuid4().hex
    notice = error = None
    status = 200
    if request.method == "POST" and groups:
        try:
            if form.send_code.data:
                phone = villagers.request_consent_code(
                    session, sms_gateway(), user, form.phone.data or "", auth_policy(), ip=client_ip()
                )
                minutes = max(1, current_app.config["SMS_CODE_TTL_SECONDS"] // 60)
                notice = gettext(
                    "We sent a 6-digit code to %(phone)s. If the villager agrees, they read it out to "
                    "you. It is valid for %(n)d minutes.",
                    phone=phone,
                    n=minutes,
                )
                form.consent_method.data = "sms"
            elif form.validate():
                village = form.village_code.data or ""
                villager = villagers.register_villager(
                    session,
                    user,
                    villagers.VillagerInput(
                        name=form.name.data or "",
                        village_code=village,
                        phone=form.phone.data or "",
                        notes=form.notes.data or "",
                        consent_method=form.consent_method.data or "",
                        code=form.code.data or "",
                    ),
                    point_id=places.enrollment_point(groups, village),
                    idempotency_key=form.key.data,
                    policy=auth_policy(),
                )
                flash(gettext("%(name)s is registered.", name=villager.name), "success")
                return redirect(url_for(".show", villager_id=villager.id))
            else:
                status = 422
        except ServiceError as exc:
            error, status = form_error(form, exc, reraise=(401, 403, 404))
    views = [villagers.present(v, user) for v in found]
    return render_template(
        "villagers/index.html",
        villagers=views,
        q=q,
        form=form,
        can_register=bool(groups),
        notice=notice,
        error=error,
        dev_outbox=current_app.config.get("DEV_PAGES"),
    ), status


def _groups(user):  # type: ignore[no-untyped-def]
    try:
        return places.enrollment_villages(get_session(), user)
    except ServiceError:
        return []


@bp.route("/<int:villager_id>", methods=["GET", "POST"])
@login_required
def show(villager_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    villager = villagers.get_villager(session, user, villager_id)  # 404 for those who may not view
    form = NotesForm(notes=villager.notes) if request.method == "GET" else NotesForm()
    error = None
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                villagers.update_notes(session, user, villager_id, form.notes.data or "")
            except ServiceError as exc:
                error, status = form_error(form, exc)
            else:
                flash(gettext("The notes are saved."), "success")
                return redirect(url_for(".show", villager_id=villager_id))
        else:
            status = 422
    return render_template(
        "villagers/show.html",
        villager=villagers.present(villager, user),
        can_manage=villagers.can_manage(user, villager),
        form=form,
        error=error,
    ), status
