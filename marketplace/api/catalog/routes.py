"""Catalog API: categories, listings (create, read, change, price and stock, status) and their
photos. Prices are integer fen.

Reads of published listings are public. Everything else needs a bearer token (never a browser
session: the API takes no CSRF token) and the scope the services check: sellers their own
listings, village agents those of farmers who gave them their consent, admins any.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from marketplace.api.catalog.schemas import (
    CategorySchema,
    MyProductsQuerySchema,
    PhotoSchema,
    PhotoUploadSchema,
    PriceStockSchema,
    ProductCreateSchema,
    ProductPatchSchema,
    ProductSchema,
    StatusSchema,
)
from marketplace.api.common import BEARER, token_required
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import media_storage
from services import catalog, media

blp = Blueprint("api_catalog", __name__, description="Catalog: categories, listings and their photos")
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 64},
    "description": "A key of the client's choice: repeating the request returns the product the first made",
}


def photo_sized(view: Callable[..., Any]) -> Callable[..., Any]:
    """Room in the request for a photo up to twice MAX_UPLOAD_BYTES, set before the body is read:
    a photo over the limit gets the service's clear message, a far larger body a 413."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        limit = current_app.config["MAX_UPLOAD_BYTES"]
        request.max_content_length = max(current_app.config.get("MAX_CONTENT_LENGTH") or 0, 2 * limit + 65536)
        return view(*args, **kwargs)

    return wrapper


def _listing(body: dict[str, Any]) -> dict[str, Any]:
    if "certifications" in body:
        body["certifications"] = tuple((c["kind"], c["number"]) for c in body["certifications"] or ())
    return body


@blp.route("/categories", methods=["GET"])
@blp.response(200, CategorySchema(many=True))
def list_categories():  # type: ignore[no-untyped-def]
    """The category tree, parents first; listings go in the categories that have a parent."""
    return catalog.categories(get_session())


@blp.route("/products", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ProductCreateSchema)
@blp.response(201, ProductSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a seller, or an agent without the farmer's consent")
@blp.alt_response(409, description="The seller profile is not filled in yet")
@blp.alt_response(422, description="Invalid fields (see errors)")
def create_product(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """List a product, for oneself or (village agents) for a consenting farmer."""
    key = request.headers.get("Idempotency-Key") or body.pop("idempotency_key", None)
    body.pop("idempotency_key", None)
    seller_id = body.pop("seller_id", None)
    publish = body.pop("publish", True)
    data = catalog.ListingInput(**_listing(body))
    return catalog.create_product(
        get_session(), actor(), data, seller_id=seller_id, publish=publish, idempotency_key=key
    )


@blp.route("/products/<int:product_id>", methods=["GET"])
@blp.doc(security=[{}, *BEARER])
@blp.response(200, ProductSchema)
@blp.alt_response(404, description="No such product, or a draft or paused one of someone else's")
def get_product(product_id: int):  # type: ignore[no-untyped-def]
    """A listing: anyone sees it on sale or sold out; its seller (and their agent) in any status."""
    return catalog.visible_product(get_session(), actor(), product_id)


@blp.route("/products/<int:product_id>", methods=["PATCH"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ProductPatchSchema)
@blp.response(200, ProductSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the seller, their agent or an admin")
@blp.alt_response(404, description="No such product")
@blp.alt_response(422, description="Invalid fields (see errors)")
def update_product(body: dict[str, Any], product_id: int):  # type: ignore[no-untyped-def]
    """Change some fields of a listing; the others stay as they are."""
    return catalog.patch_product(get_session(), actor(), product_id, _listing(body))


@blp.route("/products/<int:product_id>/status", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(StatusSchema)
@blp.response(200, ProductSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the seller, their agent or an admin")
@blp.alt_response(409, description="Not a possible move from the current status")
@blp.alt_response(422, description="No stock to put on sale")
def set_status(body: dict[str, Any], product_id: int):  # type: ignore[no-untyped-def]
    """Publish (active), pause (paused) or resume (active) a listing; sold_out follows the stock."""
    return catalog.set_status(get_session(), actor(), product_id, body["status"])


@blp.route("/products/<int:product_id>/price-stock", methods=["PUT"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(PriceStockSchema)
@blp.response(200, ProductSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the seller, their agent or an admin")
@blp.alt_response(422, description="Out of range")
def set_price_and_stock(body: dict[str, Any], product_id: int):  # type: ignore[no-untyped-def]
    """Set the price (fen) and/or the stock: absolute values, so a repeated request changes nothing."""
    return catalog.set_price_and_stock(
        get_session(), actor(), product_id, price_fen=body.get("price_fen"), stock=body.get("stock")
    )


@blp.route("/me/products", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(MyProductsQuerySchema, location="query")
@blp.response(200, ProductSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="seller_id of a farmer who gave the caller no consent")
def my_products(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The caller's listings (or, for a village agent, a consenting farmer's), newest first."""
    return catalog.listings_of(get_session(), actor(), seller_id=args.get("seller_id"))


@blp.route("/products/<int:product_id>/photos", methods=["POST"])
@photo_sized
@token_required
@blp.doc(security=BEARER)
@blp.arguments(PhotoUploadSchema, location="files")
@blp.response(201, PhotoSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the seller, their agent or an admin")
@blp.alt_response(413, description="Far over the size limit")
@blp.alt_response(422, description="Not a photo, too large, too many pixels, or already 6 photos")
def add_photo(files: dict[str, Any], product_id: int):  # type: ignore[no-untyped-def]
    """Add a photo (multipart field "photo"): checked by its content, re-encoded without metadata."""
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    data = files["photo"].read(limit + 1)
    return media.add_photo(get_session(), media_storage(), actor(), product_id, data, max_bytes=limit)


@blp.route("/products/<int:product_id>/photos/<int:photo_id>", methods=["DELETE"])
@token_required
@blp.doc(security=BEARER)
@blp.response(204)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not the seller, their agent or an admin")
@blp.alt_response(404, description="No such photo on this product")
def delete_photo(product_id: int, photo_id: int) -> None:
    """Remove a photo from a listing."""
    media.remove_photo(get_session(), media_storage(), actor(), product_id, photo_id)
