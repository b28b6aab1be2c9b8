"""Authorization by role and scope, checked in services (never only by hiding links)."""

from __future__ import annotations

from domain import Node, NodeKind, Role, User
from services.errors import Forbidden, Unauthorized


def require_user(user: User | None) -> User:
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthorized()
    return user


def is_admin(user: User | None) -> bool:
    return user is not None and user.has_role(Role.ADMIN)


def staff_county_codes(user: User | None) -> set[str]:
    """Counties where the user works as county service center staff."""
    if user is None:
        return set()
    return {g.county_code for g in user.grants if g.role == Role.COUNTY_STAFF and g.county_code}


def node_ids(user: User | None, role: Role) -> set[int]:
    """Nodes the user is scoped to for a node-scoped role (agent, dc_staff)."""
    if user is None:
        return set()
    return {g.node_id for g in user.grants if g.role == role and g.node_id is not None}


def can_administer_node(user: User | None, node: Node) -> bool:
    """Full edit rights: name, place, status. Admins anywhere; county staff in their county."""
    if user is None:
        return False
    if is_admin(user):
        return True
    if node.kind == NodeKind.DISTRIBUTION_CENTER:
        return False
    return node.county_code in staff_county_codes(user)


def can_operate_node(user: User | None, node: Node) -> bool:
    """Day-to-day edits (phone, hours, description): also the node's own agent or DC staff."""
    if can_administer_node(user, node):
        return True
    if node.kind == NodeKind.VILLAGE_POINT:
        return node.id in node_ids(user, Role.AGENT)
    if node.kind == NodeKind.DISTRIBUTION_CENTER:
        return node.id in node_ids(user, Role.DC_STAFF)
    return False


def require_admin(user: User | None) -> User:
    user = require_user(user)
    if not is_admin(user):
        raise Forbidden()
    return user


def require_staff(user: User | None) -> User:
    """Admins and county staff: the people who manage the network."""
    user = require_user(user)
    if not (is_admin(user) or staff_county_codes(user)):
        raise Forbidden()
    return user
