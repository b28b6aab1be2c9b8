"""Load the demo data through the services, idempotently: a second run adds and changes nothing.

    python -m seed.loader            load into DATABASE_URL (the same as `flask --app wsgi seed`),
                                     the order history and the demo agent's point too
                                     (seed/history.py, seed/agents.py, paid through a localstripe
                                     on instance/localstripe.pickle: seed/gateway.py)
    python -m seed.loader --logins   print the demo logins from the data file (no database)

What is loaded (files in seed/data/):
  divisions.csv, coordinates.csv   all of Guangdong's divisions with official codes
  county_centers.json              one county service center per county with village points
  village_points.json              village service points in real villages (村委会)
  distribution_centers.json        city-side distribution centers and the counties they serve
  demo_users.json                  one or more demo users per role; password DEMO_PASSWORD
  categories.json                  the two-level category tree (farm produce, goods for villages)
  sellers.json                     seller profiles of the demo farmers, cooperatives and merchant
  products.json                    Guangdong specialties from the sellers' villages, and goods
                                   and farm inputs for the villages; each gets a generated photo
  demo_history.json                the demo's orders in every state, a refund or two and a paid
                                   payout batch (seed/history.py, not loaded by load_all)
  demo_agents.json                 the demo agent's point (大黄村电商服务站): the county's
                                   commission rates and the agent's credit limit, villagers with
                                   their consent, proxy orders in cash and on credit (parcels
                                   arriving, waiting, one handed over), a standing order
                                   (seed/agents.py, after the history; not loaded by load_all)
  campaigns.json                   the running 广货网上行 campaign: a flash-sale pineapple, campaign
                                   prices, platform-subsidised 满减 (seed/campaigns.py, last)

Existing rows are matched on natural keys (node kind + division code, user phone, role + scope,
category slug, seller, product idempotency key "seed:<key>") and left exactly as they are.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    CertificationKind,
    Division,
    NodeKind,
    Product,
    ProductPhoto,
    Role,
    SellerKind,
    SellerProfile,
    StorageClass,
    Unit,
    User,
    Vehicle,
)
from seed import photos, positions
from services import accounts, catalog, media, places

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_PASSWORD = "nongye-2026"  # noqa: S105 (the published demo password)
SEED_KEY_PREFIX = "seed:"

NODE_FILES = (
    (NodeKind.COUNTY_CENTER, "county_centers.json", "county_code"),
    (NodeKind.VILLAGE_POINT, "village_points.json", "village_code"),
    (NodeKind.DISTRIBUTION_CENTER, "distribution_centers.json", "county_code"),
)
NODE_FIELDS = (
    "name",
    "address",
    "phone",
    "opening_hours",
    "description",
    "has_cold_storage",
    "delivery_days",
    "cutoff_time",
    "ready_time",
)
REPORT_KEYS = {
    NodeKind.COUNTY_CENTER: "county_centers",
    NodeKind.VILLAGE_POINT: "village_points",
    NodeKind.DISTRIBUTION_CENTER: "distribution_centers",
}


def read_json(name: str, data_dir: Path = DATA_DIR) -> list[dict[str, Any]]:
    with (data_dir / name).open(encoding="utf-8") as fh:
        return json.load(fh)


def _scope(entry: dict[str, Any]) -> tuple[NodeKind | None, str | None]:
    """The node a demo user's role is scoped to, as (kind, division code)."""
    if entry.get("village_code"):
        return NodeKind.VILLAGE_POINT, entry["village_code"]
    if entry.get("distribution_center_county"):
        return NodeKind.DISTRIBUTION_CENTER, entry["distribution_center_county"]
    return None, None


def _has_grant(user: User, role: Role, node_id: int | None, county_code: str | None) -> bool:
    return any(g.role == role and g.node_id == node_id and g.county_code == county_code for g in user.grants)


def _ensure_user(session: Session, entry: dict[str, Any], report: dict[str, int]) -> User:
    user = accounts.find_user_by_phone(session, entry["phone"])
    if user is None:
        # The first admin cannot be granted by anyone: it is created with its role.
        roles = (Role.ADMIN,) if entry["role"] == Role.ADMIN else ()
        user = accounts.create_user(
            session,
            phone=entry["phone"],
            password=DEMO_PASSWORD,
            display_name=entry.get("display_name", ""),
            roles=roles,
        )
        report["users"] += 1
    return user


def _estimate(session: Session, village_code: str, data: dict[str, Any]) -> bool:
    """A demo point's estimated position inside its own town (seed/positions.py), into `data`;
    False when its county has no coordinates (the point then gets the service's stand-in)."""
    county = session.get(Division, village_code[:6])
    if county is None or county.latitude is None or county.longitude is None:
        return False
    towns = [d.code for d in places.list_divisions(session, parent_code=county.code)]
    villages = [d.code for d in places.list_divisions(session, parent_code=village_code[:9])]
    if village_code[:9] not in towns or village_code not in villages:
        return False
    data["latitude"], data["longitude"] = positions.estimated_position(
        (county.latitude, county.longitude), towns, villages, village_code
    )
    return True


def load_all(
    session: Session, data_dir: Path = DATA_DIR, *, storage: media.Storage | None = None
) -> dict[str, int]:
    """Load divisions, nodes, demo users and the catalog; returns how many of each were added.

    Product photos are generated and stored only when a photo storage is given.
    """
    report = {"divisions": 0, **{k: 0 for k in REPORT_KEYS.values()}, "users": 0, "role_grants": 0}
    report["divisions"] = places.import_divisions(
        session, places.read_division_files(data_dir / "divisions.csv", data_dir / "coordinates.csv")
    )

    users = read_json("demo_users.json", data_dir)
    admin_entry = next(u for u in users if u["role"] == Role.ADMIN)
    admin = _ensure_user(session, admin_entry, report)

    for kind, filename, key in NODE_FILES:
        for entry in read_json(filename, data_dir):
            if places.find_node(session, kind, entry[key]) is not None:
                continue
            data = {f: entry[f] for f in NODE_FIELDS if f in entry}
            data["division_code"] = entry[key]
            estimated = kind == NodeKind.VILLAGE_POINT and _estimate(session, entry[key], data)
            places.create_node(
                session,
                admin,
                kind,
                data,
                served_county_codes=entry.get("served_county_codes", ()),
                position_estimated=estimated,
            )
            report[REPORT_KEYS[kind]] += 1

    for entry in users:
        user = _ensure_user(session, entry, report)
        role = Role(entry["role"])
        node_id: int | None = None
        county_code: str | None = entry.get("county_code") if role == Role.COUNTY_STAFF else None
        scope_kind, division_code = _scope(entry)
        if scope_kind is not None and division_code is not None:
            node = places.find_node(session, scope_kind, division_code)
            if node is None:
                raise LookupError(f"demo user {entry['phone']}: no {scope_kind.value} in {division_code}")
            node_id = node.id
        session.refresh(user)  # grants made in this run
        if _has_grant(user, role, node_id, county_code):
            continue
        accounts.grant_role(
            session, admin, user_id=user.id, role=role, node_id=node_id, county_code=county_code
        )
        report["role_grants"] += 1
    report["vehicles"] = load_vehicles(session, data_dir)
    report.update(load_catalog(session, data_dir, storage=storage))
    return report


def load_vehicles(session: Session, data_dir: Path = DATA_DIR) -> int:
    """The demo hubs' vehicles (vehicles.json), each added by the hub's demo staff through
    services/logistics/fleet.py: plates of the hub's city (粤M 梅州, 粤R 清远, 粤G 湛江, 粤A
    广州, 粤B 深圳). A plate already registered is skipped. Returns how many were added."""
    from services.logistics import fleet

    added = 0
    for entry in read_json("vehicles.json", data_dir):
        if session.scalar(select(Vehicle.id).where(Vehicle.plate == entry["plate"])) is not None:
            continue
        hub = places.find_node(session, NodeKind(entry["hub"]), entry["county_code"])
        staff = accounts.find_user_by_phone(session, entry["staff_phone"])
        if hub is None or staff is None:
            raise LookupError(
                f"vehicle {entry['plate']}: no {entry['hub']} in {entry['county_code']} or staff"
            )
        fleet.save_vehicle(
            session,
            staff,
            hub,
            fleet.VehicleInput(
                plate=entry["plate"],
                kind=entry["kind"],
                capacity_kg=str(entry["capacity_kg"]),
                capacity_m3=str(entry["capacity_m3"]),
                shift_start=entry["shift_start"],
                shift_end=entry["shift_end"],
            ),
        )
        added += 1
    return added


def _seller(session: Session, phone: str) -> User:
    user = accounts.find_user_by_phone(session, phone)
    if user is None:
        raise LookupError(f"seller {phone} is not in demo_users.json")
    return user


def _listing(entry: dict[str, Any], category_ids: dict[str, int]) -> catalog.ListingInput:
    harvest = entry.get("harvest") or (None, None)
    return catalog.ListingInput(
        name=entry["name"],
        category_id=category_ids[entry["category"]],
        unit=Unit(entry["unit"]),
        price_fen=entry["price_fen"],
        stock=entry["stock"],
        description=entry.get("description", ""),
        net_weight_g=entry.get("net_weight_g"),
        storage_class=StorageClass(entry.get("storage_class", "ambient")),
        origin_code=entry.get("origin_code"),
        harvest_start=date.fromisoformat(harvest[0]) if harvest[0] else None,
        harvest_end=date.fromisoformat(harvest[1]) if harvest[1] else None,
        presale=bool(entry.get("presale", False)),
        ships_from=date.fromisoformat(entry["ships_from"]) if entry.get("ships_from") else None,
        certifications=tuple((CertificationKind(k), n) for k, n in entry.get("certifications", ())),
    )


def load_catalog(
    session: Session, data_dir: Path = DATA_DIR, *, storage: media.Storage | None = None
) -> dict[str, int]:
    """Categories, seller profiles and products (with a generated photo each), through the
    services and acting as each seller; a second run adds nothing."""
    report = {"categories": 0, "seller_profiles": 0, "products": 0, "photos": 0}
    report["categories"] = catalog.import_categories(session, read_json("categories.json", data_dir))
    category_ids = {c.slug: c.id for c in catalog.categories(session)}

    sellers: dict[str, User] = {}
    for entry in read_json("sellers.json", data_dir):
        user = sellers[entry["phone"]] = _seller(session, entry["phone"])
        if session.get(SellerProfile, user.id) is not None:
            continue
        catalog.save_seller_profile(
            session,
            user,
            shop_name=entry["shop_name"],
            division_code=entry["division_code"],
            intro=entry.get("intro", ""),
            kind=SellerKind(entry["kind"]),
        )
        report["seller_profiles"] += 1

    seeded = {
        (seller_id, key): product_id
        for seller_id, key, product_id in session.execute(
            select(Product.seller_id, Product.idempotency_key, Product.id).where(
                Product.idempotency_key.like(SEED_KEY_PREFIX + "%")
            )
        )
    }
    with_photos = set(session.scalars(select(ProductPhoto.product_id).distinct()))
    for entry in read_json("products.json", data_dir):
        seller = sellers.get(entry["seller"]) or _seller(session, entry["seller"])
        key = SEED_KEY_PREFIX + entry["key"]
        product_id = seeded.get((seller.id, key))
        if product_id is None:
            product = catalog.create_product(
                session, seller, _listing(entry, category_ids), idempotency_key=key
            )
            product_id = product.id
            report["products"] += 1
        if storage is not None and product_id not in with_photos:
            image = photos.product_image(entry["category"], entry.get("color", "#7aa03c"), entry["key"])
            media.add_photo(session, storage, seller, product_id, image)
            report["photos"] += 1
    return report


def demo_logins(data_dir: Path = DATA_DIR) -> list[tuple[str, str, str]]:
    """(role, phone, scope) for each demo user, read from the data files only."""
    names: dict[str, str] = {}
    with (data_dir / "divisions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["level"] in ("city", "county"):
                names[row["code"]] = row["name"]
    nodes = {
        (kind, entry[key]): entry["name"]
        for kind, filename, key in NODE_FILES
        for entry in read_json(filename, data_dir)
    }
    lines = []
    for entry in read_json("demo_users.json", data_dir):
        kind, division_code = _scope(entry)
        if kind is not None and division_code is not None:
            county = division_code[:6]
            scope = f"{nodes[(kind, division_code)]} ({names[county[:4]]}{names[county]})"
        elif entry.get("county_code"):
            code = entry["county_code"]
            scope = f"{names[code[:4]]}{names[code]}"
        else:
            scope = "-"
        lines.append((entry["role"], entry["phone"], scope))
    return lines


def main(argv: list[str]) -> int:
    if "--logins" in argv:
        for role, phone, scope in demo_logins():
            print(f"{role:<13} {phone}  {scope}")
        return 0
    from marketplace.config import PRODUCTION, Config
    from marketplace.db import make_engine
    from marketplace.gateways import build_media_storage, build_notification_channel, build_sms_gateway
    from seed.gateway import demo_gateway
    from seed.history import gateway_unused, load_demo
    from services.orders.pickup import PickupCodeKeys
    from services.orders.pricing import CheckoutSettings

    config = Config()
    if config.APP_ENV == PRODUCTION:
        # The demo accounts share a published password, an admin among them.
        print(
            "seed.loader loads demo accounts with a published password: it does not run in"
            " production (APP_ENV=production). Create the admin with `flask create-admin`.",
            file=sys.stderr,
        )
        return 2
    settings = vars(config)
    engine = make_engine(config.DATABASE_URL)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with demo_gateway(settings, fresh=gateway_unused(session)) as found:
                if found is None:
                    print("order history: skipped (STRIPE_API_BASE is not a localstripe on this machine)")
                report = load_demo(
                    session,
                    storage=build_media_storage(settings),
                    gateway=found.gateway if found else None,
                    settings=CheckoutSettings.from_mapping(settings),
                    pickup_keys=PickupCodeKeys.from_settings(settings),
                    wallet_url=found.url if found else None,
                    channel=build_notification_channel(settings, build_sms_gateway(settings)),
                )
            for key, value in report.items():
                print(f"{key}: {value}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
