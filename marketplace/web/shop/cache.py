"""A per-process cache of rendered pages and page fragments, keyed so that it is never stale.

The shop's list pages (home, category, search) are the same for every visitor with the same
language and query, and change only when the catalog does. So each worker keeps what it
rendered, and every entry's key holds the catalog's freshness (services/catalog/freshness.py):

- the catalog's version, one primary-key read per request (on PostgreSQL over a connection of
  VersionReader's own: one round trip; otherwise through the request's session). Every change
  a list shows (a listing's price, status or stock state, a listing created or edited, a
  product selling out at checkout or back on sale when a hold is released) bumps it in its own
  transaction, so the next request, in any process, misses the old entries and renders afresh;
- the last time boundary passed (campaign starts and ends registered with
  freshness.register_boundaries), so a campaign starting at 10:00:00 shows at 10:00:00 with no
  write at all.

An entry also lives at most SHOP_PAGE_CACHE_SECONDS (30 by default; 0 turns the cache off and
tests run with it off unless they turn it on), which bounds memory and what no bump covers
(the best-selling order as sales come in, a photo added, a shop renamed). The product page is
never cached. Nothing user-specific is ever put in a fragment: the header and the workspace
links are rendered for each request around it.

For an anonymous visitor with no message waiting, the whole page is the same for everyone (the
language switch carries no CSRF token, see main.set_language), so it is cached whole. Logged-in
users always get a page rendered for them around the cached fragments.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from flask import current_app, g, render_template, request, session
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import Engine

from marketplace.db import get_db, get_session
from services import browse
from services.campaigns import pricing as campaign_pricing
from services.catalog import freshness

T = TypeVar("T")
MAX_ENTRIES = 512  # about 25 KB each: a bounded ~12 MB per worker (and ~6 MB of whole pages)


class FragmentCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get_or_make(self, key: Hashable, seconds: float, make: Callable[[], T]) -> T:
        if seconds <= 0:
            return make()
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                self._data.move_to_end(key)
                return hit[1]  # type: ignore[no-any-return]
        value = make()  # outside the lock: a slow render must not stall the other threads
        with self._lock:
            self._data[key] = (now + seconds, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class VersionReader:
    """The catalog's version in one round trip, on PostgreSQL: each thread keeps its own
    autocommit connection for it (no pool checkout, no ping, no BEGIN and COMMIT around the
    read, and the statement prepared once), replaced and read again once if it was dropped.
    A cached page then costs one primary-key read over a socket, not a session's four round
    trips; the catalog_vs_hello figure of docs/benchmarks.md counts it."""

    SQL = "SELECT version FROM catalog_freshness WHERE id = 1"  # freshness.version's, as text

    def __init__(self, engine: Engine) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._local = threading.local()

    def _connection(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=0)
            self._local.conn = conn
        return conn

    def read(self) -> int:
        for attempt in (1, 2):
            try:
                row = self._connection().execute(self.SQL).fetchone()
                return int(row[0]) if row else 0
            except psycopg.OperationalError:
                self.close()  # dropped (a restart, a timeout): a new one, once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connection."""
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            conn.close()


class ShopCache:
    """One app's caches (each worker process has its own app): fragments, whole pages, the
    freshness tracker that keys them and, on PostgreSQL, the version reader."""

    def __init__(self, engine: Engine) -> None:
        self.fragments = FragmentCache()
        self.pages = FragmentCache(max_entries=256)
        self.freshness = freshness.Tracker()
        self.reader = VersionReader(engine) if engine.dialect.name == "postgresql" else None
        # name -> (freshness key, value): per_key's values, one per name.
        self.per_key: dict[str, tuple[freshness.Key, Any]] = {}

    def clear(self) -> None:
        self.fragments.clear()
        self.pages.clear()
        self.freshness.clear()
        self.per_key.clear()


def shop_cache() -> ShopCache:
    found = current_app.extensions.get("shop_cache")
    if found is None:
        found = current_app.extensions.setdefault("shop_cache", ShopCache(get_db().engine))
    return found  # type: ignore[no-any-return]


def seconds() -> float:
    return float(current_app.config["SHOP_PAGE_CACHE_SECONDS"])


def fresh_key() -> freshness.Key:
    """The catalog's freshness for this request (read once per request, on first use)."""
    if "shop_fresh_key" not in g:
        cache, db = shop_cache(), get_db()
        if cache.reader is None or db.session_factory is not db.sessionmaker:
            # SQLite, or a session lent by the tests (its transaction holds their changes)
            g.shop_fresh_key = cache.freshness.key(get_session())
        else:
            g.shop_fresh_key = cache.freshness.key_for(cache.reader.read(), get_session)
    return g.shop_fresh_key  # type: ignore[no-any-return]


def per_key(name: str, make: Callable[[], T]) -> T:
    """`make()`'s value, computed once per catalog freshness key in this process, whether or not
    the page cache is on: for what changes only with the key (every change to what `make` reads
    bumps the version, or passes a registered boundary), e.g. which campaigns run."""
    key = fresh_key()
    memo = shop_cache().per_key
    hit = memo.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]  # type: ignore[no-any-return]
    value = make()
    memo[name] = (key, value)
    return value


def running_campaigns() -> frozenset[int]:
    """The campaigns running now, known without a query between two freshness keys: with none,
    the shelf's pricing and the campaign filter cost nothing (the usual page, most days)."""
    return per_key("running_campaigns", lambda: campaign_pricing.running_campaign_ids(get_session()))


def campaign_options(selected: Any) -> list[browse.CampaignOption]:
    """The campaign filter's choices (services/browse.py campaign_options): the running ones are
    read once per freshness key; a campaign chosen but not running is looked up as it is asked."""
    running = running_campaigns()
    if running and selected in (None, ""):
        options = per_key("campaign_options", lambda: browse.campaign_options(get_session(), running=running))
        return list(options)
    return browse.campaign_options(get_session(), selected=selected, running=running)


def county_choices(category_ids: tuple[int, ...]) -> list[browse.CountyOption]:
    """A category's county filter with its counts (services/browse.py county_options), read once
    per freshness key: every change to a product's status or category bumps the version."""
    options = per_key(f"counties:{category_ids}", lambda: browse.county_options(get_session(), category_ids))
    return list(options)


def shelf_prices(products: Sequence[campaign_pricing.Priceable]) -> dict[int, campaign_pricing.ShelfPrice]:
    """The list pages' campaign prices (services/campaigns/pricing.py shelf_prices), each product's
    priced once per freshness key: what a card shows changes only with the key (a price or a
    sign-up edited, a quota sold out or back, a budget spent bump the version; a start or end is
    a boundary). Nothing at all while no campaign runs."""
    if not running_campaigns():
        return {}
    known: dict[int, campaign_pricing.ShelfPrice | None] = per_key("shelf_prices", dict)
    missing = [p for p in products if p.id not in known]
    if missing:
        found = campaign_pricing.shelf_prices(get_session(), missing)
        for product in missing:
            known[product.id] = found.get(product.id)
    return {p.id: price for p in products if (price := known.get(p.id)) is not None}


def end_read_only_transaction(exc: BaseException | None) -> None:
    """Teardown of the shop's pages: a request that only read ends its transaction with COMMIT
    instead of the ROLLBACK that closing the session sends. psycopg forgets its prepared
    statements at every ROLLBACK, so PostgreSQL would plan the list's queries again on every
    request (about 6 ms of its CPU for a category page, more than running them)."""
    session = g.get("db_session")
    if exc is not None or session is None or not session.in_transaction():
        return
    if not (session.new or session.dirty or session.deleted):
        session.commit()


def cached(name: str, args: Iterable[str], make: Callable[[], T]) -> T:
    """`make()`'s result for this fragment, language, URL path and the query arguments named
    in `args` (others do not change the page, so they must not make new entries), as fresh as
    the catalog."""
    ttl = seconds()
    if ttl <= 0:
        return make()
    key = (
        fresh_key(),
        name,
        str(get_locale()),
        request.path,
        tuple((a, request.args.get(a, "")) for a in args),
    )
    return shop_cache().fragments.get_or_make(key, ttl, make)


def render_page(template: str, make_context: Callable[[], dict[str, Any]]) -> str:
    """render_template(template, **make_context()), from the page cache for anonymous visitors.

    The context must depend only on the language and the URL (they are the cache key); a guest
    with something in the cart sees its count in the header, so theirs is rendered afresh."""
    ttl = seconds()
    personal = (
        getattr(current_user, "is_authenticated", False) or session.get("_flashes") or session.get("cart")
    )
    if ttl <= 0 or personal:
        return render_template(template, **make_context())
    key = (fresh_key(), template, str(get_locale()), request.full_path)
    return shop_cache().pages.get_or_make(key, ttl, lambda: render_template(template, **make_context()))
