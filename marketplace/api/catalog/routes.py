"""catalog API."""

from flask_smorest import Blueprint

blp = Blueprint("api_catalog", __name__, description="catalog")
