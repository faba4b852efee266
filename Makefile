# meshwatch developer and user entry points. Everything runs from a local virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out
# Optional extras the test suite needs; each integration's extra is added here.
EXTRAS ?= dev,genai-producers,snapshot,agent-hypervisor

.PHONY: help up down status generate check demo test test-unit test-rules test-docs test-integration lint bench system-deps clean

help:
	@echo "make up        start the stack (Docker compose, or native Prometheus+Alertmanager+demo)"
	@echo "make down      stop what 'make up' started"
	@echo "make status    readiness of each running component"
	@echo "make test      run the test suite (unit, rules, docs, integration; containers where Docker runs)"
	@echo "make test-unit the unit tier alone: fast, in-process (no process, no network)"
	@echo "make test-rules / test-docs / test-integration   one other tier"
	@echo "make lint      ruff and mypy --strict"
	@echo "make bench     benchmarks, printed as ratios against baselines measured in the same run"
	@echo "make generate  write rules, dashboards and stack files to ./$(OUT)"

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

system-deps:
	@scripts/system-deps.sh

# The native binaries are needed only when no Docker engine answers (native mode).
up: $(BIN)/.installed
	@echo "meshwatch: virtualenv $(VENV) has meshwatch installed"
	@scripts/system-deps.sh --unless-docker
	$(BIN)/meshwatch up

down: $(BIN)/.installed
	$(BIN)/meshwatch down

status: $(BIN)/.installed
	$(BIN)/meshwatch status

generate: $(BIN)/.installed
	$(BIN)/meshwatch generate --out $(OUT)

check: generate system-deps
	$(BIN)/meshwatch check $(OUT)

demo: $(BIN)/.installed
	$(BIN)/meshwatch demo --metrics-port 8000

test: $(BIN)/.installed system-deps
	$(BIN)/python -m pytest

# One tier each; together they are `make test` (tests/unit/conftest.py keeps the unit tier
# process- and network-free, see "Test tiers" in docs/architecture.md).
test-unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests/unit

test-rules: $(BIN)/.installed system-deps
	$(BIN)/python -m pytest tests/rules

test-docs: $(BIN)/.installed system-deps
	$(BIN)/python -m pytest tests/docs

test-integration: $(BIN)/.installed system-deps
	$(BIN)/python -m pytest tests/integration

lint: $(BIN)/.installed
	$(BIN)/ruff check meshwatch tests benchmarks
	$(BIN)/ruff format --check meshwatch tests benchmarks
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
