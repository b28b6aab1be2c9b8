"""The app as `make run` serves it, plus /_hello: the baseline route the catalog page is compared
with, served by the same app (same hooks, session and headers) and server. Bench only.

SHOP_PAGE_CACHE_SECONDS in the environment sets the shop's fragment cache (0: off), so the bench
can measure the page both as deployed and as rendered on every request.
"""

from __future__ import annotations

import os

from wsgi import app  # the app and interpreter settings of wsgi.py, as make run serves them

if os.environ.get("SHOP_PAGE_CACHE_SECONDS"):
    app.config["SHOP_PAGE_CACHE_SECONDS"] = float(os.environ["SHOP_PAGE_CACHE_SECONDS"])


@app.get("/_hello")
def hello() -> str:
    return "Hello, world!"
