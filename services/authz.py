"""Who may do what: the one table of roles, scopes and rights, checked in services (never only
by hiding links) and route by route by `tests/e2e/test_authz_matrix.py`.

Roles and their scopes (a `RoleGrant` carries the scope):

| role          | scope                 | may                                                            |
|---------------|-----------------------|----------------------------------------------------------------|
| buyer         | their own orders      | order, pay, cancel unpaid, ask for money back, confirm receipt |
| farmer        | their own shop        | list products, accept, pack and decline their orders           |
| merchant      | their own shop        | the same as a farmer (last-kilometer goods)                    |
| agent         | their village point   | list for farmers who consented (while the consent holds);      |
|               |                       | register and find the point's villagers (VILLAGER_RIGHTS); as  |
|               |                       | staff: move parcels of their point; record the intake (weigh,  |
|               |                       | grade: the hand-in) of their point's sellers (INTAKE_ACTIONS); |
|               |                       | take cash for proxy orders at their point, declare remittances |
|               |                       | (CASH_ACTIONS); place proxy orders for the point's villagers,  |
|               |                       | paid by QR, cash or on their credit (PROXY_ACTIONS)            |
|               |                       | receive their point's parcels and hand them over, with the     |
|               |                       | pickup code or a recorded reason (PARCEL_ACTIONS);             |
|               |                       | set up, confirm, skip, pause and cancel the point's villagers' |
|               |                       | standing orders (STANDING_ORDER_ACTIONS)                       |
| county_staff  | their county          | manage the county's nodes and agents; as staff: move parcels   |
|               |                       | of sellers or pickups in the county; record the intake of the  |
|               |                       | county's sellers at the center (INTAKE_ACTIONS);               |
|               |                       | count and confirm the county's cash remittances (CASH_ACTIONS);|
|               |                       | set the county's agents' credit limits (PROXY_ACTIONS);        |
|               |                       | the county's nodes' temperature loggers: register them, upload |
|               |                       | readings, acknowledge excursions (COLD_CHAIN_ACTIONS); scan    |
|               |                       | parcels at the county center (works_at) and run its day:       |
|               |                       | vehicles, pallets, routes (HUB_ACTIONS)                        |
| dc_staff      | their distribution    | as staff: move parcels picked up at their center; scan parcels |
|               | center                | there (works_at) and run its day (HUB_ACTIONS); the center's   |
|               |                       | loggers, as county staff do (COLD_CHAIN_ACTIONS)               |
| admin         | the province          | everything, and alone decides refunds after hand-in; the cold  |
|               |                       | chain: read only; runs the 广货网上行 campaigns: creates, edits, |
|               |                       | publishes, cancels them, decides sign-ups, reads their reports |
|               |                       | (CAMPAIGN_ACTIONS)                                             |

Sellers (and agents for consenting farmers) sign their own products up to campaigns and follow
their results (CAMPAIGN_ACTIONS); an admin decides sign-ups and never signs up.

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


class VillagerStanding(enum.StrEnum):
    """How a person relates to a villager an agent registered (services/villagers.py)."""

    POINT_AGENT = "point_agent"  # agent of the villager's village point
    COUNTY_STAFF = "county_staff"  # staff of the point's county
    SELF = "self"  # the villager's own account, once linked


class VillagerRight(enum.StrEnum):
    VIEW = "view"  # name and phone in full (everyone else sees them masked: 王*, 138****0061)
    MANAGE = "manage"  # register villagers at the point, find them, edit their notes


VILLAGER_RIGHTS: Mapping[VillagerStanding, frozenset[VillagerRight]] = {
    VillagerStanding.POINT_AGENT: frozenset({VillagerRight.VIEW, VillagerRight.MANAGE}),
    VillagerStanding.COUNTY_STAFF: frozenset({VillagerRight.VIEW}),
    VillagerStanding.SELF: frozenset({VillagerRight.VIEW}),
}


def villager_standings(
    user: User | None, point: Node, villager_user_id: int | None = None
) -> set[VillagerStanding]:
    """The standings of `user` on the villagers of `point` (on one of them, with its user id)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    found = set()
    if point.id in node_ids(user, Role.AGENT):
        found.add(VillagerStanding.POINT_AGENT)
    if point.county_code in staff_county_codes(user):
        found.add(VillagerStanding.COUNTY_STAFF)
    if villager_user_id is not None and villager_user_id == user.id:
        found.add(VillagerStanding.SELF)
    return found


def villager_rights(
    user: User | None, point: Node, villager_user_id: int | None = None
) -> set[VillagerRight]:
    """What `user` may do with the villagers of `point` (or one of them)."""
    return {r for s in villager_standings(user, point, villager_user_id) for r in VILLAGER_RIGHTS[s]}


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


def works_at(user: User | None, node: Node) -> bool:
    """Hands goods over at the node, so may scan there (services/logistics/scans.py): a village
    point's agent, staff of a county center's county, a distribution center's staff. Admins
    hold no parcels: they scan nowhere."""
    if user is None:
        return False
    if node.kind == NodeKind.VILLAGE_POINT:
        return node.id in node_ids(user, Role.AGENT)
    if node.kind == NodeKind.DISTRIBUTION_CENTER:
        return node.id in node_ids(user, Role.DC_STAFF)
    return node.county_code in staff_county_codes(user)


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


# --- cash: proxy orders paid in cash at a point, and its remittance to the county center ---------


class CashStanding(enum.StrEnum):
    """How a person relates to a cash order or a cash remittance (services/cash.py computes it)."""

    POINT_AGENT = "point_agent"  # agent of the order's pickup point (or, declaring, of any point)
    REMITTER = "remitter"  # the agent whose remittance it is
    COUNTY_STAFF = "county_staff"  # staff of the county the remittance is handed in to
    ADMIN = "admin"


class CashAction(enum.StrEnum):
    TAKE_CASH = "take_cash"  # the agent took the cash for a proxy order at their point: paid
    DECLARE_REMITTANCE = "declare_remittance"  # the agent hands cash to the county center
    VIEW_REMITTANCE = "view_remittance"  # see it, and its discrepancy
    CONFIRM_REMITTANCE = "confirm_remittance"  # count the cash and confirm the counted amount


# Counting cash happens at the county center: its staff confirm, not admins from afar.
CASH_ACTIONS: Mapping[CashAction, frozenset[CashStanding]] = {
    CashAction.TAKE_CASH: frozenset({CashStanding.POINT_AGENT}),
    CashAction.DECLARE_REMITTANCE: frozenset({CashStanding.POINT_AGENT}),
    CashAction.VIEW_REMITTANCE: frozenset(
        {CashStanding.REMITTER, CashStanding.COUNTY_STAFF, CashStanding.ADMIN}
    ),
    CashAction.CONFIRM_REMITTANCE: frozenset({CashStanding.COUNTY_STAFF}),
}


def may_cash(action: CashAction, standings: set[CashStanding]) -> bool:
    return bool(CASH_ACTIONS[action] & standings)


def require_cash(action: CashAction, standings: set[CashStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (CASH_ACTIONS)."""
    if not may_cash(action, standings):
        raise Forbidden()


# --- proxy orders (代购): an agent shops for the villagers of their point, on QR, cash or credit ----


class ProxyStanding(enum.StrEnum):
    """How a person relates to a villager's proxy order, or to an agent's credit
    (services/proxy.py computes it)."""

    POINT_AGENT = "point_agent"  # agent of the villager's point (and so of the order's pickup point)
    PLACER = "placer"  # the agent who placed the proxy order
    COUNTY_STAFF = "county_staff"  # staff of the county of the agent's point
    ADMIN = "admin"


class ProxyAction(enum.StrEnum):
    SHOP_FOR = "shop_for"  # fill a proxy cart for the villager and place the order (QR or cash)
    PLACE_ON_CREDIT = "place_on_credit"  # place it as cash on pickup, on the agent's credit
    FOLLOW = "follow"  # see the proxy order, show the QR, switch or retry its payment
    COLLECT = "collect"  # take the villager's cash at pickup for an order placed on credit
    VIEW_CREDIT = "view_credit"  # an agent's credit limit and what is used
    SET_CREDIT_LIMIT = "set_credit_limit"  # give an agent a credit limit (0: none)


# The county service center gives credit; the agent uses it only at their own point.
PROXY_ACTIONS: Mapping[ProxyAction, frozenset[ProxyStanding]] = {
    ProxyAction.SHOP_FOR: frozenset({ProxyStanding.POINT_AGENT}),
    ProxyAction.PLACE_ON_CREDIT: frozenset({ProxyStanding.POINT_AGENT}),
    ProxyAction.FOLLOW: frozenset({ProxyStanding.PLACER, ProxyStanding.POINT_AGENT}),
    ProxyAction.COLLECT: frozenset({ProxyStanding.POINT_AGENT}),
    ProxyAction.VIEW_CREDIT: frozenset(
        {ProxyStanding.PLACER, ProxyStanding.COUNTY_STAFF, ProxyStanding.ADMIN}
    ),
    ProxyAction.SET_CREDIT_LIMIT: frozenset({ProxyStanding.COUNTY_STAFF}),
}


def may_proxy(action: ProxyAction, standings: set[ProxyStanding]) -> bool:
    return bool(PROXY_ACTIONS[action] & standings)


def require_proxy(action: ProxyAction, standings: set[ProxyStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (PROXY_ACTIONS)."""
    if not may_proxy(action, standings):
        raise Forbidden()


# --- parcels at the pickup point: arrivals and hand-overs (services/parcels.py) ------------------


class ParcelStanding(enum.StrEnum):
    """How a person relates to a parcel of a pickup order (services/parcels.py computes it)."""

    # Agent of the order's pickup point: also on proxy orders they placed (they hand them to the
    # villager), never on a parcel they sell (no handing over one's own sale without a witness).
    PICKUP_AGENT = "pickup_agent"


class ParcelAction(enum.StrEnum):
    LIST = "list"  # see the parcels arriving at and waiting at the point
    RECEIVE = "receive"  # mark a parcel arrived at the point (in transit → ready for pickup)
    HAND_OVER = "hand_over"  # hand it over: with the pickup code, or for a recorded reason


PARCEL_ACTIONS: Mapping[ParcelAction, frozenset[ParcelStanding]] = {
    ParcelAction.LIST: frozenset({ParcelStanding.PICKUP_AGENT}),
    ParcelAction.RECEIVE: frozenset({ParcelStanding.PICKUP_AGENT}),
    ParcelAction.HAND_OVER: frozenset({ParcelStanding.PICKUP_AGENT}),
}


def may_parcel(action: ParcelAction, standings: set[ParcelStanding]) -> bool:
    return bool(PARCEL_ACTIONS[action] & standings)


def require_parcel(action: ParcelAction, standings: set[ParcelStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (PARCEL_ACTIONS)."""
    if not may_parcel(action, standings):
        raise Forbidden()


# --- agents' commissions: rates the county center sets, what an agent earned ------------------


class CommissionStanding(enum.StrEnum):
    """How a person relates to a county's commission rates or to their own earnings
    (services/commissions.py computes it)."""

    COUNTY_STAFF = "county_staff"  # staff of the county whose rates they are
    ADMIN = "admin"
    SELF = "self"  # an agent, about their own commissions


class CommissionAction(enum.StrEnum):
    VIEW_RATES = "view_rates"
    SET_RATES = "set_rates"  # the county service center sets its own county's rates
    VIEW_EARNINGS = "view_earnings"  # an agent's own commissions, per month


COMMISSION_ACTIONS: Mapping[CommissionAction, frozenset[CommissionStanding]] = {
    CommissionAction.VIEW_RATES: frozenset({CommissionStanding.COUNTY_STAFF, CommissionStanding.ADMIN}),
    CommissionAction.SET_RATES: frozenset({CommissionStanding.COUNTY_STAFF}),
    CommissionAction.VIEW_EARNINGS: frozenset({CommissionStanding.SELF}),
}


def may_commission(action: CommissionAction, standings: set[CommissionStanding]) -> bool:
    return bool(COMMISSION_ACTIONS[action] & standings)


def require_commission(action: CommissionAction, standings: set[CommissionStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (COMMISSION_ACTIONS)."""
    if not may_commission(action, standings):
        raise Forbidden()


# --- produce intake: the hand-in at the village point, weighed and graded (services/intake.py) ---


class IntakeStanding(enum.StrEnum):
    """How a person relates to the intake of one sub-order (services/intake.py computes it).
    Nobody receives goods they sell, bought or placed (their receiving standings are dropped)."""

    RECEIVING_AGENT = "receiving_agent"  # agent of the seller's home point: receives there
    COUNTY_STAFF = "county_staff"  # staff of the seller's county: receives at the county center
    SELLER = "seller"  # sells it, or runs the seller's shop under a consent that holds
    BUYER = "buyer"  # bought it, or placed it for the buyer
    ADMIN = "admin"


class IntakeAction(enum.StrEnum):
    RECEIVE = "receive"  # weigh, grade and photograph the goods: the sub-order is handed in
    VIEW = "view"  # see the intake (weights, grades, what went back) and its lots


# The goods are weighed where they are handed in: the point's agent or the county center's
# staff, never an admin from afar, never the seller (issue 11: the seller no longer marks goods
# handed in on their own).
INTAKE_ACTIONS: Mapping[IntakeAction, frozenset[IntakeStanding]] = {
    IntakeAction.RECEIVE: frozenset({IntakeStanding.RECEIVING_AGENT, IntakeStanding.COUNTY_STAFF}),
    IntakeAction.VIEW: frozenset(IntakeStanding),
}


def may_intake(action: IntakeAction, standings: set[IntakeStanding]) -> bool:
    return bool(INTAKE_ACTIONS[action] & standings)


def require_intake(action: IntakeAction, standings: set[IntakeStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (INTAKE_ACTIONS)."""
    if not may_intake(action, standings):
        raise Forbidden()


# --- standing orders: a villager's regular proxy order, confirmed each cycle (services/standing.py)


class StandingOrderStanding(enum.StrEnum):
    """How a person relates to a standing order (services/standing.py computes it)."""

    POINT_AGENT = "point_agent"  # agent of the villager's point (the standing order's point)


class StandingOrderAction(enum.StrEnum):
    SET_UP = "set_up"  # set one up for a villager of the point
    VIEW = "view"  # see it and its cycles
    CONFIRM = "confirm"  # confirm a cycle: its proxy order is placed
    CHANGE = "change"  # skip a cycle; pause, resume or cancel the standing order


# The agent who shops for the villager runs their standing orders; nobody else places them.
STANDING_ORDER_ACTIONS: Mapping[StandingOrderAction, frozenset[StandingOrderStanding]] = {
    StandingOrderAction.SET_UP: frozenset({StandingOrderStanding.POINT_AGENT}),
    StandingOrderAction.VIEW: frozenset({StandingOrderStanding.POINT_AGENT}),
    StandingOrderAction.CONFIRM: frozenset({StandingOrderStanding.POINT_AGENT}),
    StandingOrderAction.CHANGE: frozenset({StandingOrderStanding.POINT_AGENT}),
}


def may_standing(action: StandingOrderAction, standings: set[StandingOrderStanding]) -> bool:
    return bool(STANDING_ORDER_ACTIONS[action] & standings)


def require_standing(action: StandingOrderAction, standings: set[StandingOrderStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (STANDING_ORDER_ACTIONS)."""
    if not may_standing(action, standings):
        raise Forbidden()


# --- hubs: a county center's or a distribution center's vehicles, pallets and routes ------------


class HubStanding(enum.StrEnum):
    """How a person relates to a county center or a distribution center (`hub_standings`)."""

    COUNTY_STAFF = "county_staff"  # staff of the county center's county
    DC_STAFF = "dc_staff"  # staff of the distribution center


class HubAction(enum.StrEnum):
    VIEW = "view"  # the day's page: vehicles, pallets, the route plan
    MANAGE_VEHICLES = "manage_vehicles"  # add a vehicle, change it, take it off the road
    BUILD_PALLETS = "build_pallets"  # build pallets, mark one loaded (services/logistics/pallets.py)
    PLAN_ROUTES = "plan_routes"  # plan the day, lock or move a stop (services/logistics/routes.py)


# The people who load the vehicles plan them; admins hold no parcels (as with scans: works_at).
HUB_ACTIONS: Mapping[HubAction, frozenset[HubStanding]] = {
    action: frozenset({HubStanding.COUNTY_STAFF, HubStanding.DC_STAFF}) for action in HubAction
}


def hub_standings(user: User | None, node: Node) -> set[HubStanding]:
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    if node.kind == NodeKind.COUNTY_CENTER and node.county_code in staff_county_codes(user):
        return {HubStanding.COUNTY_STAFF}
    if node.kind == NodeKind.DISTRIBUTION_CENTER and node.id in node_ids(user, Role.DC_STAFF):
        return {HubStanding.DC_STAFF}
    return set()


def may_hub(action: HubAction, user: User | None, node: Node) -> bool:
    return bool(HUB_ACTIONS[action] & hub_standings(user, node))


def require_hub(action: HubAction, user: User | None, node: Node) -> User:
    """Forbidden unless `user` may take `action` at the hub `node` (HUB_ACTIONS)."""
    user = require_user(user)
    if not may_hub(action, user, node):
        raise Forbidden()
    return user


# --- the cold chain: temperature loggers and their excursions (services/logistics/coldchain.py) ---


class ColdChainStanding(enum.StrEnum):
    """How a person relates to a node's loggers (a cold store's, or its vehicles')."""

    COUNTY_STAFF = "county_staff"  # staff of the node's county (a DC in their county too)
    DC_STAFF = "dc_staff"  # staff of the node, a distribution center
    ADMIN = "admin"


class ColdChainAction(enum.StrEnum):
    VIEW = "view"  # the loggers, their readings, the excursions and the lots they marked
    MANAGE = "manage"  # register loggers, upload readings, acknowledge excursions (and be alerted)


# The people at the node look after its cold chain; admins read everything and change nothing.
COLD_CHAIN_ACTIONS: Mapping[ColdChainAction, frozenset[ColdChainStanding]] = {
    ColdChainAction.VIEW: frozenset(ColdChainStanding),
    ColdChainAction.MANAGE: frozenset({ColdChainStanding.COUNTY_STAFF, ColdChainStanding.DC_STAFF}),
}


def cold_chain_standings(user: User | None, node: Node) -> set[ColdChainStanding]:
    """The standings of `user` on the cold chain of `node` (its cold store and its vehicles)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    found = set()
    if node.county_code in staff_county_codes(user):
        found.add(ColdChainStanding.COUNTY_STAFF)
    if node.kind == NodeKind.DISTRIBUTION_CENTER and node.id in node_ids(user, Role.DC_STAFF):
        found.add(ColdChainStanding.DC_STAFF)
    if is_admin(user):
        found.add(ColdChainStanding.ADMIN)
    return found


def may_cold_chain(action: ColdChainAction, standings: set[ColdChainStanding]) -> bool:
    return bool(COLD_CHAIN_ACTIONS[action] & standings)


def require_cold_chain(action: ColdChainAction, standings: set[ColdChainStanding]) -> None:
    """Forbidden unless one of `standings` may take `action` (COLD_CHAIN_ACTIONS)."""
    if not may_cold_chain(action, standings):
        raise Forbidden()


# --- 广货网上行 campaigns (services/campaigns) ---------------------------------------------------


class CampaignStanding(enum.StrEnum):
    """How a person relates to a campaign, or to a product being signed up to one."""

    ADMIN = "admin"
    SELLER = "seller"  # the product's seller
    AGENT_FOR_SELLER = "agent_for_seller"  # an agent the product's farmer consented to (托管代运营)


class CampaignAction(enum.StrEnum):
    MANAGE = "manage"  # create, edit, publish, cancel; decide sign-ups; the reports
    SIGN_UP = "sign_up"  # sign a product up, withdraw it, follow its results


CAMPAIGN_ACTIONS: Mapping[CampaignAction, frozenset[CampaignStanding]] = {
    CampaignAction.MANAGE: frozenset({CampaignStanding.ADMIN}),
    CampaignAction.SIGN_UP: frozenset({CampaignStanding.SELLER, CampaignStanding.AGENT_FOR_SELLER}),
}


def may_campaign(action: CampaignAction, standings: set[CampaignStanding]) -> bool:
    return bool(CAMPAIGN_ACTIONS[action] & standings)


def require_campaigns(user: User | None) -> User:
    """The user, if they may run campaigns (CAMPAIGN_ACTIONS[MANAGE]); else Forbidden."""
    user = require_user(user)
    if not may_campaign(CampaignAction.MANAGE, {CampaignStanding.ADMIN} if is_admin(user) else set()):
        raise Forbidden()
    return user
