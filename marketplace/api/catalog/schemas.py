"""Marshmallow schemas of the catalog API. Shapes only: the services check the rules (prices and
stocks in range, no HTML in names, harvest window order, scope), so web and API say the same."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from domain import (
    MAX_PRICE_FEN,
    MAX_STOCK,
    CategoryFlow,
    CertificationKind,
    ProductStatus,
    StorageClass,
    Unit,
)
from marketplace.api.common import BaseSchema, Id
from services import media

_ERRORS = {
    "required": _l("This field is required."),
    "null": _l("This field is required."),
    "invalid": _l("Not a valid value."),
}
_INT_ERRORS = {**_ERRORS, "invalid": _l("Enter a whole number.")}
_DATE_ERRORS = {**_ERRORS, "invalid": _l("Enter a date such as 2026-07-01.")}


def _as_lists(messages: Any) -> Any:
    """Every field's messages as a list of strings (a lazy message alone is not a list)."""
    if isinstance(messages, dict):
        return {k: _as_lists(v) for k, v in messages.items()}
    if isinstance(messages, list):
        return [_as_lists(m) if isinstance(m, dict | list) else str(m) for m in messages]
    return [str(messages)]


class ListedErrorsSchema(BaseSchema):
    """Request schemas whose every field error is a list of strings."""

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        raise ValidationError(_as_lists(error.messages), data=data, valid_data=error.valid_data)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(error_messages=_ERRORS, **kwargs)


def _int(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, error_messages=_INT_ERRORS, **kwargs)


def _enum(enum: type, **kwargs: Any) -> fields.Enum:
    return fields.Enum(
        enum,
        by_value=True,
        error_messages={**_ERRORS, "unknown": _l("Not one of the allowed values.")},
        **kwargs,
    )


def _date(**kwargs: Any) -> fields.Date:
    return fields.Date(error_messages=_DATE_ERRORS, allow_none=True, **kwargs)


# --- responses -----------------------------------------------------------------------------------


class CategorySchema(Schema):
    id = fields.Integer()
    slug = fields.String(metadata={"example": "pomelo"})
    parent_id = fields.Integer(
        allow_none=True, metadata={"description": "Listings go in categories with a parent"}
    )
    name = fields.String(metadata={"example": "柚子"})
    name_en = fields.String(metadata={"example": "Pomelos"})
    flow = fields.Enum(
        CategoryFlow, by_value=True, metadata={"description": "farm: to the city; goods: to villages"}
    )
    position = fields.Integer()


class CertificationSchema(ListedErrorsSchema):
    kind = _enum(CertificationKind, required=True)
    number = _text(
        required=True, metadata={"description": "The certificate number", "example": "LB-45-2107070712A"}
    )


def _absolute(url: str) -> str:
    # BASE_URL, never the request's Host header (marketplace.external_url).
    from marketplace import external_url

    return url if "://" in url else external_url(url)


class PhotoSchema(Schema):
    id = fields.Integer()
    position = fields.Integer(metadata={"description": "0 is the main photo"})
    width = fields.Integer(metadata={"description": "Of the photo as taken, upright"})
    height = fields.Integer()
    sizes = fields.Method(
        "get_sizes",
        metadata={
            "description": "The stored sizes, smallest first: width, height and the WebP and JPEG URLs",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "webp": {"type": "string", "format": "uri"},
                    "jpeg": {"type": "string", "format": "uri"},
                },
            },
        },
    )

    def get_sizes(self, photo: Any) -> list[dict[str, Any]]:
        prefix = current_app.config["MEDIA_URL_PREFIX"]
        out = []
        for w in media.variant_widths(photo.width):
            out.append(
                {
                    "width": w,
                    "height": max(1, round(photo.height * w / photo.width)),
                    "webp": _absolute(f"{prefix}/{media.variant_key(photo.key, w, 'webp')}"),
                    "jpeg": _absolute(f"{prefix}/{media.variant_key(photo.key, w, 'jpg')}"),
                }
            )
        return out


class SellerRefSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()


class CategoryRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    name_en = fields.String()


class ProductSchema(Schema):
    id = fields.Integer()
    seller_id = fields.Integer(
        metadata={"description": "The seller of record (a farmer, also when an agent lists)"}
    )
    seller = fields.Nested(SellerRefSchema)
    category_id = fields.Integer()
    category = fields.Nested(CategoryRefSchema)
    name = fields.String()
    description = fields.String()
    origin_code = fields.String(metadata={"description": "Village (or county) it comes from"})
    origin_name = fields.Function(lambda p: p.origin.name if p.origin is not None else None, allow_none=True)
    county_code = fields.String()
    unit = fields.Enum(
        Unit, by_value=True, metadata={"description": "jin 斤 (500 g), kg 公斤, box 箱, bag 袋, piece 个"}
    )
    net_weight_g = fields.Integer(metadata={"description": "Net weight of one unit in grams"})
    price_fen = fields.Integer(
        metadata={"description": "Price of one unit in fen (1/100 yuan)", "example": 1250}
    )
    stock = fields.Integer()
    storage_class = fields.Enum(
        StorageClass, by_value=True, metadata={"description": "ambient; chilled 0–4 °C; frozen ≤ −18 °C"}
    )
    harvest_start = fields.Date(allow_none=True)
    harvest_end = fields.Date(allow_none=True)
    presale = fields.Boolean(metadata={"description": "Sold before the harvest, shipped from ships_from"})
    ships_from = fields.Date(allow_none=True)
    status = fields.Enum(ProductStatus, by_value=True)
    sales_count = fields.Integer()
    certifications = fields.List(fields.Nested(CertificationSchema))
    photos = fields.List(fields.Nested(PhotoSchema))
    listed_by_id = fields.Integer(metadata={"description": "Who typed it in: the seller, or a village agent"})
    consent_id = fields.Integer(
        allow_none=True, metadata={"description": "The farmer's consent the agent listed under"}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)


# --- requests ------------------------------------------------------------------------------------


class _ListingFields(ListedErrorsSchema):
    name = _text(metadata={"description": "At most 60 characters, no HTML", "example": "梅县金柚"})
    category_id = Id(metadata={"description": "A category with a parent (GET /categories)"})
    unit = _enum(Unit)
    price_fen = _int(
        metadata={"minimum": 1, "maximum": MAX_PRICE_FEN, "description": "In fen", "example": 1250}
    )
    stock = _int(metadata={"minimum": 0, "maximum": MAX_STOCK})
    description = _text(metadata={"description": "At most 2000 characters, no HTML"})
    net_weight_g = _int(
        allow_none=True, metadata={"description": "Grams in one unit; required for box, bag and piece"}
    )
    storage_class = _enum(StorageClass)
    origin_code = _text(allow_none=True, metadata={"description": "Default: the seller's village"})
    harvest_start = _date()
    harvest_end = _date()
    presale = fields.Boolean(error_messages={**_ERRORS, "invalid": _l("Choose true or false.")})
    ships_from = _date(metadata={"description": "Required for a pre-sale"})
    certifications = fields.List(
        fields.Nested(CertificationSchema), error_messages={**_ERRORS, "invalid": _l("Enter a list.")}
    )


class ProductCreateSchema(_ListingFields):
    name = _text(
        required=True, metadata={"description": "At most 60 characters, no HTML", "example": "梅县金柚"}
    )
    category_id = Id(required=True)
    unit = _enum(Unit, required=True)
    price_fen = _int(required=True, metadata={"minimum": 1, "maximum": MAX_PRICE_FEN, "example": 1250})
    stock = _int(required=True, metadata={"minimum": 0, "maximum": MAX_STOCK})
    seller_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "Village agents: the consenting farmer to list for (the seller of record)"},
    )
    publish = fields.Boolean(
        load_default=True,
        error_messages={**_ERRORS, "invalid": _l("Choose true or false.")},
        metadata={"description": "false: keep it as a draft"},
    )
    idempotency_key = _text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64, error=_l("At most 64 characters.")),
        metadata={
            "description": "Or the Idempotency-Key header: a repeated request returns the same product"
        },
    )


class ProductPatchSchema(_ListingFields):
    """Only the fields sent change."""


class StatusSchema(ListedErrorsSchema):
    status = _enum(
        ProductStatus, required=True, metadata={"description": "active (publish, resume) or paused"}
    )


class PriceStockSchema(ListedErrorsSchema):
    price_fen = _int(allow_none=True, metadata={"minimum": 1, "maximum": MAX_PRICE_FEN})
    stock = _int(allow_none=True, metadata={"minimum": 0, "maximum": MAX_STOCK})

    @validates_schema
    def one_of_them(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("price_fen") is None and data.get("stock") is None:
            raise ValidationError(_l("Give price_fen, stock or both."), "price_fen")


class MyProductsQuerySchema(ListedErrorsSchema):
    # A query string is text: "12" is the number 12 here.
    seller_id = Id(strict=False, metadata={"description": "Village agents: a consenting farmer's listings"})


class PhotoUploadSchema(ListedErrorsSchema):
    photo = Upload(
        required=True,
        error_messages=_ERRORS,
        metadata={
            "description": "A JPEG, PNG or WebP photo; checked by its content, at most MAX_UPLOAD_BYTES"
        },
    )
