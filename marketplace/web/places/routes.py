"""Placeholder endpoints; the places work replaces them."""

from marketplace.web.places import bp


@bp.get("/points")
def village_points():  # type: ignore[no-untyped-def]
    return "points"


@bp.get("/manage/nodes")
def manage_nodes():  # type: ignore[no-untyped-def]
    return "nodes"


@bp.route("/manage/nodes/<int:node_id>", methods=["GET", "POST"])
def edit_node(node_id: int):  # type: ignore[no-untyped-def]
    return "node"
