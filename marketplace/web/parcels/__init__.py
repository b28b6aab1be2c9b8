from flask import Blueprint

bp = Blueprint("parcels", __name__)

from marketplace.web.parcels import routes  # noqa: E402,F401
