"""Placeholder endpoints; the accounts work replaces them."""

from marketplace.web.auth import bp


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    return "login"


@bp.route("/register", methods=["GET", "POST"])
def register():  # type: ignore[no-untyped-def]
    return "register"


@bp.get("/me")
def profile():  # type: ignore[no-untyped-def]
    return "me"


@bp.get("/users")
def manage_users():  # type: ignore[no-untyped-def]
    return "users"
