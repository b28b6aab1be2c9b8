"""The demo's order history: orders in every state, placed, paid, moved and refunded through the
services, over the weeks before the day the seed runs, and one payout batch paid.

Each entry of seed/data/demo_history.json is one order: who buys, how many farmers' parcels it
holds, home delivery or a pickup point, and its story (STORIES: the steps that happen to it,
each some hours after it was placed). Sellers and goods are drawn with a fixed seed, so every
run draws the same orders; the times are counted back from the day the seed runs.

Every step runs on the product's clock set to its moment (domain/clock.py), in time order
across all orders, so what the services write (events, ledger postings, the payout's cutoff)
reads as a real history. Payments go through the payment gateway given (a localstripe whose
state the server then loads: seed/gateway.py), by card or, with `wallet_url`, by WeChat Pay
(the buyer's side played on localstripe's test page).

Idempotent: an order is found again by its idempotency key ("seed-history-NN", per buyer), and
a step already done (the event is in the sub-order's history, the refund's key is recorded, the
sub-orders are in a batch) is skipped, so a second run adds nothing and an interrupted run
finishes what it started.

`load_demo` is the whole demo seed: the network, users and catalog (seed/loader.py), then, with a
gateway, this history and after it the demo village agent's point (seed/agents.py).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import requests  # type: ignore[import-untyped]
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from domain import (
    DeliveryMethod,
    Division,
    GatewayCustomer,
    LegStatus,
    Node,
    NodeKind,
    Order,
    OrderEvent,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Product,
    Refund,
    Role,
    RoleGrant,
    ScanKind,
    SellerProfile,
    ShipmentStatus,
    SubOrder,
    User,
    clock,
)
from seed.loader import DATA_DIR, SEED_KEY_PREFIX, load_all, read_json
from services import accounts, authz, intake, ledger, notify, places
from services.authz import Party
from services.logistics import scans
from services.orders import addresses, checkout, lookup, manage
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import InvalidPaymentRequest, PaymentGateway

S = OrderStatus
HISTORY_FILE = "demo_history.json"
RNG_SEED = "gdm-demo-history-v1"  # the fixed seed: the same sellers, goods and times every run
ORDER_KEY_PREFIX = "seed-history-"
TEST_CARD = "pm_card_visa"  # 4242 4242 4242 4242
# The catalog is listed this long before the day the seed runs, so that the history's orders
# are placed after the products, shops and buyers they name exist.
CATALOG_AGE = timedelta(days=40)
HOLDING_DAYS = 7  # the payout batch pays what was completed this long before it
PAYOUT_DAYS_AGO, PAYOUT_HOUR = 4, 10  # the batch is built then (China time) …
PAID_DAYS_AGO, PAID_HOUR = 3, 15  # … and the bank has paid it then
LATEST = timedelta(minutes=30)  # no step closer than this to the moment the seed runs

# The steps of each story and when they happen, in hours after the order was placed.
# arrive: ready for pickup at the point, or out for delivery; complete: the buyer confirms
# receipt of a home delivery, or the point hands the parcel over with the buyer's pickup code.
PIPELINE = (
    ("pay", 0.05),
    ("accept", 3),
    ("pack", 18),
    ("hand_in", 26),
    ("transit", 34),
    ("arrive", 52),
    ("complete", 62),
)


def _through(last: str) -> tuple[tuple[str, float], ...]:
    names = [name for name, _hours in PIPELINE]
    return PIPELINE[: names.index(last) + 1]


STORIES: dict[str, tuple[tuple[str, float], ...]] = {
    "paid": _through("pay"),
    "accepted": _through("pack"),
    "handed_in": _through("hand_in"),
    "in_transit": _through("transit"),
    "ready_for_pickup": _through("arrive"),
    "out_for_delivery": _through("arrive"),
    "completed": _through("complete"),
    "collected": _through("complete"),
    "paid_out": _through("complete"),
    "collected_paid_out": _through("complete"),
    # One unit missing when the seller makes up the parcel: its price goes back before delivery;
    # the parcel moves on, completes and its seller is paid the rest.
    "short_then_paid_out": (*_through("accept"), ("refund_shortage", 5), *PIPELINE[2:]),
    # An after-sale refund of part of a completed order: it stays completed.
    "after_sale_refund": (*_through("complete"), ("refund_after_sale", 90)),
    # Paid out, then part of it goes back to the buyer (after_sale_after_payout, placed on the
    # timeline a day after the bank paid the batch): the seller's share is carried and shown on the
    # finance page until their next payout nets it.
    "refunded_after_payout": _through("complete"),
    # The buyer cancels a paid order before the seller accepted: all of it goes back at once.
    "cancelled_and_refunded": (("pay", 0.05), ("cancel", 0.6)),
    "declined": (("pay", 0.05), ("decline", 4)),
}
PAID_OUT = frozenset({"paid_out", "collected_paid_out", "short_then_paid_out", "refunded_after_payout"})
REFUNDED_AFTER_PAYOUT = frozenset({"refunded_after_payout"})
PICKUP_ONLY = frozenset({"ready_for_pickup", "collected", "collected_paid_out"})
HOME_ONLY = frozenset(
    {
        "out_for_delivery",
        "completed",
        "paid_out",
        "short_then_paid_out",
        "after_sale_refund",
        "refunded_after_payout",
    }
)


# --- the plan: what happens, drawn with the fixed seed -----------------------------------------------


@dataclass(frozen=True)
class PlannedOrder:
    number: int  # 1-based position in the data file
    story: str
    buyer_phone: str
    delivery: DeliveryMethod
    pickup: tuple[NodeKind, str] | None
    method: PaymentMethod
    items: tuple[tuple[str, int], ...]  # (product seed key, quantity), every seller's together
    placed: datetime
    steps: tuple[tuple[str, datetime], ...]

    @property
    def key(self) -> str:
        return f"{ORDER_KEY_PREFIX}{self.number:02d}"


def read_history(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The history's data file: buyers' addresses, reasons, and the orders."""
    data: Any = read_json(HISTORY_FILE, data_dir)
    return dict(data)


def _story(entry: dict[str, Any]) -> str:
    story = str(entry["story"])
    if story not in STORIES:
        raise ValueError(f"{HISTORY_FILE}: unknown story {story!r}")
    pickup = entry.get("pickup") is not None
    if (story in PICKUP_ONLY and not pickup) or (story in HOME_ONLY and pickup):
        raise ValueError(f"{HISTORY_FILE}: story {story!r} does not fit its delivery")
    return story


def _at(day: date, hours: float) -> datetime:
    """An instant: `hours` after midnight of a day in China."""
    return datetime.combine(day, time(), tzinfo=clock.CHINA).astimezone(UTC) + timedelta(hours=hours)


def plan(anchor: datetime, data_dir: Path = DATA_DIR) -> list[PlannedOrder]:
    """Every order of the history with its goods and the moment of each step, counted back from
    `anchor` (the moment the seed runs). The same data always draws the same orders."""
    rng = random.Random(RNG_SEED)
    history = read_history(data_dir)
    sellable: dict[str, list[dict[str, Any]]] = {}
    for product in read_json("products.json", data_dir):
        if product["stock"] > 0 and not product.get("presale"):
            sellable.setdefault(product["seller"], []).append(product)
    sellers = sorted(sellable)
    rng.shuffle(sellers)
    next_seller = 0
    today = clock.local(anchor).date()
    orders = []
    for number, entry in enumerate(history["orders"], start=1):
        story = _story(entry)
        items: list[tuple[str, int]] = []
        for _seller in range(int(entry.get("sellers", 1))):
            phone = sellers[next_seller % len(sellers)]
            next_seller += 1
            goods = rng.sample(sellable[phone], k=min(len(sellable[phone]), rng.choice((1, 1, 2))))
            for product in goods:
                loose = product["unit"] == "jin"
                quantity = rng.randint(3, 10) if loose else rng.randint(1, 3)
                if story == "short_then_paid_out" and not items:
                    quantity = max(quantity, 2)  # one of them is missing at packing
                items.append((product["key"], quantity))
        pickup = entry.get("pickup")
        pace = rng.uniform(0.85, 1.15)  # some orders move faster than others
        placed_hour = rng.uniform(8, 21)
        day = today - timedelta(days=int(entry["days_ago"]))
        while True:
            placed = _at(day, placed_hour)
            steps = tuple((name, placed + timedelta(hours=hours * pace)) for name, hours in STORIES[story])
            if steps[-1][1] <= anchor - LATEST:
                break
            day -= timedelta(days=1)  # it would end after now: the same story a day earlier
        orders.append(
            PlannedOrder(
                number=number,
                story=story,
                buyer_phone=entry["buyer"],
                delivery=DeliveryMethod.PICKUP if pickup else DeliveryMethod.HOME,
                pickup=(NodeKind(pickup[0]), str(pickup[1])) if pickup else None,
                method=PaymentMethod(entry.get("pay", PaymentMethod.CARD.value)),
                items=tuple(items),
                placed=placed,
                steps=steps,
            )
        )
    return orders


def payout_times(anchor: datetime) -> tuple[datetime, datetime]:
    """When the payout batch is built and when the bank has paid it."""
    today = clock.local(anchor).date()
    return (
        _at(today - timedelta(days=PAYOUT_DAYS_AGO), PAYOUT_HOUR),
        _at(today - timedelta(days=PAID_DAYS_AGO), PAID_HOUR),
    )


# --- who acts ------------------------------------------------------------------------------------------


def _clerk(session: Session, phone: str, name: str, grant: RoleGrant) -> User:
    """A staff member the demo network needs and the demo users lack, made once (a fixed phone),
    with a random password: nobody logs in as them."""
    user = accounts.find_user_by_phone(session, phone)
    if user is None:
        user = accounts.create_user(
            session, phone=phone, password=secrets.token_urlsafe(18), display_name=name, roles=()
        )
        grant.user_id = user.id
        session.add(grant)
        session.commit()
        session.refresh(user)
    return user


@dataclass
class Cast:
    """The demo users who act in the history, found by phone and by the scope of their role."""

    admin: User
    users: dict[str, User]
    agents: dict[int, User] = field(default_factory=dict)  # village point id → agent
    dc_staff: dict[int, User] = field(default_factory=dict)  # distribution center id → staff
    county_staff: dict[str, User] = field(default_factory=dict)  # county code → staff

    @classmethod
    def load(cls, session: Session, data_dir: Path) -> Cast:
        users: dict[str, User] = {}
        for entry in read_json("demo_users.json", data_dir):
            user = accounts.find_user_by_phone(session, entry["phone"])
            if user is None:
                raise LookupError(f"demo user {entry['phone']} is not loaded")
            users[entry["phone"]] = user
        admin = next(u for u in users.values() if u.has_role(Role.ADMIN))
        cast = cls(admin=admin, users=users)
        for user in users.values():
            for grant in user.grants:
                if grant.role == Role.AGENT and grant.node_id is not None:
                    cast.agents.setdefault(grant.node_id, user)
                elif grant.role == Role.DC_STAFF and grant.node_id is not None:
                    cast.dc_staff.setdefault(grant.node_id, user)
                elif grant.role == Role.COUNTY_STAFF and grant.county_code:
                    cast.county_staff.setdefault(grant.county_code, user)
        return cast

    def staff(self, session: Session, sub: SubOrder, *, at_pickup: bool) -> User:
        """Who moves the parcel: the point's agent (or the center's staff), else the county's
        staff, else the admin. `at_pickup`: at the pickup point it waits at, not at the seller's
        point it was handed in at. Only someone the authorization table makes staff on it."""
        profile = session.get(SellerProfile, sub.seller_id)
        node = sub.order.pickup_node
        if at_pickup and node is not None:
            near = [
                self.agents.get(node.id),
                self.dc_staff.get(node.id),
                self.county_staff.get(node.county_code),
            ]
        else:
            point = profile.home_point_id if profile else None
            county = profile.county_code if profile else None
            near = [self.agents.get(point) if point else None, self.county_staff.get(county or "")]
        for user in [*near, self.admin]:
            if user is not None and Party.STAFF in manage.parties(session, user, sub):
                return user
        raise LookupError(f"nobody is staff on sub-order {sub.number}")

    def receiver(self, session: Session, sub: SubOrder) -> User:
        """Who records the intake: the agent of the seller's home point, else the staff of the
        seller's county (services/intake.py decides who may)."""
        profile = session.get(SellerProfile, sub.seller_id)
        point = profile.home_point_id if profile else None
        county = profile.county_code if profile else None
        for user in (self.agents.get(point) if point else None, self.county_staff.get(county or "")):
            if user is not None and intake.may_receive(session, user, sub):
                return user
        if county:
            user = self._county_receiver(session, county)
            if intake.may_receive(session, user, sub):
                return user
        raise LookupError(f"nobody receives sub-order {sub.number}")

    def staff_at(self, session: Session, node: Node) -> User:
        """Who scans parcels at `node` (authz.works_at): its demo agent, DC staff or county
        staff, else a clerk made once for it (a fixed phone per node), as for receiving."""
        known = {
            NodeKind.VILLAGE_POINT: self.agents.get(node.id),
            NodeKind.DISTRIBUTION_CENTER: self.dc_staff.get(node.id),
            NodeKind.COUNTY_CENTER: self.county_staff.get(node.county_code),
        }[node.kind]
        if known is not None and authz.works_at(known, node):
            return known
        if node.kind == NodeKind.COUNTY_CENTER:
            return self._county_receiver(session, node.county_code)
        point = node.kind == NodeKind.VILLAGE_POINT
        user = _clerk(
            session,
            ("1380007" if point else "1380006") + f"{node.id:04d}",
            f"{node.name} {'值班员' if point else '分拣员'}",
            RoleGrant(role=Role.AGENT if point else Role.DC_STAFF, node_id=node.id),
        )
        (self.agents if point else self.dc_staff)[node.id] = user
        return user

    def _county_receiver(self, session: Session, county: str) -> User:
        """The demo network has nobody to receive this seller's goods (only three counties have
        staff among the demo users): the county service center's receiving clerk, made once
        (a fixed phone per county), with the center opened if the county has none."""
        division = session.get(Division, county)
        name = division.name if division is not None else county
        grant = RoleGrant(role=Role.COUNTY_STAFF, county_code=county)
        user = _clerk(session, "1380009" + county[-4:], f"{name}中心 收货员", grant)
        center = select(Node.id).where(Node.kind == NodeKind.COUNTY_CENTER, Node.county_code == county)
        if session.scalar(center) is None:
            places.create_node(
                session,
                self.admin,
                NodeKind.COUNTY_CENTER,
                {"division_code": county, "name": f"{name}县域电子商务综合服务中心"},
            )
        self.county_staff[county] = user
        return user


# --- running it -----------------------------------------------------------------------------------------


def travel(session: Session, cast: Cast, sub: SubOrder, *, to_the_end: bool) -> bool:
    """Scan the parcel along its shipment's legs, each scan by the staff of its node: without
    `to_the_end`, until it is on its way to its pickup node (or at the last node before the
    buyer's door); with it, until it arrives at its pickup node (or leaves for the door). False:
    the sub-order has no shipment (it moves by the staff's buttons)."""
    shipment = scans.shipment_of(session, sub)
    if shipment is None:
        return False
    # The scans spread evenly between the parcel's last scan and now, so its journey reads as one
    # (hours between nodes), not as every scan at the same instant.
    at = max(s.scanned_at for s in scans.timeline(session, shipment))
    todo = sum(
        2 - (leg.status == LegStatus.DEPARTED) for leg in shipment.legs if leg.status != LegStatus.ARRIVED
    )
    step = max(clock.now() - at, timedelta(0)) / (todo + 1)
    while (leg := next((x for x in shipment.legs if x.status != LegStatus.ARRIVED), None)) is not None:
        last = leg is shipment.legs[-1]
        if leg.status == LegStatus.PLANNED:
            if leg.to_node_id is None and not to_the_end:
                break
            node = session.get(Node, leg.from_node_id)
            kind = ScanKind.DEPARTED
        elif leg.to_node_id is None or (last and not to_the_end):
            break  # out for delivery (delivered later), or on its way to the pickup node
        else:
            node = session.get(Node, leg.to_node_id)
            kind = ScanKind.ARRIVED
        assert node is not None
        key = f"seed-{kind.value}-{sub.number}-{leg.seq}"
        at += step
        staff = cast.staff_at(session, node)
        scans.record_scan(session, staff, sub.number, kind, key, node_id=node.id, scanned_at=at)
        session.refresh(shipment)
    return True


def deliver(session: Session, cast: Cast, sub: SubOrder) -> None:
    """The courier hands a home delivery over at the door (the delivered scan)."""
    shipment = scans.shipment_of(session, sub)
    if shipment is None or shipment.status != ShipmentStatus.OUT_FOR_DELIVERY:
        return
    courier = cast.staff_at(session, session.get(Node, shipment.legs[-1].from_node_id))  # type: ignore[arg-type]
    scans.record_scan(session, courier, sub.number, ScanKind.DELIVERED, f"seed-delivered-{sub.number}")


@dataclass
class Run:
    session: Session
    gateway: PaymentGateway
    settings: CheckoutSettings
    cast: Cast
    reasons: dict[str, str]
    addresses: dict[str, dict[str, str]]
    wallet_url: str | None
    pickup_keys: Any
    product_ids: dict[str, int]
    created: int = 0
    batches: int = 0

    def order(self, planned: PlannedOrder) -> Order | None:
        buyer = self.cast.users[planned.buyer_phone]
        return lookup.find_by_key(self.session, buyer.id, planned.key)

    # place and pay --------------------------------------------------------------------------------

    def place(self, planned: PlannedOrder) -> None:
        if self.order(planned) is not None:
            return
        session = self.session
        buyer = self.cast.users[planned.buyer_phone]
        home = self.addresses[planned.buyer_phone]
        data = checkout.CheckoutInput(
            items={self.product_ids[key]: qty for key, qty in planned.items},
            idempotency_key=planned.key,
            payment_method=planned.method.value,
            delivery=planned.delivery.value,
        )
        if planned.pickup is not None:
            node = places.find_node(session, *planned.pickup)
            if node is None:
                raise LookupError(f"{HISTORY_FILE}: no {planned.pickup[0].value} in {planned.pickup[1]}")
            data.pickup_node_id = node.id
            data.pickup_contact = addresses.AddressInput(recipient=home["recipient"], phone=buyer.phone)
        else:
            address = addresses.save_address(
                session,
                buyer,
                addresses.AddressInput(
                    recipient=home["recipient"],
                    phone=buyer.phone,
                    division_code=home["division_code"],
                    detail=home["detail"],
                ),
            )
            data.address_id = address.id
        placed = checkout.place_order(session, buyer, data, self.settings)
        self.created += int(placed.created)

    def pay(self, order: Order) -> None:
        payment = payments.payment_of(self.session, order)
        if payment.status == PaymentStatus.SUCCEEDED:
            return
        try:
            payment = payments.ensure_intent(self.session, self.gateway, order)
        except InvalidPaymentRequest as exc:
            # The buyer's customer at the gateway is one it does not know: its state file is
            # older or newer than this database.
            raise GatewayMismatch(
                f"the payment gateway does not know this database's customers ({exc.gateway_message}):"
                " its state file belongs to another database. Remove instance/marketplace.db (or the"
                " DATABASE_URL's database) to start the demo afresh: the seed then starts both anew."
            ) from exc
        if payment.method == PaymentMethod.CARD:
            payments.confirm_with(self.session, self.gateway, order, TEST_CARD)
        elif payment.status != PaymentStatus.SUCCEEDED:
            # The buyer scans the QR code and pays in WeChat (played on localstripe's test page).
            assert self.wallet_url is not None and payment.intent_id is not None
            answer = requests.post(
                f"{self.wallet_url}/_test/payment_intents/{payment.intent_id}/wallet_paid", timeout=30
            )
            answer.raise_for_status()
            payments.refresh(self.session, self.gateway, order)
        if payments.payment_of(self.session, order).status != PaymentStatus.SUCCEEDED:
            raise RuntimeError(f"the demo order {order.number} was not paid")

    # the parcel moves ---------------------------------------------------------------------------------

    def step(self, planned: PlannedOrder, name: str, first_sub_only: bool) -> None:
        order = self.order(planned)
        if order is None:
            raise LookupError(f"demo order {planned.key} was not placed")
        if name == "pay":
            self.pay(order)
            return
        subs = sorted(order.sub_orders, key=lambda s: s.id)
        for sub in subs[:1] if first_sub_only else subs:
            getattr(self, name)(planned, sub)

    def _reached(self, sub: SubOrder, status: OrderStatus) -> bool:
        return bool(
            self.session.scalar(
                select(exists().where(OrderEvent.sub_order_id == sub.id, OrderEvent.to_status == status))
            )
        )

    def _seller(self, sub: SubOrder) -> User:
        return self.session.get(User, sub.seller_id)  # type: ignore[return-value]

    def _move(self, actor: User, sub: SubOrder, target: OrderStatus, **extra: Any) -> None:
        if not self._reached(sub, target):
            manage.move(self.session, actor, sub.number, target, **extra)

    def accept(self, planned: PlannedOrder, sub: SubOrder) -> None:
        self._move(self._seller(sub), sub, S.ACCEPTED)

    def pack(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if sub.ready_at is None:
            manage.mark_ready(self.session, self._seller(sub), sub.number)

    def hand_in(self, planned: PlannedOrder, sub: SubOrder) -> None:
        """The hand-in is the intake at the seller's point (services/intake.py): weighed as
        ordered, first grade, under a key of its own so that a re-run records it once."""
        if not self._reached(sub, S.HANDED_IN):
            receiver = self.cast.receiver(self.session, sub)
            lines = [
                intake.LineInput(line_id=line.id, weighed_g=line.net_weight_g * line.quantity, grade="first")
                for line in sub.lines
            ]
            key = "seed-intake-" + sub.number
            intake.record_intake(self.session, self.gateway, receiver, sub.number, lines, key)

    def transit(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if not travel(self.session, self.cast, sub, to_the_end=False):
            self._move(self.cast.staff(self.session, sub, at_pickup=False), sub, S.IN_TRANSIT)

    def arrive(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if travel(self.session, self.cast, sub, to_the_end=True):
            return
        pickup = planned.delivery == DeliveryMethod.PICKUP
        target = S.READY_FOR_PICKUP if pickup else S.OUT_FOR_DELIVERY
        self._move(self.cast.staff(self.session, sub, at_pickup=pickup), sub, target)

    def complete(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if self._reached(sub, S.COMPLETED):
            return
        if planned.delivery == DeliveryMethod.HOME:
            deliver(self.session, self.cast, sub)
            self._move(self.cast.users[planned.buyer_phone], sub, S.COMPLETED)  # the buyer confirms receipt
            return
        # Handed over at the point: the buyer tells the agent the code their order page shows.
        buyer = self.cast.users[planned.buyer_phone]
        shown = manage.buyer_pickup_code(self.session, buyer, sub.order, self.pickup_keys)
        staff = self.cast.staff(self.session, sub, at_pickup=True)
        code = shown.code if shown is not None else None
        self._move(staff, sub, S.COMPLETED, pickup_code=code, keys=self.pickup_keys)

    # money back ---------------------------------------------------------------------------------------

    def cancel(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if not self._reached(sub, S.REFUND_REQUESTED):
            buyer = self.cast.users[planned.buyer_phone]
            manage.request_refund(self.session, self.gateway, buyer, sub.number, self.reasons["cancel"])

    def decline(self, planned: PlannedOrder, sub: SubOrder) -> None:
        if not sub.decline_reason:
            manage.decline(self.session, self.gateway, self._seller(sub), sub.number, self.reasons["decline"])

    def _refund_part(self, sub: SubOrder, amount_fen: int, reason: str) -> None:
        key = f"seed-history-refund-{sub.number}"  # the sub-order's number: unique at the gateway too
        if self.session.scalar(select(exists().where(Refund.idempotency_key == key))):
            return
        manage.staff_refund(self.session, self.gateway, self.cast.admin, sub.number, amount_fen, reason, key)

    def refund_shortage(self, planned: PlannedOrder, sub: SubOrder) -> None:
        line = min(sub.lines, key=lambda x: x.id)
        self._refund_part(sub, line.unit_price_fen, self.reasons["shortage"])

    def refund_after_sale(self, planned: PlannedOrder, sub: SubOrder) -> None:
        amount = max(100, sub.items_fen // 5 // 100 * 100)  # a fifth of the goods, whole yuan
        self._refund_part(sub, amount, self.reasons["after_sale"])

    # the sellers are paid --------------------------------------------------------------------------------

    def _batches(self, paid_out: list[PlannedOrder]) -> tuple[list[SubOrder], set[int]]:
        """The paid-out orders' sub-orders and the batches they are in."""
        subs = [sub for planned in paid_out if (order := self.order(planned)) for sub in order.sub_orders]
        payout_ids = {sub.payout_id for sub in subs if sub.payout_id is not None}
        batches = set(self.session.scalars(select(Payout.batch_id).where(Payout.id.in_(payout_ids))))
        return subs, batches

    def build_payout(self, paid_out: list[PlannedOrder]) -> None:
        """The admin builds a batch paying what was completed before its cutoff (the orders that
        are to be paid out, and only those); skipped when they are in a batch already."""
        subs, batches = self._batches(paid_out)
        if batches:
            return
        batch = ledger.create_payout_batch(self.session, self.cast.admin, holding_days=HOLDING_DAYS)
        if batch is None:
            raise RuntimeError("the demo's payout batch found nothing to pay")
        self.batches += 1
        for sub in subs:
            self.session.refresh(sub)
            if sub.payout_id is None:
                raise RuntimeError(f"sub-order {sub.number} was not completed before the payout's cutoff")

    def mark_paid(self, paid_out: list[PlannedOrder]) -> None:
        """The bank has paid the batch."""
        for batch_id in sorted(self._batches(paid_out)[1]):
            batch = self.session.get(PayoutBatch, batch_id)
            if batch is not None and batch.status != PayoutBatchStatus.PAID:
                ledger.mark_batch_paid(self.session, self.cast.admin, batch_id)


class GatewayMismatch(RuntimeError):
    """The payment gateway's state does not belong to this database (seed/gateway.py)."""


FIRST_SUB_ONLY = frozenset({"refund_shortage", "refund_after_sale", "cancel", "decline"})


def gateway_unused(session: Session) -> bool:
    """Whether nothing in the database refers to anything at the payment gateway (no payment, no
    customer): then the gateway's local state may start from scratch with it."""
    return not session.scalar(select(exists().where(Payment.intent_id.is_not(None)))) and not session.scalar(
        select(exists().where(GatewayCustomer.user_id.is_not(None)))
    )


def load_history(
    session: Session,
    gateway: PaymentGateway,
    settings: CheckoutSettings,
    *,
    pickup_keys: Any,
    wallet_url: str | None = None,
    channel: Any = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, int]:
    """Place, pay and move the demo's orders through the services, each step at its moment;
    returns how many orders and payout batches were added (0 and 0 on a second run).

    `pickup_keys`: the app's pickup code keys (a pickup parcel is handed over with its code);
    `wallet_url`: localstripe's address, where the WeChat Pay orders are paid (by card without);
    `channel`: the notification channel the buyers' messages go out through at the moment of
    each step (without, they wait in the outbox for the send job)."""
    anchor = clock.now()
    history = read_history(data_dir)
    seeded = select(Product.idempotency_key, Product.id).where(
        Product.idempotency_key.like(SEED_KEY_PREFIX + "%")
    )
    product_ids = {key.removeprefix(SEED_KEY_PREFIX): pid for key, pid in session.execute(seeded) if key}
    run = Run(
        session=session,
        gateway=gateway,
        settings=settings,
        cast=Cast.load(session, data_dir),
        reasons=dict(history["reasons"]),
        addresses={b["phone"]: b for b in history["buyers"]},
        wallet_url=wallet_url,
        pickup_keys=pickup_keys,
        product_ids=product_ids,
    )
    orders = plan(anchor, data_dir)
    if wallet_url is None:  # nowhere to play the buyer's wallet: they pay by card
        orders = [_by_card(o) for o in orders]
    timeline: list[tuple[datetime, int, Callable[[], None]]] = []
    for planned in orders:
        timeline.append((planned.placed, len(timeline), _bind(run.place, planned)))
        for name, when in planned.steps:
            timeline.append((when, len(timeline), _bind(run.step, planned, name, name in FIRST_SUB_ONLY)))
    paid_out = [o for o in orders if o.story in PAID_OUT]
    built, paid = payout_times(anchor)
    timeline.append((built, len(timeline), _bind(run.build_payout, paid_out)))
    timeline.append((paid, len(timeline), _bind(run.mark_paid, paid_out)))
    for planned in orders:
        if planned.story in REFUNDED_AFTER_PAYOUT:
            refund = _bind(run.step, planned, "refund_after_sale", True)
            timeline.append((paid + timedelta(days=1), len(timeline), refund))
    play(session, timeline, anchor, channel=channel, pickup_keys=pickup_keys)
    return {"orders": run.created, "payout_batches": run.batches}


def play(
    session: Session,
    timeline: list[tuple[datetime, int, Callable[[], None]]],
    anchor: datetime,
    *,
    channel: Any,
    pickup_keys: Any,
) -> None:
    """Run the steps in time order, each on the product's clock set to its moment; what a step
    told the buyers goes out through `channel` then, as the send job would have."""
    timeline.sort(key=lambda item: (item[0], item[1]))
    with clock.frozen(anchor) as frozen:
        for when, _position, action in timeline:
            frozen.set(when)
            action()
            if channel is not None:
                notify.send_pending(session, channel, pickup_keys, now=when)


def _by_card(planned: PlannedOrder) -> PlannedOrder:
    return replace(planned, method=PaymentMethod.CARD)


def _bind(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: fn(*args)


def load_demo(
    session: Session,
    *,
    storage: Any = None,
    gateway: PaymentGateway | None = None,
    settings: CheckoutSettings | None = None,
    pickup_keys: Any = None,
    wallet_url: str | None = None,
    channel: Any = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, int]:
    """Everything the demo needs: the network, users and catalog (seed.loader.load_all, listed
    CATALOG_AGE before now), then, when a gateway is given, the order history and the demo
    village agent's point (seed/agents.py: rates, credit, villagers, proxy and standing orders);
    then the cold chain's van and loggers with a day of readings (seed/coldchain.py), and last the
    running 广货网上行 campaign (seed/campaigns.py)."""
    from seed.agents import load_agents  # it builds on this module's Cast

    with clock.installed(clock.TickingClock(clock.now() - CATALOG_AGE)):
        report = load_all(session, data_dir, storage=storage)
    if gateway is not None:
        settings = settings or CheckoutSettings()
        report.update(
            load_history(
                session,
                gateway,
                settings,
                pickup_keys=pickup_keys,
                wallet_url=wallet_url,
                channel=channel,
                data_dir=data_dir,
            )
        )
        report.update(
            load_agents(
                session, gateway, settings, pickup_keys=pickup_keys, channel=channel, data_dir=data_dir
            )
        )
    from seed.coldchain import load_coldchain  # after the history: a demo lot may ride in the van

    report.update(load_coldchain(session, channel=channel, pickup_keys=pickup_keys))
    from seed.campaigns import load_campaigns  # after the history: its orders keep list prices

    report.update(load_campaigns(session, data_dir))
    return report
