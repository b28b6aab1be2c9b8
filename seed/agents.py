"""The demo village agent's work: what the agent of 大黄村电商服务站 finds on /agent after the seed.

Loaded after the order history (seed/history.py load_demo, only when a payment gateway is given),
from seed/data/demo_agents.json, through the services and acting as the person who would:
  - the county's staff set the commission rates of the agent's county (proxy orders and intake,
    county-wide and per category: services/commissions.py) and the agent's credit limit
    (services/proxy/credit.py);
  - the agent registers the point's villagers with their recorded consent (services/villagers.py):
    one without a phone, two sharing the family's phone, one whose parcels go to her daughter's;
  - the agent fills a villager's proxy cart and places it (services/proxy/), paid in cash now
    (services/cash.py take_cash) or on the agent's credit; the merchant accepts and packs each
    parcel, the county center receives it (services/intake.py, as the history does), it is sent
    on, arrives at the point (services/parcels.py mark_arrived) and, for one, is handed over with
    the pickup code (parcels.hand_over, which earns the agent's commission);
  - the agent sets up a standing order for a villager (services/standing.py), its first due date
    two days after the seed runs, so the prepare-standing-orders job brings its cycle to confirm.
So the agent's day (services/dashboard.py agent_day) shows parcels arriving and to hand out, cash
held, credit used, proxy orders on credit, a standing order and a commission earned.

Every step runs on the product's clock set to its moment (`hours_ago` before the seed runs), in
time order, as the history's do; what the steps tell the villagers goes out through the channel
given at that moment.

Idempotent: the rates and the limit are set only where none is set yet (a demo user may have
changed them since); a villager is found again by its idempotency key ("seed-agent-villager-…"),
a proxy order by its key ("seed-agent-order-NN", placed by the agent), a standing order by its
key; a move already made (the event is in the sub-order's history, the intake's, arrival's or
hand-over's key is recorded) is skipped. A second run adds and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from domain import (
    AgentCreditLimit,
    Category,
    CommissionKind,
    CommissionRate,
    Node,
    NodeKind,
    Order,
    OrderEvent,
    OrderStatus,
    ParcelHandover,
    Product,
    StandingOrder,
    SubOrder,
    User,
    Villager,
    clock,
)
from seed.history import LATEST, Cast, play, travel
from seed.loader import DATA_DIR, SEED_KEY_PREFIX, read_json
from services import commissions, intake, parcels, places, proxy, standing, villagers
from services.orders import manage
from services.orders.pricing import CheckoutSettings
from services.payments.gateway import PaymentGateway

S = OrderStatus
AGENTS_FILE = "demo_agents.json"
KEY_PREFIX = "seed-agent-"
# The steps of a proxy order, in the order they happen (the data gives the hours of those it reaches).
STEPS = ("place", "accept", "pack", "hand_in", "transit", "arrive", "hand_over")


def read_agents(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    data: Any = read_json(AGENTS_FILE, data_dir)
    return dict(data)


def order_key(entry: dict[str, Any]) -> str:
    return f"{KEY_PREFIX}order-{entry['key']}"


def villager_key(entry: dict[str, Any]) -> str:
    return f"{KEY_PREFIX}villager-{entry['key']}"


def standing_key(entry: dict[str, Any]) -> str:
    return f"{KEY_PREFIX}standing-{entry['key']}"


CREDIT_LIMIT_KEY = f"{KEY_PREFIX}credit-limit"


def check_steps(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """A proxy order's steps in order, each earlier than the next and none closer to now than
    LATEST; ValueError for a step unknown, missing in between or out of time order."""
    steps = entry["steps"]
    names = list(steps)
    if names != list(STEPS[: len(names)]):
        raise ValueError(f"{AGENTS_FILE}: order {entry['key']}: steps must be {STEPS} up to the last one")
    hours = [float(steps[n]) for n in names]
    latest = LATEST.total_seconds() / 3600
    if hours != sorted(hours, reverse=True) or len(set(hours)) != len(hours) or hours[-1] < latest:
        raise ValueError(f"{AGENTS_FILE}: order {entry['key']}: the steps' hours must fall one after another")
    return list(zip(names, hours, strict=True))


@dataclass
class AgentRun:
    """The demo agent's point and the people who act on it."""

    session: Session
    gateway: PaymentGateway
    settings: CheckoutSettings
    pickup_keys: Any
    cast: Cast
    agent: User
    staff: User
    point: Node
    product_ids: dict[str, int]
    data: dict[str, Any]
    report: dict[str, int]

    # the county's staff ------------------------------------------------------------------------------

    def set_rates(self) -> None:
        """The county's commission rates, each only if none is set for its kind and category."""
        county = self.point.county_code
        slugs = {c.slug: c.id for c in self.session.scalars(select(Category))}
        for entry in self.data["commission_rates"]:
            kind = CommissionKind(entry["kind"])
            category_id = slugs[entry["category"]] if entry["category"] else None
            found = select(CommissionRate.id).where(
                CommissionRate.county_code == county,
                CommissionRate.kind == kind,
                CommissionRate.category_id.is_(None)
                if category_id is None
                else CommissionRate.category_id == category_id,
            )
            if self.session.scalar(found) is None:
                commissions.set_rate(self.session, self.staff, county, kind.value, category_id, entry["rate"])
                self.report["commission_rates"] += 1

    def set_credit_limit(self) -> None:
        if self.session.get(AgentCreditLimit, self.agent.id) is None:
            proxy.set_credit_limit(
                self.session, self.staff, self.agent.id, int(self.data["credit_limit_fen"]), CREDIT_LIMIT_KEY
            )
            self.report["credit_limits"] += 1

    # the agent -------------------------------------------------------------------------------------

    def villager(self, key: str) -> Villager:
        entry = next(v for v in self.data["villagers"] if v["key"] == key)
        found = self.session.scalar(
            select(Villager).where(
                Villager.point_id == self.point.id, Villager.idempotency_key == villager_key(entry)
            )
        )
        if found is None:
            raise LookupError(f"demo villager {key} was not registered")
        return found

    def register(self, entry: dict[str, Any]) -> None:
        key = villager_key(entry)
        known = select(exists().where(Villager.point_id == self.point.id, Villager.idempotency_key == key))
        if self.session.scalar(known):
            return
        villagers.register_villager(
            self.session,
            self.agent,
            villagers.VillagerInput(
                name=entry["name"],
                village_code=entry["village_code"],
                phone=entry.get("phone", ""),
                notes=entry.get("notes", ""),
                consent_method=entry["consent"],
            ),
            point_id=self.point.id,
            idempotency_key=key,
        )
        self.report["villagers"] += 1

    def items(self, entry: dict[str, Any]) -> dict[int, int]:
        return {self.product_ids[key]: int(qty) for key, qty in entry["items"]}

    def order(self, entry: dict[str, Any]) -> Order | None:
        return self.session.scalar(
            select(Order).where(
                Order.placed_by_id == self.agent.id, Order.idempotency_key == order_key(entry)
            )
        )

    def place(self, entry: dict[str, Any]) -> None:
        """The agent puts the villager's goods in their proxy cart and places it, paid in cash
        now or on the agent's credit."""
        if self.order(entry) is not None:
            return
        villager = self.villager(entry["villager"])
        proxy.save_cart(self.session, self.agent, villager.id, self.items(entry))
        placed = proxy.place(
            self.session, self.gateway, self.agent, villager.id, entry["pay"], order_key(entry), self.settings
        )
        self.report["proxy_orders"] += int(placed.created)

    def set_up_standing(self, entry: dict[str, Any], anchor: datetime) -> None:
        key = standing_key(entry)
        known = select(
            exists().where(StandingOrder.created_by_id == self.agent.id, StandingOrder.idempotency_key == key)
        )
        if self.session.scalar(known):
            return
        first_due = clock.local(anchor).date() + timedelta(days=int(entry["first_due_in_days"]))
        standing.create(
            self.session,
            self.agent,
            standing.StandingInput(
                villager_id=self.villager(entry["villager"]).id,
                items=self.items(entry),
                payment_method=entry["pay"],
                cadence=entry["cadence"],
                repeat_every=entry.get("repeat_every", 1),
                weekday=first_due.weekday() if entry["cadence"] == "weekly" else None,
                day_of_month=first_due.day if entry["cadence"] == "monthly" else None,
                note=entry.get("note", ""),
            ),
            key,
        )
        self.report["standing_orders"] += 1

    # the parcel moves --------------------------------------------------------------------------------

    def step(self, entry: dict[str, Any], name: str) -> None:
        order = self.order(entry)
        if order is None:
            raise LookupError(f"demo proxy order {order_key(entry)} was not placed")
        for sub in sorted(order.sub_orders, key=lambda s: s.id):
            getattr(self, name)(sub)

    def _reached(self, sub: SubOrder, status: OrderStatus) -> bool:
        return bool(
            self.session.scalar(
                select(exists().where(OrderEvent.sub_order_id == sub.id, OrderEvent.to_status == status))
            )
        )

    def accept(self, sub: SubOrder) -> None:
        if not self._reached(sub, S.ACCEPTED):
            seller = self.session.get(User, sub.seller_id)
            manage.move(self.session, seller, sub.number, S.ACCEPTED)

    def pack(self, sub: SubOrder) -> None:
        if sub.ready_at is None:
            manage.mark_ready(self.session, self.session.get(User, sub.seller_id), sub.number)

    def hand_in(self, sub: SubOrder) -> None:
        """Received at the seller's side as the history's parcels are: weighed as ordered."""
        if not self._reached(sub, S.HANDED_IN):
            lines = [
                intake.LineInput(line_id=line.id, weighed_g=line.net_weight_g * line.quantity, grade="first")
                for line in sub.lines
            ]
            receiver = self.cast.receiver(self.session, sub)
            intake.record_intake(
                self.session, self.gateway, receiver, sub.number, lines, f"{KEY_PREFIX}intake-{sub.number}"
            )

    def transit(self, sub: SubOrder) -> None:
        if travel(self.session, self.cast, sub, to_the_end=False):
            return
        if not self._reached(sub, S.IN_TRANSIT):
            staff = self.cast.staff(self.session, sub, at_pickup=False)
            manage.move(self.session, staff, sub.number, S.IN_TRANSIT)

    def arrive(self, sub: SubOrder) -> None:
        """The agent scans the parcel in at the point: ready for pickup, the code goes out."""
        if not self._reached(sub, S.READY_FOR_PICKUP):
            parcels.mark_arrived(self.session, self.agent, sub.number, f"{KEY_PREFIX}arrived-{sub.number}")

    def hand_over(self, sub: SubOrder) -> None:
        """The villager tells the agent the pickup code the order's page shows the agent."""
        handed = select(exists().where(ParcelHandover.sub_order_id == sub.id))
        if self.session.scalar(handed):
            return
        shown = manage.buyer_pickup_code(self.session, self.agent, sub.order, self.pickup_keys)
        if shown is None:
            raise LookupError(f"demo proxy order {sub.order.number} has no pickup code")
        parcels.hand_over(
            self.session,
            self.agent,
            sub.number,
            parcels.HandoverInput(
                pickup_code=shown.code, cash_received=bool(parcels.collect_fen(self.session, sub))
            ),
            f"{KEY_PREFIX}handover-{sub.number}",
            self.pickup_keys,
        )


def load_agents(
    session: Session,
    gateway: PaymentGateway,
    settings: CheckoutSettings,
    *,
    pickup_keys: Any,
    channel: Any = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, int]:
    """Set up the demo agent's point through the services, each step at its moment; returns how
    many rates, limits, villagers, proxy orders and standing orders were added (all 0 on a
    second run)."""
    anchor = clock.now()
    data = read_agents(data_dir)
    cast = Cast.load(session, data_dir)
    point = places.find_node(session, NodeKind(data["point"][0]), data["point"][1])
    if point is None:
        raise LookupError(f"{AGENTS_FILE}: no {data['point'][0]} in {data['point'][1]}")
    seeded = select(Product.idempotency_key, Product.id).where(
        Product.idempotency_key.like(SEED_KEY_PREFIX + "%")
    )
    run = AgentRun(
        session=session,
        gateway=gateway,
        settings=settings,
        pickup_keys=pickup_keys,
        cast=cast,
        agent=cast.users[data["agent"]],
        staff=cast.users[data["county_staff"]],
        point=point,
        product_ids={key.removeprefix(SEED_KEY_PREFIX): pid for key, pid in session.execute(seeded) if key},
        data=data,
        report={
            "commission_rates": 0,
            "credit_limits": 0,
            "villagers": 0,
            "proxy_orders": 0,
            "standing_orders": 0,
        },
    )

    def at(hours_ago: Any) -> datetime:
        return anchor - timedelta(hours=float(hours_ago))

    set_up = at(data["set_up_hours_ago"])
    timeline: list[tuple[datetime, int, Callable[[], None]]] = [
        (set_up, 0, run.set_rates),
        (set_up, 1, run.set_credit_limit),
    ]
    for entry in data["villagers"]:
        timeline.append((at(entry["hours_ago"]), len(timeline), _bind(run.register, entry)))
    for entry in data["standing_orders"]:
        timeline.append((at(entry["hours_ago"]), len(timeline), _bind(run.set_up_standing, entry, anchor)))
    for entry in data["proxy_orders"]:
        for name, hours in check_steps(entry):
            action = _bind(run.place, entry) if name == "place" else _bind(run.step, entry, name)
            timeline.append((at(hours), len(timeline), action))
    play(session, timeline, anchor, channel=channel, pickup_keys=pickup_keys)
    return run.report


def _bind(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: fn(*args)
