"""A small per-process cache of rendered pages and page fragments, for a few seconds.

The shop's list pages (home, category, search) are the same for every visitor with the same
language and query, and change only when a listing does. Rendering one costs a dozen queries and
20 cards of template work (~15 ms); serving it again from memory costs a dictionary lookup. So
each worker keeps what it rendered for SHOP_PAGE_CACHE_SECONDS (30 by default, 0 turns it off,
and tests run with it off): a new listing or price shows on the lists within that time, and at
once on the product page, which is never cached. Nothing user-specific is ever put in a
fragment: the header and the workspace links are rendered for each request around it.

For an anonymous visitor with no message waiting, the whole page is the same for everyone (the
language switch carries no CSRF token, see main.set_language), so it is cached whole. Logged-in
users always get a page rendered for them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from flask import current_app, render_template, request, session
from flask_babel import get_locale
from flask_login import current_user

T = TypeVar("T")
MAX_ENTRIES = 512  # about 25 KB each: a bounded ~12 MB per worker


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


fragments = FragmentCache()
pages = FragmentCache(max_entries=256)


def seconds() -> float:
    return float(current_app.config["SHOP_PAGE_CACHE_SECONDS"])


def cached(name: str, args: Iterable[str], make: Callable[[], T]) -> T:
    """`make()`'s result for this fragment, language, URL path and the query arguments named
    in `args` (others do not change the page, so they must not make new entries)."""
    key = (
        name,
        str(get_locale()),
        request.path,
        tuple((a, request.args.get(a, "")) for a in args),
    )
    return fragments.get_or_make(key, seconds(), make)


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
    key = (template, str(get_locale()), request.full_path)
    return pages.get_or_make(key, ttl, lambda: render_template(template, **make_context()))
