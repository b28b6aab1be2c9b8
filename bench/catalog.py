"""The catalog issue's figures, measured in one run (`make bench B=catalog`):

- catalog_vs_hello_ratio: the category page's throughput under gunicorn (2 workers, PostgreSQL,
  10,000 products) over a hello-world route of the same app and server (target >= 0.5), with
  each run's requests/s, p99 latency and the load generator's (wrk's) CPU share;
- catalog_uncached_vs_hello_ratio: the same page rendered on every request (the page cache
  off) over hello-world (issue 13's target: >= 0.1);
- campaign_catalog_ratio: the uncached page while a campaign runs over 40 of its products (every
  card priced by the engine, a 满减 badge) over the same page with the campaign cancelled, in
  alternating rounds on one server, the median of the rounds' ratios (target >= 0.8);
- html_gzip_kb_max and page_gzip_kb_max: gzipped HTML (target <= 14 KB) and HTML + CSS + JS
  (target <= 30 KB) of the home, category, search results and product pages, first visit,
  without product photos, with the value of each page;
- search_p95_ms_postgresql and search_p95_ms_sqlite on 100,000 products (target <= 30 ms) and
  how p95 grows from 10,000, from bench/_search.py when it is there.

Every figure is printed on its own line as `name: value`. See docs/benchmarks.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import _pages  # noqa: E402


def _search_figures() -> list[tuple[str, object]]:
    path = HERE / "_search.py"
    if not path.exists():
        return [("search", "bench/_search.py is missing")]
    spec = importlib.util.spec_from_file_location("bench_search", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.run())


def main() -> int:
    for key, value in _pages.run():
        print(f"{key}: {value}", flush=True)
    for key, value in _search_figures():
        print(f"{key}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
