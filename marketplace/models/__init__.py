"""Typed SQLAlchemy 2 models on one DeclarativeBase, one module per area."""

from .accounts import (
    ROLE_SCOPE,
    ApiToken,
    AuditEvent,
    Role,
    RoleGrant,
    SmsCode,
    SmsMessage,
    SmsPurpose,
    User,
)
from .base import Base, utcnow
from .places import (
    CODE_LENGTH,
    CountyServiceCenter,
    DistributionCenter,
    Division,
    DivisionLevel,
    Node,
    NodeKind,
    VillageServicePoint,
    distribution_center_counties,
)

__all__ = [
    "CODE_LENGTH",
    "ROLE_SCOPE",
    "ApiToken",
    "AuditEvent",
    "Base",
    "CountyServiceCenter",
    "DistributionCenter",
    "Division",
    "DivisionLevel",
    "Node",
    "NodeKind",
    "Role",
    "RoleGrant",
    "SmsCode",
    "SmsMessage",
    "SmsPurpose",
    "User",
    "VillageServicePoint",
    "distribution_center_counties",
    "utcnow",
]
