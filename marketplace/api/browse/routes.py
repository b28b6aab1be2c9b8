"""Browse API: product lists (filters, sort, keyset pages) and seller pages. Public reads."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from marketplace.api.browse.schemas import ProductPageSchema, ProductQuerySchema, SellerPageSchema
from marketplace.db import get_session
from services import browse

blp = Blueprint("api_browse", __name__, description="Browse the catalog: products and sellers")


@blp.route("/products", methods=["GET"])
@blp.arguments(ProductQuerySchema, location="query", as_kwargs=True)
@blp.response(200, ProductPageSchema)
@blp.alt_response(
    422,
    description="A filter (or a campaign buyers cannot see), the order, the limit or the cursor is not valid",
)
def list_products(**query: Any):  # type: ignore[no-untyped-def]
    """Products buyers may see (active, and sold out), newest first by default.

    Pages are cut with a cursor: pass a page's `next_cursor` as `after` to get the next one.
    """
    return browse.find_products(
        get_session(),
        category_slug=query.get("category"),
        county_code=query.get("county"),
        certification=query.get("certification"),
        storage_class=query.get("storage"),
        price_min_fen=query.get("price_min"),
        price_max_fen=query.get("price_max"),
        seller_id=query.get("seller"),
        campaign_id=query.get("campaign_id"),
        sort=query["sort"],
        after=query.get("after"),
        limit=query["limit"],
    )


@blp.route("/sellers/<int:seller_id>", methods=["GET"])
@blp.response(200, SellerPageSchema)
@blp.alt_response(404, description="No seller with this id")
def get_seller(seller_id: int):  # type: ignore[no-untyped-def]
    """A seller's public profile, with the first page of their listings (more via /products?seller=)."""
    return browse.seller_page(get_session(), seller_id)
