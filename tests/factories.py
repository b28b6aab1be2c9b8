"""Test data, built in one place for every tier.

Two kinds of builders live here:

* factory_boy factories (`SQLAlchemyModelFactory`) for plain rows that no rule guards in the way
  a test cares about: users with their role grants, seller profiles, consent records, and the
  orders, sub-orders, payments and refunds the ledger reads (it only reads their amounts).
* plain builder functions that go through the services on purpose, so the product's rules hold
  for the data too: `build_world` (the catalog's county), `build_network` (places),
  `build_shop` (a browsable catalog) and `build_market` (a shop and a buyer, for orders).

The factories need a session. They take it from `bound(session)`: the `session` fixture of
tests/conftest.py binds the test's session for the whole test, and the helpers that take a
session argument (`add_user`, `add_sub_order`, …) bind the one they are given for the call, so a
test with its own session (a hypothesis example, a concurrency test's database) gets its rows
there. Factories flush (`sqlalchemy_session_persistence = "flush"`) and never commit: the
caller decides when, as a service would.

Small read-back helpers shared across tiers (`row`, `snapshot`, `node_count`,
`database_state`) and the media samples (`jpeg`, `png`, `png_header`) live here too, so no test
module imports another.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any

import factory
from factory.alchemy import SQLAlchemyModelFactory
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import (
    AuditEvent,
    Category,
    CategoryFlow,
    CertificationKind,
    Division,
    DivisionLevel,
    ListingConsent,
    Node,
    NodeKind,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Product,
    ProductStatus,
    Refund,
    RefundStatus,
    Role,
    RoleGrant,
    SellerKind,
    SellerProfile,
    StorageClass,
    SubOrder,
    Unit,
    User,
    Vehicle,
    clock,
    distribution_center_counties,
)
from domain.orders import DeliveryMethod
from seed.loader import read_json
from services import catalog, ledger, places
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import PaymentGateway
from tests.conftest import MEIXIAN, NOW, YINGDE, count, next_phone

# --- binding the factories to a session ---------------------------------------------------------

_sessions: list[Session] = []


@contextmanager
def bound(session: Session) -> Iterator[Session]:
    """Factories write through `session` inside this block (blocks nest; the innermost wins)."""
    _sessions.append(session)
    try:
        yield session
    finally:
        _sessions.pop()


def _current_session() -> Session:
    if not _sessions:
        raise RuntimeError("no session bound: use the `session` fixture or tests.factories.bound(session)")
    return _sessions[-1]


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current_session
        sqlalchemy_session_persistence = "flush"


# --- plain rows -----------------------------------------------------------------------------------

DIVISION = "44"  # 广东省: any division will do for an order's address in the ledger's tests
LONG_AGO = NOW - timedelta(days=10)  # completed before a 7-day holding period
RECENTLY = NOW - timedelta(days=2)  # completed within it


class UserFactory(BaseFactory):
    """A user with a role grant per `roles` (no scope) and no usable password."""

    class Meta:
        model = User

    class Params:
        roles: tuple[Role, ...] = ()

    phone = factory.LazyFunction(next_phone)
    password_hash = "!"
    display_name = ""
    grants = factory.LazyAttribute(lambda o: [RoleGrant(role=role) for role in o.roles])


class RoleGrantFactory(BaseFactory):
    class Meta:
        model = RoleGrant

    role = Role.BUYER


class SellerProfileFactory(BaseFactory):
    class Meta:
        model = SellerProfile

    kind = SellerKind.FARMER
    shop_name = "农户小店"
    division_code = DIVISION


class ListingConsentFactory(BaseFactory):
    class Meta:
        model = ListingConsent

    granted_at = factory.LazyFunction(clock.now)


class PaymentFactory(BaseFactory):
    """A payment received in full."""

    class Meta:
        model = Payment

    method = PaymentMethod.CARD
    amount_fen = 0
    idempotency_key = factory.LazyFunction(lambda: uuid.uuid4().hex)
    status = PaymentStatus.SUCCEEDED
    amount_received_fen = factory.SelfAttribute("amount_fen")


class OrderFactory(BaseFactory):
    """An order of `buyer`, delivered home, with its payment received (built with the order)."""

    class Meta:
        model = Order

    class Params:
        buyer: User | None = None

    number = factory.LazyFunction(lambda: uuid.uuid4().hex[:16])
    buyer_id = factory.SelfAttribute("buyer.id")
    placed_by_id = factory.SelfAttribute("buyer.id")
    idempotency_key = factory.LazyFunction(lambda: uuid.uuid4().hex)
    payment_method = PaymentMethod.CARD
    delivery_method = DeliveryMethod.HOME
    recipient = "张三"
    recipient_phone = factory.SelfAttribute("buyer.phone")
    division_code = DIVISION
    items_fen = 0
    shipping_fen = 0
    total_fen = factory.LazyAttribute(lambda o: o.items_fen + o.shipping_fen)
    pay_by = NOW
    payment = factory.LazyAttribute(
        lambda o: PaymentFactory.build(method=o.payment_method, amount_fen=o.total_fen)
    )


class SubOrderFactory(BaseFactory):
    """The one sub-order of an order made for it (same amounts, `method` paid)."""

    class Meta:
        model = SubOrder

    class Params:
        buyer: User | None = None
        seller: User | None = None
        method = PaymentMethod.CARD

    order = factory.SubFactory(
        OrderFactory,
        buyer=factory.SelfAttribute("..buyer"),
        payment_method=factory.SelfAttribute("..method"),
        items_fen=factory.SelfAttribute("..items_fen"),
        shipping_fen=factory.SelfAttribute("..shipping_fen"),
    )
    number = factory.LazyAttribute(lambda o: f"{o.order.number}-1")
    seller_id = factory.SelfAttribute("seller.id")
    status = OrderStatus.PAID
    items_fen = 0
    shipping_fen = 0
    total_fen = factory.LazyAttribute(lambda o: o.items_fen + o.shipping_fen)
    commission_fen = 0
    storage_class = StorageClass.AMBIENT
    completed_at = None


class RefundFactory(BaseFactory):
    """A refund that went through, of part of a sub-order's payment."""

    class Meta:
        model = Refund

    class Params:
        sub_order: SubOrder | None = None

    payment_id = factory.LazyAttribute(lambda o: o.sub_order.order.payment.id)
    sub_order_id = factory.SelfAttribute("sub_order.id")
    amount_fen = 0
    idempotency_key = factory.LazyFunction(lambda: uuid.uuid4().hex)
    status = RefundStatus.SUCCEEDED


# --- ledger helpers (orders are built directly: the ledger only reads their amounts) -------------


def add_user(session: Session, *roles: Role, name: str = "") -> User:
    with bound(session):
        return UserFactory(roles=roles, display_name=name)


def add_seller(session: Session, shop_name: str | None = None) -> User:
    seller = add_user(session, Role.FARMER, name="农户")
    if shop_name is not None:
        with bound(session):
            SellerProfileFactory(user_id=seller.id, shop_name=shop_name)
    session.flush()
    return seller


def add_sub_order(
    session: Session,
    buyer: User,
    seller: User,
    *,
    items: int,
    commission: int = 0,
    shipping: int = 0,
    status: OrderStatus = OrderStatus.PAID,
    completed_at: datetime | None = None,
    method: PaymentMethod = PaymentMethod.CARD,
) -> SubOrder:
    """One order of one sub-order, with its payment received."""
    with bound(session):
        return SubOrderFactory(
            buyer=buyer,
            seller=seller,
            method=method,
            items_fen=items,
            shipping_fen=shipping,
            commission_fen=commission,
            status=status,
            completed_at=completed_at,
        )


def add_refund(session: Session, sub_order: SubOrder, amount: int) -> Refund:
    """A settled refund, with the sub-order's and the payment's refunded totals that go with it."""
    sub_order.refunded_fen += amount
    sub_order.order.payment.amount_refunded_fen += amount
    with bound(session):
        return RefundFactory(sub_order=sub_order, amount_fen=amount)


def paid_and_completed(
    session: Session, buyer: User, seller: User, at: datetime = LONG_AGO, **amounts: Any
) -> SubOrder:
    sub_order = add_sub_order(
        session, buyer, seller, status=OrderStatus.COMPLETED, completed_at=at, **amounts
    )
    ledger.post_sub_order_paid(session, sub_order)
    return sub_order


def pickup_code_of(session: Session, order: Order, keys: Any) -> str:
    """The 6-digit pickup code of a pickup order, as its buyer's page shows it (made on first
    need); `keys` is a services.orders.pickup.PickupCodeKeys (the app's: `pickup_keys` fixture)."""
    from services.orders import pickup

    code = pickup.code_of(keys, pickup.ensure_code(session, order, keys))
    session.commit()
    return code


# --- the catalog's world (through the services) ---------------------------------------------------

# The catalog tests' own county (the conftest's and the places tests' counties are others').
COUNTY = "441423"  # 梅州市丰顺县
OTHER_COUNTY = "441424"  # 梅州市五华县


@dataclass
class World:
    admin: User
    point: Node  # a village point in `village`
    village: Division
    neighbour: Division  # another village of the point's town
    far_village: Division  # a village of another town of the county
    other_point: Node  # a point in the far village's town
    agent: User
    other_agent: User
    farmer: User  # lives in `village`
    neighbour_farmer: User  # lives in `neighbour`
    far_farmer: User  # lives in `far_village`
    merchant: User
    buyer: User
    top: Category
    pomelo: Category
    tea: Category
    goods: Category
    fertilizer: Category


def first_village(session: Session, county: str, offset: int = 0) -> Division:
    """The first rural village (村委会) of a county by code (the `offset`-th with offset)."""
    return session.scalars(
        select(Division)
        .where(
            Division.level == DivisionLevel.VILLAGE,
            Division.code.startswith(county),
            Division.name.endswith("村委会"),
        )
        .order_by(Division.code)
        .offset(offset)
        .limit(1)
    ).one()


def _villages(session: Session, prefix: str) -> list[Division]:
    return list(
        session.scalars(
            select(Division)
            .where(
                Division.level == DivisionLevel.VILLAGE,
                Division.code.startswith(prefix),
                Division.name.endswith("村委会"),
            )
            .order_by(Division.code)
        )
    )


def make_categories(session: Session) -> tuple[Category, ...]:
    tag = uuid.uuid4().hex[:8]
    top = Category(slug=f"fruit-{tag}", name="水果", name_en="Fruit", flow=CategoryFlow.FARM, position=1)
    goods = Category(
        slug=f"inputs-{tag}", name="农资", name_en="Farm inputs", flow=CategoryFlow.GOODS, position=2
    )
    session.add_all([top, goods])
    session.flush()
    pomelo = Category(
        slug=f"pomelo-{tag}",
        name="柚子",
        name_en="Pomelos",
        flow=CategoryFlow.FARM,
        parent_id=top.id,
        position=1,
    )
    tea = Category(
        slug=f"tea-{tag}", name="茶叶", name_en="Tea", flow=CategoryFlow.FARM, parent_id=top.id, position=2
    )
    fertilizer = Category(
        slug=f"fertilizer-{tag}",
        name="化肥",
        name_en="Fertilizer",
        flow=CategoryFlow.GOODS,
        parent_id=goods.id,
    )
    session.add_all([pomelo, tea, fertilizer])
    session.commit()
    return top, pomelo, tea, goods, fertilizer


def build_world(session: Session, admin: User, make_user) -> World:  # type: ignore[no-untyped-def]
    villages = _villages(session, COUNTY)
    village = villages[0]
    neighbour = next(v for v in villages if v.code[:9] == village.code[:9] and v.code != village.code)
    far_village = next(v for v in villages if v.code[:9] != village.code[:9])

    def point_in(v: Division, name: str) -> Node:
        return places.create_node(
            session, admin, NodeKind.VILLAGE_POINT, {"division_code": v.code, "name": name}
        )

    point = point_in(village, "丰顺测试服务点")
    other_point = point_in(far_village, "丰顺另一镇服务点")

    def seller(role: Role, code: str, name: str, kind: SellerKind | None = None) -> User:
        user = make_user(role, name=name)
        catalog.save_seller_profile(session, user, shop_name=name, division_code=code, kind=kind)
        return user

    top, pomelo, tea, goods, fertilizer = make_categories(session)
    return World(
        admin=admin,
        point=point,
        village=village,
        neighbour=neighbour,
        far_village=far_village,
        other_point=other_point,
        agent=make_user(Role.AGENT, node_id=point.id, name="丰顺村小二"),
        other_agent=make_user(Role.AGENT, node_id=other_point.id, name="另一镇村小二"),
        farmer=seller(Role.FARMER, village.code, "柚农老李"),
        neighbour_farmer=seller(Role.FARMER, neighbour.code, "邻村陈伯"),
        far_farmer=seller(Role.FARMER, far_village.code, "远村黄姨"),
        merchant=seller(Role.MERCHANT, COUNTY, "丰顺农资店", SellerKind.MERCHANT),
        buyer=make_user(Role.BUYER, name="买家"),
        top=top,
        pomelo=pomelo,
        tea=tea,
        goods=goods,
        fertilizer=fertilizer,
    )


def listing(w: World, **changes: Any) -> catalog.ListingInput:
    base = catalog.ListingInput(
        name="梅县金柚",
        category_id=w.pomelo.id,
        unit=Unit.JIN,
        price_fen=680,
        stock=500,
        description="自家果园，甜而多汁。",
    )
    return replace(base, **changes)


def consent(session: Session, agent: User, farmer: User, point: Node) -> ListingConsent:
    """A consent record as enrollment leaves it (enrollment itself is tested in test_catalog)."""
    with bound(session):
        record = ListingConsentFactory(farmer_id=farmer.id, agent_id=agent.id, point_id=point.id)
    session.commit()
    return record


def row(session: Session, product_id: int) -> dict[str, Any]:
    """The product as the database holds it, with its certifications and the audit count."""
    session.expire_all()
    product = session.get(Product, product_id)
    assert product is not None
    data = {c.key: getattr(product, c.key) for c in Product.__table__.columns}
    data["certifications"] = sorted((c.kind.value, c.number) for c in product.certifications)
    data["audit"] = count(session, AuditEvent, AuditEvent.entity_id == str(product_id))
    return data


# --- a network of places (through the services) ---------------------------------------------------

# Counties of the places tests' own network. Not the conftest's MEIXIAN/PINGYUAN/YINGDE, which
# other tests use too: on SQLite the harness's rollback is not airtight (see _real_outer_transaction).
COUNTY_X = "441422"  # 梅州市大埔县
COUNTY_Y = "441427"  # 梅州市蕉岭县
COUNTY_Z = "441882"  # 清远市连州市
SHENZHEN_LONGGANG = "440307"


@dataclass
class Network:
    """Two counties of 梅州市 with a center each; points A and B in county X, C in county Y; a DC."""

    center_x: Node
    center_y: Node
    point_a: Node
    point_b: Node
    point_c: Node
    dc: Node


def build_network(session: Session, admin: User, first_village) -> Network:  # type: ignore[no-untyped-def]
    def make(kind: NodeKind, code: str, name: str, **extra) -> Node:  # type: ignore[no-untyped-def]
        served = extra.pop("served", ())
        data = {"division_code": code, "name": name, **extra}
        return places.create_node(session, admin, kind, data, served_county_codes=served)

    center_x = make(NodeKind.COUNTY_CENTER, COUNTY_X, "大埔县县域综合服务中心", phone="0753-2128800")
    center_y = make(NodeKind.COUNTY_CENTER, COUNTY_Y, "蕉岭县县域综合服务中心", phone="0753-8888100")
    a, b, c = first_village(COUNTY_X), first_village(COUNTY_X, 1), first_village(COUNTY_Y)
    point_a = make(
        NodeKind.VILLAGE_POINT, a.code, "甲村服务点", phone="0753-2781221", opening_hours="08:00-20:00"
    )
    point_b = make(
        NodeKind.VILLAGE_POINT, b.code, "乙村服务点", phone="13900001402", opening_hours="07:30-21:00"
    )
    point_c = make(NodeKind.VILLAGE_POINT, c.code, "丙村服务点", has_cold_storage=True)
    dc = make(
        NodeKind.DISTRIBUTION_CENTER, SHENZHEN_LONGGANG, "深圳龙岗城乡配送中心", served=[COUNTY_X, COUNTY_Y]
    )
    return Network(center_x, center_y, point_a, point_b, point_c, dc)


def snapshot(session: Session, node_id: int) -> dict:  # type: ignore[type-arg]
    """The node's row as the database holds it, plus how many audit events exist."""
    session.expire_all()
    node = session.get(Node, node_id)
    assert node is not None
    data = {c.key: getattr(node, c.key) for c in Node.__table__.columns}
    data["served"] = [d.code for d in node.served_counties]
    data["audit_events"] = session.scalar(select(func.count()).select_from(AuditEvent))
    return data


def node_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Node)) or 0


# --- a shop and a market (through the services) ---------------------------------------------------

GI = CertificationKind.GEOGRAPHICAL_INDICATION
FOSHAN_SHUNDE = "440606"


@dataclass
class Shop:
    """A small catalog made through the services: two farmers in two counties and a merchant."""

    session: Session
    categories: dict[str, int]
    meixian_farmer: User
    yingde_farmer: User
    merchant: User
    products: dict[str, Product] = field(default_factory=dict)

    def add(
        self,
        name: str,
        category: str,
        price_fen: int,
        *,
        seller: User | None = None,
        publish: bool = True,
        **extra: Any,
    ) -> Product:
        data = catalog.ListingInput(
            name=name,
            category_id=self.categories[category],
            unit=extra.pop("unit", Unit.JIN),
            price_fen=price_fen,
            stock=extra.pop("stock", 10),
            **extra,
        )
        product = catalog.create_product(self.session, seller or self.meixian_farmer, data, publish=publish)
        self.products[name] = product
        return product

    def visible_ids(self) -> set[int]:
        return {
            p.id for p in self.products.values() if p.status in (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT)
        }


def build_shop(session: Session, make_user, first_village) -> Shop:  # type: ignore[no-untyped-def]
    catalog.import_categories(session, read_json("categories.json"))
    categories = {c.slug: c.id for c in catalog.categories(session)}
    meixian = make_user(Role.FARMER, name="梅县柚农")
    catalog.save_seller_profile(
        session, meixian, shop_name="梅县柚园", division_code=first_village(MEIXIAN).code
    )
    yingde = make_user(Role.FARMER, name="英德茶农")
    catalog.save_seller_profile(
        session,
        yingde,
        shop_name="英德茶园",
        division_code=first_village(YINGDE).code,
        kind=SellerKind.COOPERATIVE,
    )
    merchant = make_user(Role.MERCHANT, name="顺德商行")
    catalog.save_seller_profile(session, merchant, shop_name="顺德商行", division_code=FOSHAN_SHUNDE)
    shop = Shop(session, categories, meixian, yingde, merchant)
    shop.add("梅县金柚", "citrus", 4500, certifications=((GI, "AGI00319"),))
    shop.add("梅县蜜柚", "citrus", 450)
    shop.add("平价沙田柚", "citrus", 450)
    shop.add(
        "冰鲜走地鸡", "poultry", 9800, storage_class=StorageClass.CHILLED, unit=Unit.PIECE, net_weight_g=1500
    )
    shop.add(
        "英德红茶",
        "black-tea",
        12800,
        seller=yingde,
        unit=Unit.BAG,
        net_weight_g=250,
        certifications=((GI, "AGI00093"), (CertificationKind.ORGANIC, "127OP2100458")),
    )
    shop.add("英德绿茶", "green-tea", 6800, seller=yingde, unit=Unit.BAG, net_weight_g=250)
    shop.add("售罄的荔枝干", "dried-produce", 5800, seller=yingde, stock=0, unit=Unit.BAG, net_weight_g=500)
    shop.add("复合肥", "fertilizer", 16500, seller=merchant, unit=Unit.BAG, net_weight_g=40000)
    shop.add("草稿里的柚子", "citrus", 300, publish=False)
    paused = shop.add("暂停的柚子", "citrus", 350)
    catalog.set_status(session, meixian, paused.id, ProductStatus.PAUSED)
    return shop


@dataclass
class Market:
    """A shop and a buyer, placing and paying orders through the real services."""

    shop: Shop
    buyer: User
    village_code: str

    @property
    def session(self) -> Session:
        return self.shop.session

    def product(self, name: str) -> Product:
        return self.shop.products[name]

    def address(self) -> AddressInput:
        return AddressInput(
            recipient="陈小姐", phone="13912345678", division_code=self.village_code, detail="幸福路8号"
        )

    def place(
        self,
        items: dict[str, int] | dict[int, int],
        settings: CheckoutSettings,
        *,
        key: str | None = None,
        buyer: User | None = None,
        method: str = "card",
        **extra: Any,
    ) -> Order:
        ids = {(self.product(k).id if isinstance(k, str) else k): q for k, q in items.items()}
        data = CheckoutInput(
            items=ids,
            idempotency_key=key or checkout.new_idempotency_key(),
            payment_method=method,
            address=extra.pop("address", self.address()),
            **extra,
        )
        return checkout.place_order(self.session, buyer or self.buyer, data, settings).order

    def api_body(
        self, items: dict[str, int] | dict[int, int], key: str = "order-key-0001", **extra: Any
    ) -> dict[str, Any]:
        """The JSON body of POST /api/v1/orders for these items (names or product ids)."""
        address = self.address()
        body: dict[str, Any] = {
            "items": [
                {"product_id": self.product(k).id if isinstance(k, str) else k, "quantity": q}
                for k, q in items.items()
            ],
            "idempotency_key": key,
            "payment_method": "card",
            "delivery": "home",
            "address": {
                "recipient": address.recipient,
                "phone": address.phone,
                "division_code": address.division_code,
                "detail": address.detail,
            },
        }
        body.update(extra)
        return body

    def pay(self, order: Order, gateway: PaymentGateway, card: str = "pm_card_visa") -> Order:
        payments.confirm_with(self.session, gateway, order, card)
        self.session.refresh(order)
        return order


def build_market(session: Session, make_user, first_village) -> Market:  # type: ignore[no-untyped-def]
    shop = build_shop(session, make_user, first_village)
    buyer = make_user(Role.BUYER, name="广州买家")
    return Market(shop=shop, buyer=buyer, village_code=first_village(MEIXIAN).code)


def rebind_market(market: Market, session: Session) -> Market:
    """The same market read afresh through `session`: a market built once for a module (the
    `market` fixture of tests/conftest.py, SHARED_MARKET) handed to one of its tests. Its users
    and products are loaded in two queries; the test gets its own Shop whose `add` writes
    through its session."""
    old = market.shop
    user_ids = {old.meixian_farmer.id, old.yingde_farmer.id, old.merchant.id, market.buyer.id}
    product_ids = {name: p.id for name, p in old.products.items()}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    by_id = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(product_ids.values())))}
    shop = Shop(
        session,
        dict(old.categories),
        users[old.meixian_farmer.id],
        users[old.yingde_farmer.id],
        users[old.merchant.id],
        {name: by_id[pid] for name, pid in product_ids.items()},
    )
    return Market(shop=shop, buyer=users[market.buyer.id], village_code=market.village_code)


# --- the seed's rows --------------------------------------------------------------------------------


def database_state(session: Session) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Every row the seed loader may write, as plain tuples."""
    session.expire_all()

    def rows(model) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
        cols = list(model.__table__.columns)
        return sorted(session.execute(select(*cols)).all(), key=repr)

    return {
        "nodes": rows(Node),
        "users": rows(User),
        "grants": rows(RoleGrant),
        "audit": rows(AuditEvent),
        "dc_counties": sorted(session.execute(select(distribution_center_counties)).all()),
    }


# --- photos -----------------------------------------------------------------------------------------

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg(
    size: tuple[int, int] = (1200, 800),
    *,
    orientation: int | None = None,
    gps: bool = True,
    mode: str = "RGB",
    icc: bytes | None = None,
) -> bytes:
    """A camera-like JPEG: left half red, right half blue, EXIF with the camera and a GPS position."""
    img = Image.new("RGB", size, (220, 20, 20))
    img.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    if mode != "RGB":
        img = img.convert(mode)
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"
    exif[0x0110] = "Model X"
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        ifd = exif.get_ifd(GPS_IFD)
        ifd.update({1: "N", 2: (24.0, 15.0, 57.6), 3: "E", 4: (116.0, 13.0, 30.0)})
    buf = BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=90, **extra)
    return buf.getvalue()


def png(size: tuple[int, int] = (600, 400), mode: str = "RGBA") -> bytes:
    img = Image.new(mode, size, (0, 128, 0, 0) if mode == "RGBA" else (0, 128, 0))
    buf = BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge picture: what a decompression bomb looks like up front."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# --- parcels at the village point (issue 11, item 4) -----------------------------------------------


def pickup_parcel_in_transit(
    session: Session, market: Market, gateway: Any, settings: CheckoutSettings, staff: User, point: Node
) -> SubOrder:
    """A paid pickup order of one 梅县金柚 at `point` (contact 陈小姐, 13912345678), accepted by its
    farmer, handed in (as the intake at the seller's point leaves it) and in transit to the point:
    its one sub-order, for the point's agent to mark arrived."""
    from services.authz import Party
    from services.orders import manage, states

    order = market.place(
        {"梅县金柚": 1},
        settings,
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈小姐", phone="13912345678"),
        address=None,
    )
    market.pay(order, gateway)
    (sub,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, sub.number, OrderStatus.ACCEPTED)
    session.expire_all()
    sub = session.get(SubOrder, sub.id)  # type: ignore[assignment]
    states.apply(session, sub, OrderStatus.HANDED_IN, party=Party.STAFF, actor=staff)
    session.commit()
    manage.move(session, staff, sub.number, OrderStatus.IN_TRANSIT)
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


# --- produce intake at the village point (issue 11, item 5) -------------------------------------------


def receiver_of(session: Session, sub: SubOrder) -> User:
    """Someone who receives this sub-order's goods (services.intake), able to log in with
    TEST_PASSWORD: an agent of the seller's home point, made if there is none; with no home
    point, staff of the seller's county, made if need be, with a county center to receive at
    (opened if the county has none). Never its buyer, placer or seller."""
    from services import accounts
    from tests.conftest import TEST_PASSWORD

    profile = session.get(SellerProfile, sub.seller_id)
    assert profile is not None, "the seller has no profile"
    parties = {sub.seller_id, sub.order.buyer_id, sub.order.placed_by_id}
    point, county = profile.home_point_id, profile.county_code
    assert point is not None or county is not None, "the seller has neither a home point nor a county"
    role, scope = (
        (Role.AGENT, {"node_id": point})
        if point is not None
        else (Role.COUNTY_STAFF, {"county_code": county})
    )
    column = RoleGrant.node_id if point is not None else RoleGrant.county_code
    grant = session.scalar(
        select(RoleGrant).where(
            RoleGrant.role == role, column == (point or county), RoleGrant.user_id.not_in(parties)
        )
    )
    if grant is not None:
        user = session.get(User, grant.user_id)
        assert user is not None
    else:
        name = "收货村小二" if point is not None else "县中心收货员"
        user = accounts.create_user(
            session, phone=next_phone(), password=TEST_PASSWORD, display_name=name, roles=()
        )
        session.add(RoleGrant(user_id=user.id, role=role, **scope))
    if point is None:
        center = select(Node.id).where(Node.kind == NodeKind.COUNTY_CENTER, Node.county_code == county)
        if session.scalar(center) is None:
            kind = NodeKind.COUNTY_CENTER
            session.add(Node(kind=kind, name="县级服务中心", division_code=county, county_code=county))
    session.commit()
    session.refresh(user)
    return user


def receive(
    session: Session,
    gateway: PaymentGateway,
    sub: SubOrder,
    *,
    by: User | None = None,
    weights: dict[Any, int] | None = None,
    grades: dict[Any, str] | None = None,
    quantities: dict[Any, int] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Any:
    """The hand-in of an accepted sub-order, recorded as the intake at the point
    (services.intake.record_intake): every line weighed at its ordered net weight, graded 一级,
    all accepted, unless `weights` (grams) / `grades` / `quantities` say otherwise for a line
    (keyed by product name or order line id). `by`: the receiver (default `receiver_of`)."""
    from services import intake

    sub = session.get(SubOrder, sub.id) or sub

    def pick(table: dict[Any, Any] | None, line: Any, default: Any) -> Any:
        table = table or {}
        return table.get(line.id, table.get(line.name, default))

    lines = [
        intake.LineInput(
            line_id=line.id,
            weighed_g=pick(weights, line, line.net_weight_g * line.quantity),
            grade=pick(grades, line, "first"),
            accepted_quantity=pick(quantities, line, None),
        )
        for line in sub.lines
    ]
    receiver = by or receiver_of(session, sub)
    return intake.record_intake(
        session, gateway, receiver, sub.number, lines, key or checkout.new_idempotency_key(), now=now
    )


# --- parcels travelling by scans (issue 12) ----------------------------------------------------------


def staff_of(session: Session, node: Node) -> User:
    """Someone who scans parcels at `node` (authz.works_at), able to log in with TEST_PASSWORD:
    found among its grants, else made."""
    from services import accounts, authz
    from tests.conftest import TEST_PASSWORD

    role, scope = {
        NodeKind.VILLAGE_POINT: (Role.AGENT, {"node_id": node.id}),
        NodeKind.DISTRIBUTION_CENTER: (Role.DC_STAFF, {"node_id": node.id}),
        NodeKind.COUNTY_CENTER: (Role.COUNTY_STAFF, {"county_code": node.county_code}),
    }[node.kind]
    column = RoleGrant.county_code if node.kind == NodeKind.COUNTY_CENTER else RoleGrant.node_id
    for grant in session.scalars(
        select(RoleGrant).where(RoleGrant.role == role, column == next(iter(scope.values())))
    ):
        user = session.get(User, grant.user_id)
        if user is not None and authz.works_at(user, node):
            return user
    user = accounts.create_user(
        session, phone=next_phone(), password=TEST_PASSWORD, display_name="扫描员", roles=()
    )
    session.add(RoleGrant(user_id=user.id, role=role, **scope))
    session.commit()
    session.refresh(user)
    return user


def carry(session: Session, sub: SubOrder, *, last_by: User | None = None, to_the_end: bool = True) -> None:
    """Scan a handed-in sub-order's parcel along its legs, each scan by its node's staff
    (`staff_of`); the last arrival (or the departure for the door) by `last_by` if given.
    Without `to_the_end`, it stops on its way to the last node."""
    from domain import LegStatus, ScanKind
    from services.logistics import scans

    shipment = scans.shipment_of(session, sub)
    assert shipment is not None, "the sub-order has no shipment (no route: see services/logistics/network.py)"
    while (leg := next((x for x in shipment.legs if x.status != LegStatus.ARRIVED), None)) is not None:
        last = leg is shipment.legs[-1]
        if leg.status == LegStatus.PLANNED:
            if leg.to_node_id is None and not to_the_end:
                break
            node_id, kind = leg.from_node_id, ScanKind.DEPARTED
        elif leg.to_node_id is None or (last and not to_the_end):
            break
        else:
            node_id, kind = leg.to_node_id, ScanKind.ARRIVED
        node = session.get(Node, node_id)
        assert node is not None
        final = last and (kind == ScanKind.ARRIVED or leg.to_node_id is None)
        actor = last_by if final and last_by is not None else staff_of(session, node)
        scans.record_scan(session, actor, sub.number, kind, checkout.new_idempotency_key(), node_id=node.id)
        session.refresh(shipment)
        if leg.to_node_id is None:
            break


MEIJIANG = "441402"  # 梅州市梅江区: the city's distribution center
ZENGCHENG = "440118"  # 广州市增城区: a city buyer


@dataclass
class Logistics:
    """The market's 梅县 farmer at their home point (with its agent), 梅县's and 顺德's county
    centers, a DC in 梅州 serving 梅县 and one in 佛山 serving 顺德, each with its staff."""

    point: Node
    agent: User
    center: Node  # 梅县
    center_sd: Node  # 顺德
    dc: Node  # 梅州
    dc_fs: Node  # 佛山
    county_staff: User
    county_staff_sd: User
    dc_staff: User
    dc_staff_fs: User


def build_logistics(session: Session, admin: User, make_user, point: Node, agent: User) -> Logistics:  # type: ignore[no-untyped-def]
    def node(kind: NodeKind, code: str, name: str, served: tuple[str, ...] = ()) -> Node:
        data = {"division_code": code, "name": name}
        return places.create_node(session, admin, kind, data, served_county_codes=served)

    center = node(NodeKind.COUNTY_CENTER, MEIXIAN, "梅县区县域综合服务中心")
    center_sd = node(NodeKind.COUNTY_CENTER, FOSHAN_SHUNDE, "顺德区县域综合服务中心")
    dc = node(NodeKind.DISTRIBUTION_CENTER, MEIJIANG, "梅州城乡配送中心", (MEIXIAN,))
    dc_fs = node(NodeKind.DISTRIBUTION_CENTER, FOSHAN_SHUNDE, "佛山城乡配送中心", (FOSHAN_SHUNDE,))
    return Logistics(
        point=point,
        agent=agent,
        center=center,
        center_sd=center_sd,
        dc=dc,
        dc_fs=dc_fs,
        county_staff=make_user(Role.COUNTY_STAFF, county_code=MEIXIAN, name="梅县中心"),
        county_staff_sd=make_user(Role.COUNTY_STAFF, county_code=FOSHAN_SHUNDE, name="顺德中心"),
        dc_staff=make_user(Role.DC_STAFF, node_id=dc.id, name="梅州配送"),
        dc_staff_fs=make_user(Role.DC_STAFF, node_id=dc_fs.id, name="佛山配送"),
    )


def city_address(first_village) -> AddressInput:  # type: ignore[no-untyped-def]
    return AddressInput(
        recipient="黄女士",
        phone="13912345678",
        division_code=first_village(ZENGCHENG).code,
        detail="荔景路1号",
    )


def handed_in(
    session: Session, market: Any, gateway: Any, world: Logistics, items: dict[str, int], **extra: Any
) -> SubOrder:
    """A paid order of the 梅县 farmer's goods, accepted and handed in at the farmer's point (the
    intake makes its shipment)."""
    from services.authz import Party
    from services.orders import states

    order = market.pay(market.place(items, CheckoutSettings(free_shipping_from_fen=0), **extra), gateway)
    (sub,) = order.sub_orders
    states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=market.shop.meixian_farmer)
    session.commit()
    receive(session, gateway, sub, by=world.agent)
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


def credit_proxy_order(
    session: Session,
    market: Any,
    settings: CheckoutSettings,
    point: Node,
    agent: User,
    make_user: Any,
) -> Order:
    """A villager without a phone of their own (王秀英) and a proxy order of one 梅县金柚 for them,
    to collect at the point, on the point's agent's credit (a limit of ¥1,000 set by the
    county's staff): paid, waiting for its farmer."""
    from domain import ConsentMethod
    from services import villagers
    from services.proxy import credit
    from services.villagers import VillagerInput

    villager = villagers.register_villager(
        session,
        agent,
        VillagerInput(
            name="王秀英", village_code=point.division_code, consent_method=ConsentMethod.IN_PERSON.value
        ),
        idempotency_key=checkout.new_idempotency_key(),
    )
    staff = make_user(Role.COUNTY_STAFF, county_code=point.county_code)
    credit.set_credit_limit(session, staff, agent.id, 100_000, checkout.new_idempotency_key())
    order = checkout.place_order(
        session,
        agent,
        CheckoutInput(
            items={market.product("梅县金柚").id: 1},
            idempotency_key=checkout.new_idempotency_key(),
            payment_method="credit",
            delivery="pickup",
            pickup_node_id=point.id,
            pickup_contact=AddressInput(recipient="王秀英", phone=agent.phone),
            address=None,
        ),
        settings,
        placed_by=agent,
        villager_id=villager.id,
    ).order
    return order


def credit_parcel_waiting(
    session: Session,
    market: Any,
    settings: CheckoutSettings,
    admin: User,
    point: Node,
    agent: User,
    make_user: Any,
) -> SubOrder:
    """A villager without a phone of their own (王秀英), a proxy order of 梅县金柚 on the point's
    agent's credit (a limit of ¥1,000 set by the county's staff), accepted, handed in, in transit
    and arrived at the point: waiting for the villager, cash to collect."""
    from services import parcels
    from services.authz import Party
    from services.orders import manage, states

    order = credit_proxy_order(session, market, settings, point, agent, make_user)
    (sub,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, sub.number, OrderStatus.ACCEPTED)
    # Handed in at the seller's point, as the intake leaves it (services/intake.py: its own tests).
    session.expire_all()
    states.apply(
        session, session.get(SubOrder, sub.id), OrderStatus.HANDED_IN, party=Party.STAFF, actor=admin
    )  # type: ignore[arg-type]
    session.commit()
    manage.move(session, admin, sub.number, OrderStatus.IN_TRANSIT)
    parcels.mark_arrived(session, agent, sub.number, checkout.new_idempotency_key())
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


# --- hubs: pallets and the day's routes (issue 12, items 5-6) ------------------------------------------


def pickup_at(node: Node) -> dict[str, Any]:
    """An order's extra arguments for collecting it at `node`."""
    return {
        "delivery": "pickup",
        "pickup_node_id": node.id,
        "pickup_contact": AddressInput(recipient="陈阿婆", phone="13912340000"),
        "address": None,
    }


def parcel_at_center(
    session: Session,
    market: Any,
    gateway: Any,
    world: Logistics,
    items: dict[str, int],
    to: Node,
    *,
    weight_g: int | None = None,
) -> SubOrder:
    """The 梅县 farmer's goods handed in at the farmer's point for collection at `to` (another
    梅县 point), scanned out of the point and into the county center: waiting there for its leg
    to `to`. `weight_g` overrides the weighed weight (a heavy parcel for pallet limits)."""
    from domain import ScanKind
    from services.logistics import scans

    sub = handed_in(session, market, gateway, world, items, **pickup_at(to))
    for kind, node in ((ScanKind.DEPARTED, world.point), (ScanKind.ARRIVED, world.center)):
        scans.record_scan(
            session,
            staff_of(session, node),
            sub.number,
            kind,
            checkout.new_idempotency_key(),
            node_id=node.id,
        )
    if weight_g is not None:
        sub.weight_g = weight_g
        session.commit()
    return sub


def add_vehicle(
    session: Session,
    node: Node,
    plate: str,
    *,
    kg: int = 1500,
    m3: float = 8.0,
    refrigerated: bool = False,
    shift: tuple[str, str] = ("07:00", "19:00"),
) -> Vehicle:
    """A vehicle at `node`, added by its staff through services/logistics/fleet.py."""
    from services.logistics import fleet

    return fleet.save_vehicle(
        session,
        staff_of(session, node),
        node,
        fleet.VehicleInput(
            plate=plate,
            kind="refrigerated" if refrigerated else "ambient",
            capacity_kg=str(kg),
            capacity_m3=str(m3),
            shift_start=shift[0],
            shift_end=shift[1],
        ),
    )


def carry_step(session: Session, sub: SubOrder, *, vehicle: Any = None) -> Any:
    """One scan of a handed-in parcel's next move (departure or arrival) at the product clock's
    time, by the node's staff (`staff_of`); a departure's leg carried by `vehicle` when given (as
    the day's route plan would set it). Returns the leg scanned."""
    from domain import LegStatus, ScanKind
    from services.logistics import scans

    shipment = scans.shipment_of(session, sub)
    assert shipment is not None
    leg = next(x for x in shipment.legs if x.status != LegStatus.ARRIVED)
    if leg.status == LegStatus.PLANNED:
        node_id, kind = leg.from_node_id, ScanKind.DEPARTED
        if vehicle is not None:
            leg.vehicle_id = vehicle.id
            session.commit()
    else:
        assert leg.to_node_id is not None, "the last leg goes to the door: scan the delivery"
        node_id, kind = leg.to_node_id, ScanKind.ARRIVED
    node = session.get(Node, node_id)
    assert node is not None
    scans.record_scan(
        session, staff_of(session, node), sub.number, kind, checkout.new_idempotency_key(), node_id=node_id
    )
    session.refresh(leg)
    return leg


def cold_chain(session: Session, world: Logistics) -> Any:
    """A refrigerated van based at the 梅县 county center, and a cold store at the 梅州 DC."""
    from datetime import time

    from domain import Vehicle, VehicleKind

    van = Vehicle(
        node_id=world.center.id,
        plate="粤M·L0001",
        kind=VehicleKind.REFRIGERATED,
        capacity_kg=1500,
        capacity_l=8000,
        shift_start=time(6, 0),
        shift_end=time(18, 0),
    )
    session.add(van)
    world.dc.has_cold_storage = True
    session.commit()
    return van


def cold_trip(
    session: Session, market: Any, gateway: Any, world: Logistics, van: Any, first_village: Any, clock: Any
) -> Any:
    """A lot of the 梅县 farmer's chilled chicken for a city door, handed in at NOW; left the point
    at +1 h, at the center at +2 h, left in `van` at +3 h, at the DC at +5 h, left the DC at +9 h.
    The clock then stands at +10 h. Returns the lot."""
    from domain import Lot

    sub = handed_in(session, market, gateway, world, {"冰鲜走地鸡": 1}, address=city_address(first_village))
    for hours, vehicle in ((1, None), (2, None), (3, van), (5, None), (9, None)):
        clock.set(NOW + timedelta(hours=hours))
        carry_step(session, sub, vehicle=vehicle)
    clock.set(NOW + timedelta(hours=10))
    (lot,) = session.scalars(select(Lot).where(Lot.sub_order_id == sub.id))
    return lot
