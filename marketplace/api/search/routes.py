"""Search API: products by Chinese, full pinyin or initials, and suggestions as the user types.

Public reads. Without JavaScript the search form submits to the browse page (GET ?q=), which
composes the same search; these endpoints serve the enhanced form.
"""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint

from marketplace.api.search.schemas import SearchQuerySchema, SearchResultSchema, SuggestQuerySchema
from marketplace.db import get_session
from services import browse, search

blp = Blueprint("api_search", __name__, url_prefix="/search", description="Product search")


@blp.route("", methods=["GET"])
@blp.arguments(SearchQuerySchema, location="query", as_kwargs=True)
@blp.response(200, SearchResultSchema)
@blp.alt_response(422, description="q, the limit or the campaign is not valid")
def search_products(q: str, limit: int, campaign_id: int | None = None):  # type: ignore[no-untyped-def]
    """Active products matching q, best first, names highlighted; `corrected` when a typo was fixed.
    With `campaign_id`, only that campaign's products."""
    results = browse.search_hits(get_session(), q, limit, campaign_id=campaign_id)
    return {"corrected": results.corrected, "products": [(hit, results.terms) for hit in results.hits]}


@blp.route("/suggest", methods=["GET"])
@blp.arguments(SuggestQuerySchema, location="query", as_kwargs=True)
@blp.response(200, {"type": "array", "items": {"type": "string"}, "example": ["增城挂绿荔枝"]})
def suggest(q: str, limit: int):  # type: ignore[no-untyped-def]
    """Product names for what has been typed so far (Chinese, pinyin prefix or initials)."""
    return jsonify(search.suggest(get_session(), q, limit))
