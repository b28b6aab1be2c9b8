"""Search latency on 10,000 and 100,000 generated products, on SQLite and on PostgreSQL.

Products are plausible Guangdong listings: real village origins from seed/data/divisions.csv,
names made of a city, county or town name, a variety and a product (增城挂绿荔枝, 大埔蜜柚 …).
Each backend gets a fresh database (a temp SQLite file; PostgreSQL `gdm_bench_search`, dropped
after), built with `alembic upgrade head`; products are bulk-inserted and indexed with
services.search.rebuild_index. A fixed mix of Chinese, full pinyin, initials and typo queries
then runs QUERY_RUNS times, each timed over matches() and the fetch of the first 20 active
products (services.search.search, a fresh session each, as a request would), in process;
suggestions for a fixed set of prefixes are timed the same way.

    python bench/_search.py            # or: from bench._search import run
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import Engine, insert, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from domain import (  # noqa: E402
    Category,
    CategoryFlow,
    Product,
    ProductStatus,
    StorageClass,
    Unit,
    clock,
)
from marketplace.db import make_engine  # noqa: E402
from services import accounts, places, search  # noqa: E402
from services.search.text import place_stem as stem  # noqa: E402

SIZES = (10_000, 100_000)
QUERY_RUNS = 400
SUGGEST_RUNS = 200
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "gdm_bench_search"
SEED_DATA = PROJECT_ROOT / "seed" / "data"

QUERIES = [
    # Chinese
    "荔枝", "金柚", "菜心", "走地鸡", "单丛茶", "农家菜心", "增城荔枝", "徐闻菠萝", "新会陈皮",
    "英德红茶", "化州橘红", "梅县", "菠萝", "红茶", "土鸡蛋", "糯米糍",
    # full pinyin, and long pinyin typed as the name goes
    "lizhi", "jinyou", "caixin", "boluo", "chenpi", "hongcha", "zoudiji", "xinhui", "zengchengg",
    "meizhoujinyou",
    # initials
    "lz", "jy", "cx", "zdj", "zcgl", "bl",
    # typos
    "lizji", "jinyuo", "chenpii", "zoudji",
]  # fmt: skip

LYCHEES = ["挂绿", "桂味", "糯米糍", "妃子笑", "白糖罂", "黑叶", ""]
PREFIXES = ["li", "liz", "荔", "jiny", "zc", "增城", "走地", "meiz", "cx", "gualvli", "增城 荔"]
# category slug, category name, product, varieties, unit, grams, price range (fen)
PRODUCTS: list[tuple[str, str, str, list[str], Unit, int, tuple[int, int]]] = [
    ("fruit", "水果", "荔枝", LYCHEES, Unit.JIN, 500, (800, 6000)),
    ("fruit", "水果", "龙眼", ["石硖", "储良", ""], Unit.JIN, 500, (600, 2000)),
    ("fruit", "水果", "金柚", ["", "红肉", "白肉"], Unit.PIECE, 1500, (800, 2500)),
    ("fruit", "水果", "蜜柚", ["红心", "三红", ""], Unit.PIECE, 1500, (900, 2500)),
    ("fruit", "水果", "沙田柚", [""], Unit.PIECE, 1200, (900, 2000)),
    ("fruit", "水果", "贡柑", ["", "德庆"], Unit.JIN, 500, (500, 1500)),
    ("fruit", "水果", "砂糖橘", [""], Unit.JIN, 500, (300, 1200)),
    ("fruit", "水果", "菠萝", ["", "巴厘", "金钻"], Unit.JIN, 500, (300, 1200)),
    ("fruit", "水果", "香蕉", ["", "粉蕉", "皇帝蕉"], Unit.JIN, 500, (300, 900)),
    ("fruit", "水果", "黄皮", ["鸡心", ""], Unit.JIN, 500, (800, 2500)),
    ("fruit", "水果", "三华李", [""], Unit.JIN, 500, (600, 1800)),
    ("fruit", "水果", "红橙", [""], Unit.JIN, 500, (500, 1500)),
    ("vegetable", "蔬菜", "菜心", ["农家", "迟", "高山", ""], Unit.JIN, 500, (300, 1200)),
    ("vegetable", "蔬菜", "芥兰", ["", "农家"], Unit.JIN, 500, (300, 1000)),
    ("vegetable", "蔬菜", "番薯", ["紫心", "红心", ""], Unit.JIN, 500, (200, 800)),
    ("vegetable", "蔬菜", "淮山", ["", "铁棍"], Unit.JIN, 500, (600, 2000)),
    ("vegetable", "蔬菜", "竹笋", ["冬", "甜", ""], Unit.JIN, 500, (500, 1500)),
    ("vegetable", "蔬菜", "梅菜", ["", "惠州"], Unit.BAG, 500, (1000, 3000)),
    ("poultry", "禽蛋", "走地鸡", ["", "阉", "散养"], Unit.PIECE, 1500, (6000, 16000)),
    ("poultry", "禽蛋", "清远鸡", [""], Unit.PIECE, 1500, (6000, 15000)),
    ("poultry", "禽蛋", "土鸡蛋", ["", "农家"], Unit.BOX, 1500, (2000, 6000)),
    ("poultry", "禽蛋", "咸鸭蛋", ["", "红心"], Unit.BOX, 1000, (2000, 5000)),
    ("tea", "茶叶", "单丛茶", ["鸭屎香", "蜜兰香", "凤凰", ""], Unit.BOX, 250, (5000, 40000)),
    ("tea", "茶叶", "红茶", ["英红九号", "", "古树"], Unit.BOX, 250, (5000, 30000)),
    ("tea", "茶叶", "陈皮", ["三年", "十年", ""], Unit.BOX, 250, (5000, 50000)),
    ("tea", "茶叶", "橘红", ["", "化州"], Unit.BOX, 250, (5000, 30000)),
    ("food", "特产", "客家娘酒", [""], Unit.PIECE, 1000, (3000, 8000)),
    ("food", "特产", "丝苗米", ["", "有机"], Unit.BAG, 5000, (3000, 9000)),
    ("food", "特产", "荔枝蜜", ["", "纯"], Unit.PIECE, 500, (3000, 9000)),
    ("food", "特产", "腊肠", ["广式", ""], Unit.JIN, 500, (3000, 8000)),
    ("goods", "农资", "复合肥", ["", "有机"], Unit.BAG, 40000, (8000, 20000)),
    ("goods", "农资", "菜籽", ["", "高产"], Unit.BAG, 100, (500, 2000)),
]  # fmt: skip
PACKS = ["", "", "", " 5斤装", " 礼盒装", " 新鲜现摘", " 产地直发"]
TEMPLATES = [
    "{town}{village}农户自家种植，{product}新鲜采摘，当天发货。",
    "来自{county}的{variety}{product}，{adj}，支持村级服务点自提。",
    "{county}特产{product}，{adj}，合作社统一分拣包装，冷链直达。",
    "{adj}的{product}，{town}老品种，产量有限，先到先得。",
]
ADJECTIVES = ["清甜多汁", "果肉细嫩", "香气浓郁", "口感爽脆", "皮薄肉厚", "肉质紧实", "绿色种植", "不打农药"]
STATUSES = [ProductStatus.ACTIVE] * 17 + [ProductStatus.PAUSED, ProductStatus.DRAFT, ProductStatus.SOLD_OUT]


def _villages() -> list[tuple[str, str, str, str, str]]:
    """(village code, village stem, town stem, county stem, city stem) of every rural village."""
    names: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    with (SEED_DATA / "divisions.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            names[row["code"]] = row["name"]
            if row["level"] == "village" and "村" in row["name"]:
                rows.append(row)
    return [
        (r["code"], stem(r["name"]), *(stem(names[r["code"][:n]]) for n in (9, 6, 4)))
        for r in rows
        if all(r["code"][:n] in names for n in (9, 6, 4))
    ]


def _products(n: int, start: int, seller_id: int, categories: dict[str, int]) -> Iterator[dict[str, Any]]:
    rnd = random.Random(20261126 + start)
    villages = _villages()
    now = clock.now()
    for _ in range(n):
        code, village, town, county, city = rnd.choice(villages)
        slug, _cat, product, varieties, unit, grams, (low, high) = rnd.choice(PRODUCTS)
        variety = rnd.choice(varieties)
        place = rnd.choices((county, town, city), weights=(5, 3, 2))[0]
        name = f"{place}{variety}{product}{rnd.choice(PACKS)}"[:60]
        description = rnd.choice(TEMPLATES).format(
            town=town,
            village=village,
            county=county,
            variety=variety,
            product=product,
            adj=rnd.choice(ADJECTIVES),
        )
        status = rnd.choice(STATUSES)
        yield {
            "seller_id": seller_id,
            "listed_by_id": seller_id,
            "category_id": categories[slug],
            "name": name,
            "description": description,
            "origin_code": code,
            "county_code": code[:6],
            "unit": unit,
            "net_weight_g": grams,
            "price_fen": rnd.randrange(low, high, 10),
            "stock": rnd.randrange(0, 500),
            "storage_class": StorageClass.AMBIENT,
            "status": status,
            "sales_count": rnd.randrange(0, 2000),
            "presale": False,
            "created_at": now,
            "updated_at": now,
            "published_at": now if status != ProductStatus.DRAFT else None,
        }


def _prepare(url: str) -> tuple[Engine, int, dict[str, int]]:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
    engine = make_engine(url)
    with Session(engine) as session:
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
        seller = accounts.create_user(
            session, phone="13900000000", password="bench-2026", display_name="基准卖家"
        )
        categories: dict[str, int] = {}
        for slug, name, *_ in PRODUCTS:
            if slug not in categories:
                cat = Category(slug=slug, name=name, name_en=slug, flow=CategoryFlow.FARM)
                session.add(cat)
                session.flush()
                categories[slug] = cat.id
        session.commit()
        return engine, seller.id, categories


def _grow(engine: Engine, count: int, target: int, seller_id: int, categories: dict[str, int]) -> float:
    """Insert products up to `target`, rebuild the index; returns the seconds the load took."""
    started = time.perf_counter()
    with Session(engine) as session:
        batch: list[dict[str, Any]] = []
        for row in _products(target - count, count, seller_id, categories):
            batch.append(row)
            if len(batch) == 5000:
                session.execute(insert(Product), batch)
                batch.clear()
        if batch:
            session.execute(insert(Product), batch)
        session.commit()
        search.rebuild_index(session)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _time_queries(engine: Engine) -> tuple[float, float, dict[str, int]]:
    hits: dict[str, int] = {}
    for q in QUERIES:  # warm up: jieba, caches, the database's pages
        with Session(engine) as session:
            hits[q] = len(search.search(session, q, 20).hits)
    samples = []
    for i in range(QUERY_RUNS):
        q = QUERIES[i % len(QUERIES)]
        with Session(engine) as session:
            started = time.perf_counter()
            search.search(session, q, 20)
            samples.append((time.perf_counter() - started) * 1000)
    return (*_percentiles(samples), hits)


def _time_suggestions(engine: Engine) -> float:
    samples = []
    for i in range(SUGGEST_RUNS):
        with Session(engine) as session:
            started = time.perf_counter()
            search.suggest(session, PREFIXES[i % len(PREFIXES)])
            samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)[1]


def _bench_backend(name: str, url: str) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    engine, seller_id, categories = _prepare(url)
    try:
        count = 0
        p95s = {}
        for size in SIZES:
            seconds = _grow(engine, count, size, seller_id, categories)
            count = size
            p50, p95, hits = _time_queries(engine)
            p95s[size] = p95
            lines += [
                (f"search_index_build_s_{name}_{size}", f"{seconds:.1f}"),
                (f"search_p50_ms_{name}_{size}", f"{p50:.2f}"),
                (f"search_p95_ms_{name}_{size}", f"{p95:.2f}"),
                (f"suggest_p95_ms_{name}_{size}", f"{_time_suggestions(engine):.2f}"),
            ]
            if size == SIZES[-1]:
                empty = [q for q, n in hits.items() if n == 0]
                lines.append((f"search_queries_without_results_{name}", ",".join(empty) or "none"))
        lines.append((f"search_p95_ms_{name}", f"{p95s[SIZES[-1]]:.2f}"))
        lines.append((f"search_p95_growth_ratio_{name}", f"{p95s[SIZES[-1]] / p95s[SIZES[0]]:.2f}"))
    finally:
        engine.dispose()
    return lines


def _admin(sql: str) -> None:
    engine = make_engine(PG_ADMIN_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(sql))
    engine.dispose()


def run() -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        lines += _bench_backend("sqlite", f"sqlite:///{tmp}/bench_search.db")
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    try:
        lines += _bench_backend("postgresql", PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    return lines


if __name__ == "__main__":
    for key, value in run():
        print(f"{key} {value}", flush=True)
