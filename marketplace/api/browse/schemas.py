"""Marshmallow schemas of the browse API. Shapes only: services.browse checks the rules."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from domain import (
    MAX_PRICE_FEN,
    CertificationKind,
    ProductStatus,
    SellerKind,
    StorageClass,
    Unit,
)
from marketplace.api.common import BaseSchema, Id
from marketplace.api.places.schemas import PlaceSchema
from services import browse, catalog

_ERRORS = {
    "required": _l("This field is required."),
    "null": _l("This field is required."),
    "invalid": _l("Not a valid value."),
}
SORTS = [s.value for s in browse.Sort if s != browse.Sort.RELEVANCE]


def _choice(values: list[str], **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf(values, error=_l("Choose one of: %(choices)s.", choices=", ".join(values))),
        error_messages=_ERRORS,
        **kwargs,
    )


def _price(**kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=False,
        validate=validate.Range(0, MAX_PRICE_FEN, error=_l("Enter a price between 0 and 10000000 fen.")),
        error_messages={**_ERRORS, "invalid": _l("Enter a whole number of fen.")},
        **kwargs,
    )


class ProductQuerySchema(BaseSchema):
    category = fields.String(
        validate=validate.Regexp(catalog.SLUG_RE, error=_l("Not a valid category slug.")),
        error_messages=_ERRORS,
        metadata={"description": "Category slug; a top category includes its children", "example": "citrus"},
    )
    county = fields.String(
        validate=validate.Regexp(re.compile(r"^\d{6}$", re.ASCII), error=_l("Not a valid county code.")),
        error_messages=_ERRORS,
        metadata={"description": "County of origin (6-digit division code)", "example": "441403"},
    )
    certification = _choice([c.value for c in CertificationKind])
    storage = _choice([s.value for s in StorageClass])
    price_min = _price(metadata={"description": "Lowest price in fen (1 yuan = 100 fen)"})
    price_max = _price(metadata={"description": "Highest price in fen"})
    seller = Id(strict=False, metadata={"description": "Seller id"})
    campaign_id = Id(
        strict=False,
        metadata={
            "description": "Only the products with an approved sign-up in this campaign (a published, "
            "not cancelled one: scheduled, running or ended; else 422)"
        },
    )
    sort = _choice(SORTS, load_default="new")
    after = fields.String(
        validate=validate.Length(max=200),
        error_messages=_ERRORS,
        metadata={"description": "The next_cursor of the previous page"},
    )
    limit = fields.Integer(
        load_default=browse.DEFAULT_LIMIT,
        validate=validate.Range(1, browse.MAX_LIMIT),
        error_messages=_ERRORS,
    )


class CardPhotoSchema(BaseSchema):
    key = fields.String()
    width = fields.Integer()
    height = fields.Integer()


class ProductCardSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String(metadata={"example": "梅州金柚 梅县金柚 2个装"})
    price_fen = fields.Integer(metadata={"example": 5980})
    unit = fields.Enum(Unit, by_value=True)
    net_weight_g = fields.Integer()
    status = fields.Enum(ProductStatus, by_value=True, metadata={"description": "active or sold_out"})
    storage_class = fields.Enum(StorageClass, by_value=True)
    presale = fields.Boolean()
    ships_from = fields.Date(allow_none=True)
    seller_id = fields.Integer()
    shop_name = fields.String(allow_none=True)
    county_code = fields.String()
    county_name = fields.String(allow_none=True)
    village_name = fields.String(allow_none=True)
    geographical_indication = fields.Boolean(attribute="has_gi")
    photo = fields.Nested(CardPhotoSchema, allow_none=True)


class ProductPageSchema(BaseSchema):
    items = fields.List(fields.Nested(ProductCardSchema))
    next_cursor = fields.String(
        allow_none=True, metadata={"description": "Pass as `after` for the next page; null on the last"}
    )


class SellerPageSchema(BaseSchema):
    id = fields.Integer(attribute="profile.user_id")
    shop_name = fields.String(attribute="profile.shop_name")
    kind = fields.Enum(SellerKind, by_value=True, attribute="profile.kind")
    intro = fields.String(attribute="profile.intro")
    division_code = fields.String(attribute="profile.division_code")
    path = fields.List(fields.Nested(PlaceSchema), metadata={"description": "City → county → town → village"})
    home_point_id = fields.Integer(
        attribute="profile.home_point_id",
        allow_none=True,
        metadata={"description": "The village service point the seller hands goods in at"},
    )
    products = fields.Nested(ProductPageSchema, metadata={"description": "The first page of listings"})
