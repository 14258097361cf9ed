# make run   - serve the demos on http://127.0.0.1:8001, :8002 (the chat's sockets on :8012), :8003 (set REDIS_URL to use Redis)
# make test  - the lint stage, then every test: unit, consumer (in-memory and Redis layers), Node, browser
# make test-postgres - the shared, site and browser tests again on a throwaway Postgres instead of SQLite, about 5 minutes
# make lint  - ruff, Markdown links and anchors, missing migrations, Django's deployment checks under production settings, promtool on monitoring/
# make bench - load measurements of the three demos against their floors (bench/), about 25 minutes
# make bench-smoke - the same at small sizes, about a minute and a half (CI runs it)
# make faults - faults made for real (Redis restarts, daphne killed, slow readers, ...) against real processes, the database's on Postgres too, ~4 minutes
# make compose-test - the docker compose stack, built, started and tested with the e2e suite; then its Redis Sentinel variant, through a failover
# make copy-test - each site copied out of the repository as its README says, installed in a fresh venv and tested there
# make e2e-sharded - the e2e suite with every site on two Redis shards (REDIS_URL=a,b), about 3 minutes
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
SITES := liveblog chat sketchpad
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH

.PHONY: run test test-postgres lint promtool bench bench-smoke faults screenshots compose-test copy-test e2e-sharded install system-deps migrate clean

# The virtualenv is rebuilt whenever a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-test.txt requirements-dev.txt shared/pyproject.toml
	@echo "==> Installing pinned Python dependencies into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e ./shared
	touch $@

install: $(VENV)/.installed

# What the tests need from the system. Installed with apt when missing (as root on Debian).
system-deps:
	@missing=(); \
	command -v redis-server >/dev/null || missing+=(redis-server); \
	command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql); \
	[ -x "$(CHROMIUM_PATH)" ] || missing+=(chromium); \
	command -v node >/dev/null || missing+=(nodejs); \
	command -v ss >/dev/null || missing+=(iproute2); \
	command -v valgrind >/dev/null || missing+=(valgrind); \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "==> Installing system packages: $${missing[*]}"; \
	  if [ "$$(id -u)" != 0 ]; then echo "Not root: install $${missing[*]} and run again." >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi

# promtool (make lint) comes with Debian's prometheus package, Prometheus 2.42 as in compose.
# Only promtool is wanted: no recommended exporter, and where systemd runs, the server the
# package starts (on compose's Prometheus port, 9090) is stopped and disabled.
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then echo "Not root: install Debian's prometheus package (promtool) and run again." >&2; exit 1; fi; \
	  echo "==> Installing system packages: prometheus (for promtool)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus; fi; \
	}

migrate: install
	@for site in $(SITES); do \
	  echo "==> $$site: migrating and seeding demo content"; \
	  (cd $$site && DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input -v 0 && DJANGO_DEBUG=1 $(BIN)/python manage.py seed) || exit 1; \
	done

# Without REDIS_URL, a private redis-server (a free port, no persistence) runs among
# the processes, so the worker renders and presence spans processes as in
# production; Ctrl-C stops it with the rest. Without redis-server: in-memory.
REDIS_SERVER ?= redis-server
run: migrate
	@processes="liveblog chat sketchpad thumbnails"; \
	if [ -z "$$REDIS_URL" ]; then \
	  if command -v "$(REDIS_SERVER)" >/dev/null; then \
	    export REDIS_SERVER="$$(command -v "$(REDIS_SERVER)")"; \
	    export REDIS_PORT=$$($(BIN)/python -c 'from realtime_common.testing.servers import free_port; print(free_port())'); \
	    export REDIS_URL=redis://127.0.0.1:$$REDIS_PORT/0; \
	    processes="redis $$processes"; \
	    echo "==> A private Redis for this run at $$REDIS_URL (no persistence; Ctrl-C stops it)"; \
	  else \
	    echo "==> No redis-server found: the in-memory channel layer (each site one process, the thumbnail worker idle); make system-deps installs it"; \
	  fi; \
	fi; \
	export THUMBNAILS_METRICS_PORT=$$($(BIN)/python -c 'from realtime_common.testing.servers import free_port; print(free_port())'); \
	echo "==> Serving liveblog http://127.0.0.1:8001, chat http://127.0.0.1:8002 (its sockets on :8012), sketchpad http://127.0.0.1:8003 (Ctrl-C stops everything)"; \
	echo "==> Metrics, for the loopback only: liveblog http://127.0.0.1:8001/metrics, chat http://127.0.0.1:8002/metrics, sketchpad http://127.0.0.1:8003/metrics, thumbnails http://127.0.0.1:$$THUMBNAILS_METRICS_PORT/metrics"; \
	DJANGO_DEBUG=1 PATH="$(BIN):$$PATH" exec $(BIN)/honcho start $$processes

# Production as docs/tests.md describes it: DEBUG off, a secret key, a host name, behind
# a TLS proxy, HSTS on. check --deploy must find nothing there (--fail-level WARNING).
PRODUCTION_ENV := DJANGO_DEBUG=0 DJANGO_SECRET_KEY=lint-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-a-long-random-secret \
	DJANGO_ALLOWED_HOSTS=demo.example.com DJANGO_BEHIND_TLS_PROXY=1 DJANGO_HSTS_SECONDS=31536000 DJANGO_HSTS_INCLUDE_SUBDOMAINS=1

lint: install promtool
	@echo "==> lint: ruff check, ruff format --check"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@echo "==> links: every relative link and #anchor of the Markdown files (tools/links_check.py)"
	$(BIN)/python tools/links_check.py
	@echo "==> monitoring: promtool check config, check rules (Prometheus 2.42, as in compose)"
	promtool check config monitoring/prometheus.yml
	promtool check rules monitoring/alerts.yml
	@for site in $(SITES); do \
	  echo "==> $$site: makemigrations --check, check --deploy under production settings"; \
	  (cd $$site && DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run \
	    && $(PRODUCTION_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING) || exit 1; \
	done

# The unit and consumer tests: shared's, then each site's (in-memory and Redis layers), on
# the database TEST_DATABASE names; $(1) says which in the progress lines.
define unit_tests
@echo "==> shared: unit tests$(1)"
cd shared && $(BIN)/pytest
@for site in $(SITES); do \
  echo "==> $$site: unit and consumer tests$(1), in-memory and Redis layers"; \
  (cd $$site && $(BIN)/pytest) || exit 1; \
done
endef

test: lint system-deps
	@echo "==> tools: the link checker's tests"
	cd tools && $(BIN)/pytest
	@echo "==> bench: the bench's verdicts, options and summaries (the bench itself is make bench)"
	cd bench && $(BIN)/pytest
	$(call unit_tests)
	@echo "==> conformance: WebSocket protocol (Autobahn cases 1-7) against daphne, then uvicorn and granian (about 40 s)"
	cd conformance && $(BIN)/pytest
	@echo "==> frontend: Node tests"
	node --test frontend/tests/
	@echo "==> e2e: browser tests (Chromium, daphne, Redis)"
	cd e2e && $(BIN)/pytest

# TEST_DATABASE=postgres: each pytest session starts a Postgres of its own (a free port, a
# temporary directory, as the postgres user when root; realtime_common.testing), and the
# tests that need writers at once (concurrent_writers), skipped on SQLite, run. The Node
# and conformance tests touch no database; test_make_run.py serves `make run`'s SQLite.
test-postgres: export TEST_DATABASE := postgres
test-postgres: install system-deps
	$(call unit_tests, on Postgres)
	@echo "==> e2e: browser tests, each site's database in Postgres"
	cd e2e && $(BIN)/pytest --ignore=test_make_run.py

bench: install system-deps
	$(BIN)/python -m bench
	@echo "==> bench: sketchpad drawing delay between two browsers (two daphne processes, Redis)"
	cd e2e && $(BIN)/pytest -m bench -s -q test_sketchpad.py

bench-smoke: install system-deps
	$(BIN)/python -m bench --smoke

# Then the faults whose guarantees are the database's (marked database) again, each site's
# database in a throwaway Postgres (TEST_DATABASE=postgres, as make test-postgres).
faults: install system-deps
	@echo "==> faults: every fault, on SQLite"
	cd faults && $(BIN)/pytest -q
	@echo "==> faults: the database's faults, on Postgres"
	cd faults && TEST_DATABASE=postgres $(BIN)/pytest -q -m database

# The README's pictures, into docs/screenshots/ (the PNGs and sketchpad.gif), taken on sites of
# their own: fresh databases holding only the seeded demo content (e2e/conftest.py: demo_*).
screenshots: install system-deps
	cd e2e && E2E_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q test_screenshots.py

compose-test: install system-deps
	e2e/compose-test

# The promise that a site can be copied out as the start of another project: each site, with
# shared/ and frontend/, copied to a temporary folder outside the checkout, installed into a
# virtualenv of its own and tested there (both channel layers), by running the block of its
# README's "Copy this site out" in a clean environment (tools/copy_out.py). Not the repository's
# venv: only python3 and redis-server; pip's cache makes the installs quick after make install.
copy-test: system-deps
	$(PYTHON) tools/copy_out.py $(SITES)

# Two Redis in every site's REDIS_URL: channels-redis shards groups and channels over both,
# while the cache and the chat's presence stay on the first. Two daphne processes per site and
# the thumbnail worker, as always. test_make_run.py starts a Redis of its own: left out.
# pytest fails (exit code 5) when it collects no test.
e2e-sharded: install system-deps
	@echo "==> e2e: browser tests, every site on two Redis shards"
	cd e2e && E2E_REDIS_SHARDS=2 $(BIN)/pytest --ignore=test_make_run.py

clean:
	rm -rf $(VENV) */db.sqlite3* */staticfiles
