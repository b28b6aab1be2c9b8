"""Who may do what: the one table of roles, scopes and rights, checked in services (never only
by hiding links) and route by route by `tests/e2e/test_authz_matrix.py`.

Roles and their scopes (a `RoleGrant` carries the scope):

| role          | scope                 | may                                                            |
|---------------|-----------------------|----------------------------------------------------------------|
| buyer         | their own orders      | order, pay, cancel unpaid, ask for money back, confirm receipt |
| farmer        | their own shop        | list products, accept, pack and decline their orders           |
| merchant      | their own shop        | the same as a farmer (last-kilometer goods)                    |
| agent         | their village point   | list for farmers who consented (while the consent holds); as   |
|               |                       | staff: confirm hand-ins and move parcels of their point        |
| county_staff  | their county          | manage the county's nodes and agents; as staff: confirm        |
|               |                       | hand-ins and move parcels of sellers or pickups in the county  |
| dc_staff      | their distribution    | as staff: move parcels picked up at their center (until the    |
|               | center                | logistics legs say which parcels pass through it)              |
| admin         | the province          | everything, and alone decides refunds after hand-in            |

On one sub-order, a person stands in one or more `Standing`s, computed from the order and the
person's grants (`services.orders.manage.standings`); `STANDING_PARTIES` turns each standing into
the parties of the state machine (`services.orders.states.TRANSITIONS` says which party may make
which move) and `SUB_ORDER_ACTIONS` gives the actions that are not plain moves. Two rules sit
above the table: nobody is ever staff on an order they bought, placed or sell (their staff
standings are dropped), and an agent acts for a farmer only while `catalog.active_consent` holds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from domain import Node, NodeKind, Role, User
from services.errors import Forbidden, Unauthorized


class Party(enum.StrEnum):
    """Who makes a move in the sub-order state machine."""

    BUYER = "buyer"
    SELLER = "seller"
    STAFF = "staff"  # moves parcels: the point's agent, county staff, DC staff, admins
    ADMIN = "admin"  # decides money after hand-in: refunds, turning an after-sale request down
    SYSTEM = "system"  # payment webhooks, the expiry job, the refund flow


class Standing(enum.StrEnum):
    """How a person relates to one sub-order."""

    BUYER = "buyer"  # bought it, or placed it for the buyer (an agent's proxy order)
    SELLER = "seller"  # sells it
    OPERATOR = "operator"  # runs the seller's shop under a consent that still holds (托管代运营)
    POINT_AGENT = "point_agent"  # agent of the seller's home point or of the pickup point
    COUNTY_STAFF = "county_staff"  # staff of the seller's county or the pickup point's county
    DC_STAFF = "dc_staff"  # staff of the distribution center the parcel is picked up at
    ADMIN = "admin"


# The standings that make someone staff on an order: dropped when they bought, placed or sell it.
STAFF_STANDINGS = frozenset({Standing.POINT_AGENT, Standing.COUNTY_STAFF, Standing.DC_STAFF, Standing.ADMIN})

STANDING_PARTIES: Mapping[Standing, frozenset[Party]] = {
    Standing.BUYER: frozenset({Party.BUYER}),
    Standing.SELLER: frozenset({Party.SELLER}),
    Standing.OPERATOR: frozenset({Party.SELLER}),
    Standing.POINT_AGENT: frozenset({Party.STAFF}),
    Standing.COUNTY_STAFF: frozenset({Party.STAFF}),
    Standing.DC_STAFF: frozenset({Party.STAFF}),
    Standing.ADMIN: frozenset({Party.STAFF, Party.ADMIN}),
}


class Action(enum.StrEnum):
    """What may be done to a sub-order besides the plain moves of the state machine."""

    DECLINE = "decline"  # the seller cannot fill it: all the money goes back
    PACK = "pack"  # the seller packed it and will bring it to the point
    REQUEST_REFUND = "request_refund"  # the buyer asks for money back
    REFUND = "refund"  # give back all or part of the money (after-sale, shortfall, damage)


SUB_ORDER_ACTIONS: Mapping[Action, frozenset[Party]] = {
    Action.DECLINE: frozenset({Party.SELLER}),
    Action.PACK: frozenset({Party.SELLER}),
    Action.REQUEST_REFUND: frozenset({Party.BUYER}),
    Action.REFUND: frozenset({Party.ADMIN}),
}


def parties_of(standings: set[Standing]) -> set[Party]:
    """The state machine's parties for these standings."""
    return {p for s in standings for p in STANDING_PARTIES[s]}


def may(action: Action, parties: set[Party] | frozenset[Party]) -> bool:
    """Whether someone acting as `parties` may take `action` (state permitting)."""
    return bool(SUB_ORDER_ACTIONS[action] & set(parties))


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
