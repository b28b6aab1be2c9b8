"""browse API."""

from flask_smorest import Blueprint

blp = Blueprint("api_browse", __name__, description="browse")
