# Two commands for a newcomer: `make run` and `make test`. Both set everything up from scratch.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The demo: 2,000 customers, 400 business days ending 2026-11-24 (deliveries up to 2026-11-25).
DEMO_CUSTOMERS ?= 2000
DEMO_DAYS ?= 400
DEMO_START ?= 2025-10-21
DEMO_END ?= 2026-11-24

export DAGSTER_HOME := $(CURDIR)
export LUPA_VAR_DIR ?= $(CURDIR)/var
export LUPA_DAGSTER_STORAGE ?= $(LUPA_VAR_DIR)/dagster
export LUPA_DAGSTER_COMPUTE_LOGS ?= $(LUPA_VAR_DIR)/dagster/compute_logs
export LUPA_ENV ?= demo

.PHONY: install system-packages run test test-fast lint ui demo-data clean benchmarks

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

demo-data: install
	$(BIN)/lupa demo-data --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --end $(DEMO_END) --if-missing

## make run: generate the demo landing zone, load its 400 days through Dagster, print a summary
run: demo-data
	$(BIN)/lupa campaign demo-briefs --end $(DEMO_END)
	$(BIN)/lupa backfill --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/lupa summary

## make test: lint, then the whole suite (pytest exits non-zero, 5, when it collects no tests)
test: install system-packages lint
	@mkdir -p test-artifacts
	$(BIN)/python -m pytest

## make test-fast: only tests/unit/ (rules, models, contracts, storage functions, layers, definitions
## snapshot): no Dagster run, on both cores, under a minute
test-fast: install
	$(BIN)/python -m pytest -n 2 --timeout=60 tests/unit

## make lint: ruff's formatting and lint rules (pyproject.toml [tool.ruff]); both run, either failing fails
lint: install
	@status=0; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/ruff check . || status=1; \
	exit $$status

## PostgreSQL, Chromium and Redis from Debian, for the instance-storage, webserver and Celery tests (when missing)
system-packages:
	@.ci/system-packages

## make ui: the Dagster webserver and daemon on the same instance (http://127.0.0.1:3000)
ui: install
	$(BIN)/dagster dev -m pipelines.definitions -h 127.0.0.1 -p 3000

benchmarks: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf var
