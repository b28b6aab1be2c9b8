"""A per-process cache of rendered pages and page fragments, keyed so that it is never stale.

The shop's list pages (home, category, search) are the same for every visitor with the same
language and query, and change only when the catalog does. So each worker keeps what it
rendered, and every entry's key holds the catalog's freshness (services/catalog/freshness.py):

- the catalog's version, one primary-key read per request: every change a list shows (a
  listing's price, status or stock state, a listing created or edited, a product selling out at
  checkout or back on sale when a hold is released) bumps it in its own transaction, so the
  next request, in any process, misses the old entries and renders afresh;
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
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from flask import current_app, g, render_template, request, session
from flask_babel import get_locale
from flask_login import current_user

from marketplace.db import get_session
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


class ShopCache:
    """One app's caches (each worker process has its own app): fragments, whole pages, and the
    freshness tracker that keys them."""

    def __init__(self) -> None:
        self.fragments = FragmentCache()
        self.pages = FragmentCache(max_entries=256)
        self.freshness = freshness.Tracker()

    def clear(self) -> None:
        self.fragments.clear()
        self.pages.clear()
        self.freshness.clear()


def shop_cache() -> ShopCache:
    found = current_app.extensions.get("shop_cache")
    if found is None:
        found = current_app.extensions.setdefault("shop_cache", ShopCache())
    return found  # type: ignore[no-any-return]


def seconds() -> float:
    return float(current_app.config["SHOP_PAGE_CACHE_SECONDS"])


def fresh_key() -> freshness.Key:
    """The catalog's freshness for this request (read once per request, on first use)."""
    if "shop_fresh_key" not in g:
        g.shop_fresh_key = shop_cache().freshness.key(get_session())
    return g.shop_fresh_key  # type: ignore[no-any-return]


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
