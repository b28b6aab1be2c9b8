"""Marshmallow schemas of the places API. Shapes only: the services check the rules."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from domain import DivisionLevel, NodeKind
from marketplace.api.common import BaseSchema
from services import places

# Field errors in the user's language, like the rest of the API's messages.
_ERRORS = {
    "required": _l("This field is required."),
    "null": _l("This field is required."),
    "invalid": _l("Not a valid value."),
}
CODE_RE = re.compile(r"^\d{2,12}$", re.ASCII)
COUNTY_CODE_RE = re.compile(r"^\d{6}$", re.ASCII)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(error_messages=_ERRORS, **kwargs)


def _code(pattern: re.Pattern[str], **kwargs: Any) -> fields.String:
    return _text(validate=validate.Regexp(pattern, error=_l("Not a valid division code.")), **kwargs)


def _flag(**kwargs: Any) -> fields.Boolean:
    return fields.Boolean(error_messages={**_ERRORS, "invalid": _l("Choose true or false.")}, **kwargs)


def _number(**kwargs: Any) -> fields.Float:
    return fields.Float(
        allow_nan=False,
        error_messages={**_ERRORS, "invalid": _l("Enter a number."), "special": _l("Enter a number.")},
        **kwargs,
    )


# --- divisions ----------------------------------------------------------------------------


class PlaceSchema(BaseSchema):
    code = fields.String(metadata={"example": "441403"})
    name = fields.String(metadata={"example": "梅县区"})
    level = fields.Enum(DivisionLevel, by_value=True)


class DivisionSchema(PlaceSchema):
    parent_code = fields.String(allow_none=True, metadata={"example": "4414"})
    longitude = fields.Float(allow_none=True)
    latitude = fields.Float(allow_none=True)
    coordinates_approximate = fields.Boolean()


class DivisionDetailSchema(DivisionSchema):
    path = fields.List(
        fields.Nested(PlaceSchema), metadata={"description": "City → county → town → village, ending here"}
    )

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "path":
            return places.division_chain(obj)
        return super().get_attribute(obj, attr, default)


class DivisionQuerySchema(BaseSchema):
    parent_code = _code(
        CODE_RE, metadata={"description": "Children of this division; without it and level: the cities"}
    )
    level = fields.Enum(
        DivisionLevel,
        by_value=True,
        error_messages={**_ERRORS, "unknown": _l("Must be province, city, county, town or village.")},
        metadata={"description": "town and village need parent_code"},
    )


# --- nodes --------------------------------------------------------------------------------


class NodeRefSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    phone = fields.String()
    opening_hours = fields.String()


class _NodeSchema(BaseSchema):
    id = fields.Integer()
    kind = fields.Enum(NodeKind, by_value=True)
    name = fields.String()
    division_code = fields.String(metadata={"description": "Village (points) or county (centers)"})
    county_code = fields.String()
    path = fields.List(fields.Nested(PlaceSchema), metadata={"description": "City → … → the division"})
    address = fields.String()
    phone = fields.String(metadata={"description": "The published business phone"})
    opening_hours = fields.String(metadata={"example": "08:00-20:00"})
    description = fields.String()
    has_cold_storage = fields.Boolean()
    active = fields.Boolean()
    longitude = fields.Float(allow_none=True)
    latitude = fields.Float(allow_none=True)
    coordinates_approximate = fields.Boolean(
        metadata={
            "description": "True while the position is estimated (the county's, or the seed's estimate "
            "inside the town), not measured at the node"
        }
    )
    delivery_days = fields.String(
        metadata={"description": "ISO weekdays the vehicle comes (1 Monday … 7 Sunday)", "example": "135"}
    )
    cutoff_time = fields.Function(
        lambda n: _hhmm(n, "cutoff_time"),
        metadata={
            "description": "Orders by then (China time) go with the next delivery day",
            "example": "22:00",
        },
    )
    ready_time = fields.Function(
        lambda n: _hhmm(n, "ready_time"),
        metadata={"description": "Collect from then on a delivery day (China time)", "example": "14:00"},
    )

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if isinstance(obj, places.PlacedNode):
            if attr == "path":
                return obj.path
            obj = obj.node
        if attr == "path":
            return places.division_chain(obj.division)
        return super().get_attribute(obj, attr, default)


def _hhmm(obj: Any, name: str) -> str:
    node = obj.node if isinstance(obj, places.PlacedNode) else obj
    return str(getattr(node, name).strftime("%H:%M"))


class VillagePointSchema(_NodeSchema):
    county_center = fields.Nested(NodeRefSchema, allow_none=True)


class CountyCenterSchema(_NodeSchema):
    pass


class DistributionCenterSchema(_NodeSchema):
    served_counties = fields.List(fields.Nested(PlaceSchema))


class NodeSchema(_NodeSchema):
    """Any kind of node, as the write endpoints answer."""

    county_center_id = fields.Integer(allow_none=True)
    served_counties = fields.List(fields.Nested(PlaceSchema))


class VillagePointQuerySchema(BaseSchema):
    county_code = _code(COUNTY_CODE_RE, metadata={"description": "Only this county's points"})


class _NodeWriteSchema(BaseSchema):
    address = _text(metadata={"example": "松口镇大黄村委会旁"})
    phone = _text(metadata={"description": "Mobile or landline, e.g. 0753-2222333"})
    opening_hours = _text(metadata={"example": "08:00-20:00"})
    description = _text()
    has_cold_storage = _flag()
    longitude = _number(allow_none=True, metadata={"description": "Both or neither; empty: the county's"})
    latitude = _number(allow_none=True)
    delivery_days = _text(metadata={"description": "ISO weekday digits, e.g. 135 (county staff, admins)"})
    cutoff_time = _text(metadata={"example": "22:00"})
    ready_time = _text(metadata={"example": "14:00"})
    served_county_codes = fields.List(
        _code(COUNTY_CODE_RE),
        error_messages={**_ERRORS, "invalid": _l("Enter a list of county codes.")},
        metadata={"description": "Distribution centers only: the counties served"},
    )


class NodeCreateSchema(_NodeWriteSchema):
    kind = fields.Enum(
        NodeKind,
        by_value=True,
        required=True,
        error_messages={
            **_ERRORS,
            "unknown": _l("Must be county_center, village_point or distribution_center."),
        },
    )
    division_code = _code(
        CODE_RE, required=True, metadata={"description": "A village for a point, a county for a center"}
    )
    name = _text(required=True, metadata={"example": "大黄村电商服务站"})


class NodeUpdateSchema(_NodeWriteSchema):
    name = _text()
    active = _flag()
