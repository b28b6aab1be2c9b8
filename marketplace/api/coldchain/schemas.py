"""Shapes of the cold-chain API: a logger's (or a gateway's) batch of temperature readings and
each item's fate (services/logistics/readings.py reads the items, services/logistics/coldchain.py
stores them)."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.api.catalog.schemas import ListedErrorsSchema
from marketplace.api.common import BaseSchema
from services.logistics.readings import MAX_BATCH_ITEMS


class ReadingsInSchema(ListedErrorsSchema):
    readings = fields.List(
        fields.Raw(
            metadata={
                "type": "object",
                "description": 'One reading: {"logger": "<serial>", "at": "2026-11-26T14:30:00+08:00", '
                '"celsius": 3.5}',
            }
        ),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH_ITEMS),
        metadata={"description": f"At most {MAX_BATCH_ITEMS} readings, any order, any of your loggers"},
    )


class ItemErrorSchema(BaseSchema):
    index = fields.Integer(dump_only=True, metadata={"description": "The item's 0-based index"})
    message = fields.String(dump_only=True)


class ExcursionOutSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    logger = fields.String(dump_only=True)
    started_at = fields.DateTime(dump_only=True)
    ended_at = fields.DateTime(dump_only=True)
    worst_celsius = fields.Float(dump_only=True)
    lots = fields.Integer(dump_only=True, metadata={"description": "How many lots it marked"})


class ReadingsResultSchema(BaseSchema):
    accepted = fields.Integer(dump_only=True, metadata={"description": "Readings stored now"})
    duplicates = fields.Integer(dump_only=True, metadata={"description": "Already stored: re-sent"})
    error_count = fields.Integer(dump_only=True)
    errors = fields.List(
        fields.Nested(ItemErrorSchema),
        dump_only=True,
        metadata={"description": "The first 100 refused items"},
    )
    excursions = fields.List(
        fields.Nested(ExcursionOutSchema), dump_only=True, metadata={"description": "New excursions found"}
    )
