from flask import Blueprint

bp = Blueprint("cart", __name__)

from marketplace.web.cart import routes  # noqa: E402,F401
