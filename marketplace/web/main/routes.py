"""Home (the shop front), language switch and each role's workspace."""

from __future__ import annotations

from flask import abort, current_app, g, redirect, render_template, request, session
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.extensions import csrf
from marketplace.web.forms import safe_next
from marketplace.web.main import bp
from marketplace.web.shop.cache import cached
from marketplace.web.shop.routes import shop_front
from services import places, workspace


@bp.get("/")
def home():  # type: ignore[no-untyped-def]
    """The shop front: search, categories and the newest products; then the roles, compact."""
    user = actor()
    session = get_session()
    return render_template(
        "main/home.html",
        front=shop_front(),
        stats=cached("stats", (), lambda: places.network_summary(session)),
        workspaces=workspace.workspaces_for(user) if user else [],
    )


@bp.post("/lang")
@csrf.exempt  # a forged switch only changes the language; without a token every page a
# visitor without a session sees is the same for everyone, and so can be cached whole
def set_language():  # type: ignore[no-untyped-def]
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        abort(400)
    session["lang"] = lang
    g.lang_cookie = lang
    return redirect(safe_next(request.form.get("next"), "main.home"))


@bp.get("/workspace")
@login_required
def workspace_index():  # type: ignore[no-untyped-def]
    user = actor()
    spaces = workspace.workspaces_for(user)
    return render_template("main/workspace.html", workspaces=spaces)
