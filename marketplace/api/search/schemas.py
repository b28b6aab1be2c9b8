"""Marshmallow schemas of the search API."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from marketplace.api.common import BaseSchema, Id
from services import search

MAX_QUERY = 50

_ERRORS = {
    "required": _l("This field is required."),
    "null": _l("This field is required."),
    "invalid": _l("Not a valid value."),
}


def _query(description: str, example: str) -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_QUERY),
        error_messages=_ERRORS,
        metadata={"description": description, "example": example},
    )


class SearchQuerySchema(BaseSchema):
    q = _query("Chinese, full pinyin or initials (荔枝, lizhi, lz)", "lizhi")
    campaign_id = Id(
        strict=False,
        metadata={
            "description": "Only the products with an approved sign-up in this campaign (a published, "
            "not cancelled one; else 422)"
        },
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=50),
        error_messages=_ERRORS,
        metadata={"example": 20},
    )


class SuggestQuerySchema(BaseSchema):
    q = _query("What has been typed so far", "liz")
    limit = fields.Integer(load_default=8, validate=validate.Range(min=1, max=20), error_messages=_ERRORS)


class SearchHitSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String(metadata={"example": "增城挂绿荔枝"})
    name_html = fields.String(
        metadata={
            "description": "The name, HTML-escaped, matches in <mark>",
            "example": "增城挂绿<mark>荔枝</mark>",
        }
    )
    price_fen = fields.Integer(metadata={"description": "Price of one unit in fen (1/100 yuan)"})
    unit = fields.String(metadata={"example": "jin"})
    county_name = fields.String(metadata={"description": "The county of origin", "example": "增城区"})
    rank = fields.Float(metadata={"description": "Relevance, higher is better"})

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        hit, terms = obj
        if attr == "name_html":
            return str(search.highlight(hit.product.name, terms))
        if attr == "unit":
            return hit.product.unit.value
        if attr in ("county_name", "rank"):
            return getattr(hit, attr)
        return getattr(hit.product, attr)


class SearchResultSchema(BaseSchema):
    corrected = fields.String(
        allow_none=True,
        metadata={"description": "The query searched instead, when the typed one found nothing (a typo)"},
    )
    products = fields.List(fields.Nested(SearchHitSchema))
