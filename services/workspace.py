"""Which workspaces a user has: one per role, with the scope the role is held in."""

from __future__ import annotations

from dataclasses import dataclass

from domain import Role, User

# Order on the workspace page: the roles with the most daily work first.
ROLE_ORDER = [
    Role.ADMIN,
    Role.COUNTY_STAFF,
    Role.DC_STAFF,
    Role.AGENT,
    Role.FARMER,
    Role.MERCHANT,
    Role.BUYER,
]


@dataclass(frozen=True)
class Workspace:
    role: Role
    node_id: int | None = None
    node_name: str = ""
    county_code: str | None = None
    county_name: str = ""


def workspaces_for(user: User | None) -> list[Workspace]:
    if user is None:
        return []
    spaces = [
        Workspace(
            role=g.role,
            node_id=g.node_id,
            node_name=g.node.name if g.node is not None else "",
            county_code=g.county_code,
            county_name=g.county.name if g.county is not None else "",
        )
        for g in user.grants
    ]
    return sorted(spaces, key=lambda w: (ROLE_ORDER.index(w.role), w.node_id or 0, w.county_code or ""))
