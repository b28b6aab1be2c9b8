"""Pages of the network of places: the public directory of village points, and the staff pages
that list, open and edit county centers, village points and distribution centers."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import NodeKind
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.forms import show_service_error
from marketplace.web.places import bp
from marketplace.web.places.forms import CountyFilterForm, KindFilterForm, NodeForm
from services import places
from services.errors import Conflict, ValidationError

PICKER_PARAMS = ("city", "county", "town", "village")


@bp.get("/points")
def village_points():  # type: ignore[no-untyped-def]
    session = get_session()
    form = CountyFilterForm(places.counties_with_points(session), formdata=request.args)
    county = ""
    if request.args.get("county"):
        if form.validate():
            county = form.county.data
        else:
            form.county.errors = [gettext("Choose a county from the list.")]
    entries = places.village_point_directory(session, county or None)
    return render_template("places/points.html", form=form, entries=entries, county=county)


@bp.get("/points/<int:point_id>")
def village_point(point_id: int):  # type: ignore[no-untyped-def]
    entry = places.public_village_point(get_session(), point_id)
    return render_template("places/point.html", entry=entry, point=entry.node)


@bp.get("/manage/nodes")
@login_required
def manage_nodes():  # type: ignore[no-untyped-def]
    form = KindFilterForm(formdata=request.args)
    kind = None
    if request.args.get("kind"):
        if form.validate():
            kind = NodeKind(form.kind.data)
        else:
            form.kind.errors = [gettext("Choose from the list.")]
    user = actor()
    nodes = places.list_managed_nodes(get_session(), user, kind=kind)
    return render_template(
        "places/manage_nodes.html", form=form, nodes=nodes, new_kinds=places.creatable_kinds(user)
    )


@bp.route("/manage/nodes/new", methods=["GET", "POST"])
@login_required
def new_node():  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    # The division is picked level by level with plain GET forms (no JavaScript).
    picker = places.division_picker(
        session, user, request.args.get("kind"), {k: request.args.get(k, "") for k in PICKER_PARAMS}
    )
    is_dc = picker.kind == NodeKind.DISTRIBUTION_CENTER
    form = NodeForm()
    form.limit_to(places.OPERATOR_FIELDS | places.ADMIN_FIELDS, served_counties=is_dc, new=True)
    if is_dc:
        form.set_county_choices(places.counties_by_city(session))
    error = None
    if form.validate_on_submit():
        try:
            node = places.create_node(
                session, user, picker.kind, form.details(), served_county_codes=form.served() or ()
            )
        except (ValidationError, Conflict) as exc:
            error = show_service_error(form, exc)
        else:
            flash(gettext("%(name)s has been opened.", name=node.name), "success")
            return redirect(url_for(".edit_node", node_id=node.id))
    elif picker.division is not None:
        form.division_code.data = picker.division.code
    return render_template("places/new_node.html", picker=picker, form=form, error=error)


@bp.route("/manage/nodes/<int:node_id>", methods=["GET", "POST"])
@login_required
def edit_node(node_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    editor = places.node_editor(session, user, node_id)
    node = editor.node
    form = NodeForm(obj=node, served_county_codes=[c.code for c in node.served_counties])
    form.limit_to(editor.fields, served_counties=editor.can_change_served_counties, new=False)
    if editor.can_change_served_counties:
        form.set_county_choices(places.counties_by_city(session))
    error = None
    if form.validate_on_submit():
        try:
            places.update_node(session, user, node_id, form.details(), served_county_codes=form.served())
        except (ValidationError, Conflict) as exc:
            error = show_service_error(form, exc)
        else:
            flash(gettext("Saved."), "success")
            return redirect(url_for(".edit_node", node_id=node_id))
    return render_template("places/edit_node.html", editor=editor, node=node, form=form, error=error)
