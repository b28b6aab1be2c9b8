"""The WSGI entry point: `gunicorn wsgi:app` (make run, docs/deploy.md)."""

import os
import sys

from marketplace import create_app

# The threads of a gthread worker (`make run`, SQLite) share one GIL. Python hands it from a busy
# thread to a waiting one every 5 ms by default; with dozens of threads waiting (64 a worker) those
# forced hand-overs cost about a third of a checkout's CPU. A request lets go of the GIL at every
# database and gateway call anyway, so a longer interval only stops the hand-overs in between
# (docs/benchmarks.md, issue 13's third session). gevent workers (docs/deploy.md, for PostgreSQL)
# run one thread and are not affected.
sys.setswitchinterval(float(os.environ.get("GIL_SWITCH_INTERVAL_MS", "50")) / 1000)

app = create_app()
