"""The authorization matrix's world, its URL parameters, its table and how answers are classed.

`test_authz_matrix.py` sends every route × method of the app as every role, once with the objects
of the actor's own scope in the URL and once with another scope's. This module holds what that
needs and nothing app-specific beyond the test data:

* `build_authz_world`: two scopes, A and B, in two real counties of two cities (兴宁市 of 梅州市,
  佛冈县 of 清远市). Each has a county service center, a village point with its agent, county
  staff, a distribution center serving the county with its DC staff, a farmer homed at the point
  (products, a photo, a listing consent to the agent), a merchant with a product, and a buyer with
  an address and orders in several states, paid by card through localstripe (so refunds are
  real), collected at the point; and a payout batch. One admin works everywhere.
* `resolve`: a URL parameter by name for a scope (and the endpoint and role, where that picks a
  more telling object). An unknown name is an error asking for a resolver: a new route whose
  parameter nobody resolved fails the test instead of being skipped.
* `BODIES`: the body of a request. Empty by default (an empty form, `{}` for the API); for the
  few actions whose services check the input before the actor (a reason, a target status, an
  idempotency key), a well-formed one, so that the cell shows who may act rather than "reason
  required" for everybody.
* `classify`: an answer in one word (login, deny, hidden, ok, error), and the CSV table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from domain import (
    Division,
    Node,
    NodeKind,
    Order,
    OrderStatus,
    Product,
    ProductPhoto,
    Role,
    RoleGrant,
    SellerKind,
    SubOrder,
    Unit,
    User,
    WebhookEvent,
)
from domain import clock as product_clock
from seed.loader import read_json
from services import cash, catalog, ledger, media, places, proxy, standing, villagers
from services.logistics import fleet
from services.orders import addresses, checkout, states
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.payments import service as payments
from tests.conftest import NOW
from tests.factories import consent, first_village, jpeg, paid_and_completed, receive

TABLE = Path(__file__).with_name("authz_matrix.csv")

ROLES = ("anonymous", "buyer", "farmer", "merchant", "agent", "county_staff", "dc_staff", "admin")
SCOPES = ("own", "other")
COLUMNS = tuple(f"{role}:{scope}" for role in ROLES for scope in SCOPES)
CLASSES = ("login", "deny", "hidden", "ok", "error")

# Two real counties of two different cities (codes from seed/data/divisions.csv), used by no other
# test module, with the city district each scope's distribution center stands in.
COUNTY_A = "441481"  # 梅州市兴宁市
COUNTY_B = "441821"  # 清远市佛冈县
DC_PLACE_A = "441402"  # 梅州市梅江区
DC_PLACE_B = "441802"  # 清远市清城区

# Sub-order states each scope's buyer has an order in (one order, one sub-order of the farmer's,
# collected at the scope's village point), and the path that leads there from "paid".
PATHS: dict[str, tuple[OrderStatus, ...]] = {
    "paid": (),
    "accepted": (OrderStatus.ACCEPTED,),
    "handed_in": (OrderStatus.ACCEPTED, OrderStatus.HANDED_IN),
    "ready": (
        OrderStatus.ACCEPTED,
        OrderStatus.HANDED_IN,
        OrderStatus.IN_TRANSIT,
        OrderStatus.READY_FOR_PICKUP,
    ),
    "completed": (
        OrderStatus.ACCEPTED,
        OrderStatus.HANDED_IN,
        OrderStatus.IN_TRANSIT,
        OrderStatus.READY_FOR_PICKUP,
        OrderStatus.COMPLETED,
    ),
}


@dataclass
class Scope:
    name: str  # "A" or "B"
    county: Division
    center: Node
    point: Node
    dc: Node
    agent: User
    county_staff: User
    dc_staff: User
    farmer: User
    merchant: User
    buyer: User
    product: Product  # the farmer's, on sale, with a photo
    merchant_product: Product
    photo: ProductPhoto
    merchant_photo: ProductPhoto
    consent_id: int
    category_slug: str
    category_id: int
    spare_village: str  # a village of the county with no service point yet
    static_file: str
    swagger_file: str
    unpaid: Order
    orders: dict[str, Order]  # by PATHS key: each has one sub-order, the farmer's
    batch_id: int
    villager_id: int  # a villager registered at the scope's point
    proxy_order: Order  # placed by the scope's agent for that villager, waiting for a QR payment
    lot_code: str  # a lot the scope's agent received from the scope's farmer
    parcel_label: str  # that produce's parcel: its shipment began at the intake
    standing_id: int  # a weekly standing order of the scope's villager
    cycle_id: int  # its cycle prepared for the agent to confirm
    remittance_id: int  # the scope's agent's cash, declared to the county center, not yet counted
    center_vehicle_id: int  # a vehicle of the scope's county center
    dc_vehicle_id: int  # a vehicle of the scope's distribution center
    excursion_id: int  # an open excursion of a logger in the scope's DC's cold store
    logger_id: int  # that logger
    campaign_id: int = 0  # a published campaign (platform-wide: the same one in both scopes)

    def sub(self, state: str) -> SubOrder:
        (sub,) = self.orders[state].sub_orders
        return sub

    def actor(self, role: str, admin: User) -> User | None:
        if role == "anonymous":
            return None
        if role == "admin":
            return admin
        return getattr(self, role)  # type: ignore[no-any-return]


@dataclass
class AuthzWorld:
    admin: User
    scopes: dict[str, Scope]  # "A", "B"

    def users(self) -> dict[tuple[str, str], User]:
        """(role, scope name) → the person who acts; the admin for both scopes."""
        found: dict[tuple[str, str], User] = {}
        for name, scope in self.scopes.items():
            for role in ROLES[1:]:
                user = scope.actor(role, self.admin)
                assert user is not None
                found[(role, name)] = user
        return found


class KeptFilesStorage(media.LocalStorage):
    """Photo files under a root that are never deleted: a cell that removes a photo has its row
    rolled back, and the files must still be there for the next cell (GET /media/…)."""

    def delete(self, key: str) -> None:
        del key


def _vehicle(session: Session, staff: User, hub: Node, plate: str) -> Any:
    return fleet.save_vehicle(
        session,
        staff,
        hub,
        fleet.VehicleInput(
            plate=plate,
            kind="ambient",
            capacity_kg="1500",
            capacity_m3="8",
            shift_start="07:00",
            shift_end="18:00",
        ),
    )


def _build_scope(
    session: Session,
    name: str,
    *,
    admin: User,
    make_user: Callable[..., User],
    gateway: Any,
    settings: Any,
    storage: media.Storage,
    county_code: str,
    dc_place: str,
    category: str,
    static_file: str,
    swagger_file: str,
) -> Scope:
    county = session.get(Division, county_code)
    assert county is not None
    village = first_village(session, county_code)

    def node(kind: NodeKind, code: str, label: str, **extra: Any) -> Node:
        served = extra.pop("served", ())
        return places.create_node(
            session, admin, kind, {"division_code": code, "name": label, **extra}, served_county_codes=served
        )

    center = node(NodeKind.COUNTY_CENTER, county_code, f"{county.name}县域综合服务中心")
    point = node(NodeKind.VILLAGE_POINT, village.code, f"{village.name}服务点")
    dc = node(NodeKind.DISTRIBUTION_CENTER, dc_place, f"{name}城乡配送中心", served=[county_code])

    agent = make_user(Role.AGENT, node_id=point.id, name=f"{name}村小二")
    county_staff = make_user(Role.COUNTY_STAFF, county_code=county_code, name=f"{name}县中心")
    dc_staff = make_user(Role.DC_STAFF, node_id=dc.id, name=f"{name}配送中心")
    farmer = make_user(Role.FARMER, name=f"{name}农户")
    catalog.save_seller_profile(session, farmer, shop_name=f"{name}果园", division_code=village.code)
    merchant = make_user(Role.MERCHANT, name=f"{name}农资店")
    catalog.save_seller_profile(
        session, merchant, shop_name=f"{name}农资店", division_code=county_code, kind=SellerKind.MERCHANT
    )
    buyer = make_user(Role.BUYER, name=f"{name}买家")
    record = consent(session, agent, farmer, point)
    villager = villagers.register_villager(
        session, agent, villagers.VillagerInput(name=f"{name}村民王秀英", village_code=village.code)
    )

    categories = {c.slug: c.id for c in catalog.categories(session)}

    def product(seller: User, label: str, slug: str) -> Product:
        data = catalog.ListingInput(
            name=label, category_id=categories[slug], unit=Unit.JIN, price_fen=1200, stock=500
        )
        return catalog.create_product(session, seller, data, publish=True)

    fruit = product(farmer, f"{county.name}鲜果", category)
    goods = product(merchant, f"{county.name}复合肥", "fertilizer")
    photo = media.add_photo(session, storage, farmer, fruit.id, jpeg((320, 240)))
    merchant_photo = media.add_photo(session, storage, merchant, goods.id, jpeg((320, 240)))

    contact = AddressInput(recipient=f"{name}买家", phone=buyer.phone)
    home = AddressInput(
        recipient=f"{name}买家", phone=buyer.phone, division_code=village.code, detail="村口1号"
    )
    addresses.save_address(session, buyer, home)

    def place(items: dict[int, int]) -> Order:
        data = CheckoutInput(
            items=items,
            idempotency_key=checkout.new_idempotency_key(),
            payment_method="card",
            delivery="pickup",
            pickup_node_id=point.id,
            pickup_contact=contact,
        )
        return checkout.place_order(session, buyer, data, settings).order

    unpaid = place({fruit.id: 1})
    orders: dict[str, Order] = {}
    for state, path in PATHS.items():
        order = place({fruit.id: 1})
        payments.confirm_with(session, gateway, order, "pm_card_visa")
        session.refresh(order)
        (sub,) = order.sub_orders
        assert sub.status == OrderStatus.PAID, (state, sub.status)
        for target in path:
            # Straight through the state machine with every party: the set-up must not depend on
            # the rules about who may act, which are what the matrix observes.
            states.apply(session, sub, target, party=set(states.Party), actor=admin)
        session.commit()
        orders[state] = order

    # A proxy order the point's agent placed for the buyer and took the cash for, and that cash
    # declared to the county center: a remittance waiting for the county's staff to count it.
    cash_order = checkout.place_order(
        session,
        buyer,
        CheckoutInput(
            items={goods.id: 1},
            idempotency_key=checkout.new_idempotency_key(),
            payment_method="cash",
            delivery="pickup",
            pickup_node_id=point.id,
            pickup_contact=contact,
        ),
        settings,
        placed_by=agent,
    ).order
    cash.take_cash(session, agent, cash_order.number, f"matrix-cash-{name}")
    proxy_order = proxy.place(
        session,
        None,
        agent,
        villager.id,
        "wechat_pay",
        f"matrix-proxy-{name}",
        settings,
        items={goods.id: 1},
    ).order
    # Produce the scope's agent took in at the point: its lot is traced by its code.
    produce = place({fruit.id: 1})
    payments.confirm_with(session, gateway, produce, "pm_card_visa")
    session.refresh(produce)
    states.apply(session, produce.sub_orders[0], OrderStatus.ACCEPTED, party=set(states.Party), actor=admin)
    session.commit()
    (lot,) = receive(session, gateway, produce.sub_orders[0], by=agent).lots
    # A weekly standing order of the villager's, due in two days: its cycle is prepared.
    regular = standing.create(
        session,
        agent,
        standing.StandingInput(
            villager_id=villager.id,
            items={goods.id: 1},
            payment_method="cash",
            cadence="weekly",
            weekday=(product_clock.today() + timedelta(days=2)).weekday(),
        ),
        f"matrix-standing-{name}",
    )
    standing.prepare_cycles(session, prepare_days=3)
    (cycle,) = [c for c in standing.cycles_to_confirm(session, agent) if c.standing_order_id == regular.id]
    remittance = cash.declare_remittance(session, agent, cash_order.total_fen, f"matrix-remit-{name}")
    plate = {"A": "M", "B": "R"}[name]  # 梅州, 清远
    center_vehicle = _vehicle(session, county_staff, center, f"粤{plate}·1000{name}")
    dc_vehicle = _vehicle(session, dc_staff, dc, f"粤{plate}·2000{name}")
    excursion_id, logger_id = _cold_store_excursion(session, dc, dc_staff, name)

    # A payout batch of this scope's own (older, completed) sub-order: batches take everything
    # payable, so each scope's is made before the next scope's sub-orders exist.
    paid_and_completed(session, buyer, farmer, items=1000, commission=100)
    session.commit()
    batch = ledger.create_payout_batch(session, admin, holding_days=7)
    assert batch is not None

    return Scope(
        name=name,
        county=county,
        center=center,
        point=point,
        dc=dc,
        agent=agent,
        county_staff=county_staff,
        dc_staff=dc_staff,
        farmer=farmer,
        merchant=merchant,
        buyer=buyer,
        product=fruit,
        merchant_product=goods,
        photo=photo,
        merchant_photo=merchant_photo,
        consent_id=record.id,
        category_slug=category,
        category_id=categories[category],
        spare_village=first_village(session, county_code, offset=1).code,
        static_file=static_file,
        swagger_file=swagger_file,
        unpaid=unpaid,
        orders=orders,
        batch_id=batch.id,
        villager_id=villager.id,
        proxy_order=proxy_order,
        lot_code=lot.code,
        parcel_label=produce.sub_orders[0].number,
        standing_id=regular.id,
        cycle_id=cycle.id,
        remittance_id=remittance.id,
        center_vehicle_id=center_vehicle.id,
        dc_vehicle_id=dc_vehicle.id,
        excursion_id=excursion_id,
        logger_id=logger_id,
    )


def _cold_store_excursion(session: Session, dc: Node, dc_staff: User, name: str) -> tuple[int, int]:
    """A chilled logger in the DC's cold store (registered by its staff) that read 8 ℃ for an hour."""
    from services.logistics import coldchain

    dc.has_cold_storage = True
    session.commit()
    made = coldchain.register_logger(
        session, dc_staff, serial=f"MATRIX-{name}", place=f"node:{dc.id}", storage_class="chilled"
    )
    start = product_clock.now() - timedelta(hours=3)
    temps = [3.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 3.0]
    items = [
        {"logger": made.logger.serial, "at": (start + i * timedelta(minutes=10)).isoformat(), "celsius": t}
        for i, t in enumerate(temps)
    ]
    (excursion,) = coldchain.ingest_batch(session, coldchain.Source(logger=made.logger), items).excursions
    return excursion.id, made.logger.id


def build_authz_world(
    session: Session,
    *,
    make_user: Callable[..., User],
    gateway: Any,
    settings: Any,
    storage: media.Storage,
    swagger_files: Iterable[str],
) -> AuthzWorld:
    if not catalog.categories(session):
        catalog.import_categories(session, read_json("categories.json"))
    admin = make_user(Role.ADMIN, name="省平台管理员")
    swagger = sorted(swagger_files)
    common = {"admin": admin, "make_user": make_user, "gateway": gateway, "settings": settings}
    a = _build_scope(
        session,
        "A",
        **common,
        storage=storage,
        county_code=COUNTY_A,
        dc_place=DC_PLACE_A,
        category="citrus",
        static_file="css/site.css",
        swagger_file=swagger[0],
    )
    b = _build_scope(
        session,
        "B",
        **common,
        storage=storage,
        county_code=COUNTY_B,
        dc_place=DC_PLACE_B,
        category="green-tea",
        static_file="js/pay.js",
        swagger_file=swagger[1],
    )
    for scope in (a, b):  # a webhook event given up, for the admins' "process again"
        session.add(
            WebhookEvent(
                id=webhook_event_id(scope),
                type="charge.dispute.created",
                payload={
                    "id": webhook_event_id(scope),
                    "type": "charge.dispute.created",
                    "data": {"object": {}},
                },
                attempts=6,
                error="RuntimeError: authz matrix",
                gave_up_at=NOW,
            )
        )
    session.commit()
    a.campaign_id = b.campaign_id = _campaign(session, admin)
    return AuthzWorld(admin=admin, scopes={"A": a, "B": b})


def _campaign(session: Session, admin: User) -> int:
    """A published campaign running from now for a week (campaigns are the platform's, not a
    scope's: both scopes name this one)."""
    from services.campaigns import manage as campaigns

    start = product_clock.now().astimezone(product_clock.CHINA)
    made = campaigns.create_campaign(
        session,
        admin,
        campaigns.CampaignInput(
            name="权限矩阵活动",
            starts_at=start.strftime("%Y-%m-%d %H:%M:%S"),
            ends_at=(start + timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S"),
            tiers="满100减20",
            platform_percent="100",
            budget_yuan="100",
        ),
    )
    campaigns.publish(session, admin, made.id)
    return made.id


def webhook_event_id(scope: Scope) -> str:
    return f"evt_authz_matrix_{scope.name}"


# --- URL parameters ---------------------------------------------------------------------------------

# Which of the scope's sub-orders a sub-order action is tried on: one whose state allows the
# action, so that the answer is about who asks, not about the state.
SUB_ORDER_FOR = {
    "orders.decline": "paid",
    "api_orders.decline": "paid",
    "orders.move": "paid",  # target "accepted" (BODIES)
    "api_orders.transition": "paid",
    "orders.ready": "accepted",
    "api_orders.mark_ready": "accepted",
    # The intake at the point: an accepted sub-order of the point's farmer.
    "intake.receive": "accepted",
    "api_intake.receivable": "accepted",
    "api_intake.record": "accepted",
    # Parcels at the point: one waiting to be collected.
    "parcels.parcel": "ready",
    "parcels.handover": "ready",
    "api_parcels.get_parcel": "ready",
    "api_parcels.handover": "ready",
    "orders.request_refund": "completed",
    "api_orders.request_refund": "completed",
    "orders.staff_refund": "handed_in",  # a refund after hand-in
    "api_orders.refund": "handed_in",
}


LOT_ENDPOINTS = {
    "trace.trace_page",
    "trace.old_trace_page",
    "api_intake.trace",
    "api_intake.trace_epcis",
    "api_intake.get_lot",
}


class UnresolvedParameter(LookupError):
    pass


def resolve(name: str, scope: Scope, *, endpoint: str, role: str, rule: str) -> str:
    """The value of URL parameter `name` in `scope` for `role` calling `endpoint`."""
    proxy = endpoint.startswith(("proxy.", "api_proxy."))
    if name in ("order_number", "number") and proxy:  # a proxy order the scope's agent placed
        return scope.proxy_order.number
    if name == "order_number":
        unpaid = endpoint.endswith(("cancel", "cancel_order", ".pay"))  # waiting for payment
        return scope.unpaid.number if unpaid else scope.orders["paid"].number
    if name == "number":  # the cart's pay pages: an order waiting for payment
        return scope.unpaid.number
    if name == "sub_number":
        return scope.sub(SUB_ORDER_FOR.get(endpoint, "paid")).number
    # A merchant is asked about the scope's merchant's shop; everyone else about the farmer's
    # (whose agent holds a consent, and whose parcels go through the scope's point).
    merchant = role == "merchant"
    if name == "product_id":  # a proxy cart holds the last kilometer's goods
        return str((scope.merchant_product if merchant or proxy else scope.product).id)
    if name == "photo_id":
        return str((scope.merchant_photo if merchant else scope.photo).id)
    if name == "seller_id":
        return str((scope.merchant if merchant else scope.farmer).id)
    if name == "node_id":
        # The node the role works at (DC staff: their center); everyone else: the village point.
        return str(scope.dc.id if role == "dc_staff" else scope.point.id)
    if name == "point_id":
        return str(scope.point.id)
    if name == "user_id":  # granting: the scope's buyer; revoking: the agent's grant
        return str(scope.buyer.id if endpoint.endswith("grant_role") else scope.agent.id)
    if name == "grant_id":
        grant = next(g for g in scope.agent.grants if g.role == Role.AGENT)
        assert isinstance(grant, RoleGrant)
        return str(grant.id)
    if name == "batch_id":
        return str(scope.batch_id)
    if name == "consent_id":
        return str(scope.consent_id)
    if name == "villager_id":
        return str(scope.villager_id)
    if name == "label":  # a parcel's label: the scope's produce, received at the point
        return scope.parcel_label
    if name == "code":  # a lot's trace code, or a county
        return scope.lot_code if endpoint in LOT_ENDPOINTS else scope.county.code
    if name == "county_code":
        return scope.county.code
    if name == "agent_id":  # an agent's credit limit
        return str(scope.agent.id)
    if name == "slug":
        return scope.category_slug
    if name == "filename":
        return scope.swagger_file if endpoint == "swagger_ui_file" else scope.static_file
    if name == "key":
        return media.variant_keys(scope.photo)[0]
    if name == "job_name":  # the admins' "run now": a job that needs no gateway
        return "reconcile-reserved-stock"
    if name == "event_id":  # the admins' "process again": a given-up webhook event
        return webhook_event_id(scope)
    if name == "standing_id":
        return str(scope.standing_id)
    if name == "cycle_id":
        return str(scope.cycle_id)
    if name == "remittance_id":
        return str(scope.remittance_id)
    # A hub's day: the node the role works at (DC staff: their DC), else the county center;
    # a vehicle of that hub.
    if name == "hub_id":
        return str(scope.dc.id if role == "dc_staff" else scope.center.id)
    if name == "vehicle_id":
        return str(scope.dc_vehicle_id if role == "dc_staff" else scope.center_vehicle_id)
    if name == "excursion_id":
        return str(scope.excursion_id)
    if name == "logger_id":
        return str(scope.logger_id)
    if name == "campaign_id":
        return str(scope.campaign_id)
    raise UnresolvedParameter(
        f"add a resolver for <{name}> (route {rule}, endpoint {endpoint}) in tests/e2e/authz_world.py"
    )


# --- request bodies ---------------------------------------------------------------------------------

REASON = "权限矩阵测试"
REFUND_KEY = "authz-matrix-refund-key-0001"


def _listing(scope: Scope) -> dict[str, Any]:
    """A product listed for the scope's farmer (by them, or by their agent under the consent)."""
    return {
        "name": "权限矩阵测试柚",
        "category_id": scope.category_id,
        "unit": "jin",
        "price_fen": 1000,
        "stock": 5,
        "seller_id": scope.farmer.id,
    }


def _intake(scope: Scope) -> dict[str, Any]:
    """The scope's accepted sub-order weighed as ordered, graded 一级."""
    (line,) = scope.sub("accepted").lines
    weight = line.net_weight_g * line.quantity
    return {
        "lines": [{"line_id": line.id, "weight_g": weight, "grade": "first"}],
        "idempotency_key": "matrix-intake-01",
    }


def _upload(scope: Scope) -> dict[str, Any]:
    return {"photo": (io.BytesIO(jpeg((240, 180))), "matrix.jpg")}


# endpoint → the body sent for a scope (a form for pages, JSON for the API; UPLOADS: multipart).
# Everything else is sent empty. These are the actions whose services or schemas check the input
# before the actor: with an empty body everyone would get "reason required" (or a 422), and the
# cell would say nothing about who may act. A route listed here is asked once per scope even if
# it has no URL parameter, as its body names the scope's objects.
BODIES: dict[str, Callable[[Scope], dict[str, Any]]] = {
    "orders.move": lambda s: {"target": "accepted"},
    "api_orders.transition": lambda s: {"to": "accepted"},
    "orders.decline": lambda s: {"reason": REASON},
    "api_orders.decline": lambda s: {"reason": REASON},
    "orders.request_refund": lambda s: {"reason": REASON},
    "api_orders.request_refund": lambda s: {"reason": REASON},
    "orders.staff_refund": lambda s: {"reason": REASON, "key": REFUND_KEY},
    "api_orders.refund": lambda s: {"reason": REASON, "idempotency_key": REFUND_KEY},
    "api_catalog.create_product": _listing,
    "api_catalog.set_status": lambda s: {"status": "paused"},
    "api_catalog.set_price_and_stock": lambda s: {"price_fen": 1300, "stock": 20},
    "api_catalog.add_photo": _upload,
    "sell.photos": _upload,
    # A new village point in a village of the scope's county (county staff open those).
    "api_places.create_node": lambda s: {
        "kind": "village_point",
        "division_code": s.spare_village,
        "name": "权限矩阵测试服务点",
    },
    "places.new_node": lambda s: {"division_code": s.spare_village, "name": "权限矩阵测试服务点"},
    # A villager of a village of the scope's point's town (an agent registers them there).
    "api_villagers.create_villager": lambda s: {
        "name": "权限矩阵村民",
        "village_code": s.point.division_code,
        "consent_method": "in_person",
        "point_id": s.point.id,
    },
    "api_villagers.update_villager": lambda s: {"notes": "送到女儿家"},
    "api_villagers.send_consent_code": lambda s: {"phone": "13800000099"},
    # Cash: a fen handed in or counted (the request is rolled back), each with its key.
    "api_cash.declare": lambda s: {"amount_fen": 1, "idempotency_key": "matrix-declare-01"},
    "cash.declare": lambda s: {"amount": "0.01", "key": "matrix-declare-01"},
    "api_cash.confirm": lambda s: {"counted_fen": 1},
    "cash.confirm": lambda s: {"counted": "0.01"},
    # The scope's buyer made an agent at the scope's point (county staff appoint agents there).
    "api_auth.grant_role": lambda s: {"role": "agent", "node_id": s.point.id},
    # The agent's day through the API: each write well-formed (its schema answers 422 before the
    # service looks at who asks), naming the scope's objects.
    "api_intake.record": _intake,
    "api_intake.upload_photo": _upload,
    "api_parcels.arrived": lambda s: {
        "number": s.sub("ready").number,
        "idempotency_key": "matrix-arrived-01",
    },
    "api_proxy.put_cart": lambda s: {"items": [{"product_id": s.merchant_product.id, "quantity": 1}]},
    "api_proxy.place": lambda s: {
        "payment_method": "cash",
        "items": [{"product_id": s.merchant_product.id, "quantity": 1}],
        "idempotency_key": "matrix-proxy-place-01",
    },
    "api_proxy.pay": lambda s: {"method": "alipay", "idempotency_key": "matrix-proxy-pay-01"},
    "api_proxy.set_limit": lambda s: {"limit_fen": 100_000, "idempotency_key": "matrix-credit-01"},
    "agent.set_limit": lambda s: {"limit": "1000", "key": "matrix-credit-01"},
    "api_standing.create": lambda s: {
        "villager_id": s.villager_id,
        "items": [{"product_id": s.merchant_product.id, "quantity": 1}],
        "payment_method": "cash",
        "cadence": "weekly",
        "weekday": 2,
        "idempotency_key": "matrix-standing-01",
    },
    # A scan at the scope's point (an exception: allowed whatever the parcel's state). A batch
    # answers 200 with each scan's own result (a stranger's scans are refused one by one inside).
    "api_scans.scan": lambda s: {
        "label": s.parcel_label,
        "kind": "exception",
        "node_id": s.point.id,
        "note": "权限矩阵测试",
        "idempotency_key": "matrix-scan-0001",
    },
    "api_scans.batch": lambda s: {
        "scans": [
            {
                "label": s.parcel_label,
                "kind": "exception",
                "node_id": s.point.id,
                "idempotency_key": "matrix-scan-0002",
            }
        ]
    },
    # The scan page: the same scan as a form (its staff scan; anyone else is refused on the form).
    "scans.scan": lambda s: {
        "label": s.parcel_label,
        "kind": "exception",
        "node_id": str(s.point.id),
        "note": "权限矩阵测试",
        "key": "matrix-scan-0003",
    },
    # A logger in the scope's DC's cold store; a reading of the scope's logger.
    "coldchain.register": lambda s: {
        "serial": f"MATRIX-NEW-{s.name}",
        "place": f"node:{s.dc.id}",
        "storage_class": "chilled",
    },
    "api_coldchain.readings": lambda s: {
        "readings": [{"logger": f"MATRIX-{s.name}", "at": (product_clock.now()).isoformat(), "celsius": 3.0}]
    },
    "api_commissions.set_rate": lambda s: {"kind": "proxy", "category_id": None, "rate_percent": "1.5"},
}
UPLOADS = {"api_catalog.add_photo", "sell.photos", "api_intake.upload_photo"}
# endpoint → a query string every request to it carries, for the same reason as BODIES.
QUERIES: dict[str, str] = {
    "places.new_node": "kind=village_point",  # no kind: 422 "unknown kind" before the actor check
}


# --- classes of answers -------------------------------------------------------------------------------


def classify(status: int, location: str = "") -> str:
    """login: asked to log in; deny: 403; hidden: 404; error: 500; ok: anything else (it passed
    the authorisation check; the input or the state may still have been refused)."""
    if status == 401 or (status in (301, 302, 303, 307, 308) and "/auth/login" in location):
        return "login"
    if status == 403:
        return "deny"
    if status == 404:
        return "hidden"
    if status >= 500:
        return "error"
    return "ok"


Row = tuple[str, str]  # (method, rule)


def read_table(path: Path = TABLE) -> dict[Row, dict[str, str]]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return {(r["method"], r["rule"]): {c: r[c] for c in COLUMNS} for r in reader}


def table_text(rows: dict[Row, dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "rule", *COLUMNS])
    for method, rule in sorted(rows, key=lambda r: (r[1], r[0])):
        writer.writerow([method, rule, *(rows[(method, rule)][c] for c in COLUMNS)])
    return out.getvalue()


def summary(rows: dict[Row, dict[str, str]]) -> str:
    """Per role: how many cells of each class; then the rows where a scoped role gets through on
    another scope's objects (the cells to look at first in a review)."""
    lines = ["role          scope  " + " ".join(f"{c:>6}" for c in CLASSES)]
    for role in ROLES:
        for scope in SCOPES:
            col = f"{role}:{scope}"
            counts = {c: sum(1 for r in rows.values() if r[col] == c) for c in CLASSES}
            lines.append(f"{role:<13} {scope:<6} " + " ".join(f"{counts[c]:>6}" for c in CLASSES))
    for role in ("buyer", "farmer", "merchant", "agent", "county_staff", "dc_staff"):
        through = [
            f"{m} {r}"
            for (m, r), cells in sorted(rows.items(), key=lambda x: (x[0][1], x[0][0]))
            if cells[f"{role}:other"] == "ok"
            and cells["anonymous:other"] != "ok"
            and cells[f"{role}:own"] == "ok"
            and "<" in r
        ]
        if through:
            lines.append(f"{role} ok on another scope's objects (anonymous is not): {len(through)}")
            lines.extend(f"    {t}" for t in through)
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.e2e.authz_world: the review summary of the table
    print(summary(read_table()))
