# The two commands a new user runs: `make demo` and `make test`. Everything else is a step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
EMULATOR_PORT ?= 8001
# extra emulator flags for the demo, e.g. EMULATOR_ARGS="--latency-ms 300 --jitter-ms 100"
# (a far-away instance: watch a run's progress bar move on the Sync page)
EMULATOR_ARGS ?=
LADDER := fixtures/ladders/ai-ml-engineer.yaml
# Debian packages the suite needs: Chromium for the browser tests; Pango, HarfBuzz and a
# font for WeasyPrint's PDF exports; poppler-utils (pdftotext) to read those PDFs back;
# pg_dump/pg_restore of the server's major version (15) for manage.py backup/restore on
# PostgreSQL (tests/backup runs them in CI's PostgreSQL pass).
DEBIAN_PACKAGES := chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
	poppler-utils postgresql-client-15

.PHONY: install browser test demo serve lint check-deploy clean bench-sync bench-evidence bench-packets \
	bench-markdown bench-ladder-publish bench-suggestions bench-web

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium, never Playwright's own browser download (this kind of machine has no
# route to it). Installs only what is missing; as root directly, otherwise with sudo.
browser:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The whole suite on the embedded default (SQLite, eager Celery). pytest's exit code 5
# ("no tests ran") is a failure like any other non-zero code.
test: install browser
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

# The demo: SQLite, the ladder, a demo org, the ServiceNow emulator with a dataset for that
# org, a first sync, then the app with a Celery worker (and its beat: schedules, reclaim)
# beside it on the embedded broker, a SQLite file (var/celery-broker.sqlite). Ctrl-C stops
# the app, the worker and the emulator.
demo: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py load_ladder $(LADDER) --publish
	$(BIN)/python manage.py demo_org > /dev/null
	$(BIN)/python manage.py servicenow_demo --write-dataset var/demo-servicenow.json
	@set -e; \
	$(BIN)/python -m servicenow.emulator --port $(EMULATOR_PORT) --dataset var/demo-servicenow.json \
	  $(EMULATOR_ARGS) > var/emulator.log 2>&1 & emu=$$!; \
	worker=""; web=""; \
	trap 'kill $$emu $$worker $$web 2>/dev/null || true; wait $$worker $$web 2>/dev/null || true' \
	  EXIT INT TERM; \
	for i in $$(seq 100); do grep -q listening var/emulator.log && break; sleep 0.1; done; \
	grep -q listening var/emulator.log || { cat var/emulator.log; exit 1; }; \
	echo "ServiceNow emulator on http://127.0.0.1:$(EMULATOR_PORT) (log: var/emulator.log)"; \
	$(BIN)/python manage.py servicenow_demo --url http://127.0.0.1:$(EMULATOR_PORT); \
	LOG_LEVEL=WARNING $(BIN)/python manage.py servicenow_sync --all; \
	$(BIN)/python manage.py demo_evidence; \
	$(BIN)/python manage.py demo_packets; \
	$(BIN)/python manage.py demo_org; \
	$(BIN)/python -m celery -A ladder_tracker worker --beat --concurrency=2 --loglevel=INFO \
	  > var/worker.log 2>&1 & worker=$$!; \
	for i in $$(seq 300); do grep -q "ready\." var/worker.log && break; \
	  kill -0 $$worker 2>/dev/null || { cat var/worker.log; exit 1; }; sleep 0.1; done; \
	echo "Celery worker + beat on var/celery-broker.sqlite (log: var/worker.log)"; \
	echo ""; \
	echo "ladder_tracker: http://$(HOST):$(PORT)/  (Ctrl-C stops it, the worker and the emulator)"; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload & web=$$!; \
	wait $$web

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-deploy: install
	DJANGO_SETTINGS_MODULE=ladder_tracker.settings.production \
	SECRET_KEY=$${SECRET_KEY:-check-deploy-only-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFG} \
	SECRETS_ENCRYPTION_KEY=$${SECRETS_ENCRYPTION_KEY:-check-deploy-only} \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-ladder.example.com} \
	SITE_URL=$${SITE_URL:-https://ladder.example.com} \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

# Sync benchmark (benchmarks/sync.py): the emulator with 10k and 100k incidents, a full sync into
# SQLite and PostgreSQL against the floor and PySNC. PySNC goes into a venv of its own
# (var/bench-venv), never into .venv. BENCH_ARGS passes flags, e.g. BENCH_ARGS=--skip-postgres.
bench-evidence: install
	$(BIN)/python benchmarks/evidence.py $(BENCH_ARGS)

# Packet benchmark (benchmarks/packets.py): detail and coverage of a 2,000-item packet against
# GET people/me/ in the same run, and the PDF export of a 200-item packet (seconds, peak RSS).
bench-packets: install
	$(BIN)/python benchmarks/packets.py $(BENCH_ARGS)

# Web tier under concurrency (benchmarks/web.py): gunicorn (gunicorn.conf.py, two worker/thread
# configurations side by side) + PostgreSQL (a fresh lt_web_bench database, seeded, dropped
# afterwards), wrk at 16 and 64 clients against five endpoints; p50/p95/p99, errors, p95 over
# the trivial endpoint's. wrk is Debian's package, installed here when missing. ~5 minutes.
bench-web: install
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python benchmarks/web.py $(BENCH_ARGS)

# Markdown benchmark (benchmarks/markdown.py): each pathological case at the field limit through
# the renderer, median ms per case and the max (target < 100 ms). BENCH_ARGS=--peers adds
# Python-Markdown and markdown-it-py on the same inputs.
bench-markdown: install
	$(BIN)/python benchmarks/markdown.py $(BENCH_ARGS)

# Ladder publish benchmark (benchmarks/ladder_publish.py): publishing v2 over 20,000 evidence
# links, each moved to the new version by code (seconds, queries).
bench-ladder-publish: install
	$(BIN)/python benchmarks/ladder_publish.py $(BENCH_ARGS)

# Suggestions benchmark (benchmarks/suggestions.py): top-1/top-3 of learned vs rules-only vs text
# similarity on held-out items of a generated corpus (20,000 labelled), training time and
# per-item latency, with PASS/MISS against the targets.
bench-suggestions: install
	$(BIN)/python -m benchmarks.suggestions $(BENCH_ARGS)

bench-sync: install
	test -x var/bench-venv/bin/python || $(PYTHON) -m venv var/bench-venv
	var/bench-venv/bin/python -c 'import pysnc' 2>/dev/null || var/bench-venv/bin/python -m pip install -q pysnc
	$(BIN)/python -m benchmarks.sync $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
