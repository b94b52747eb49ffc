# Topdown: the single entry point. `make run` starts the site, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The real services the test suite runs against (started by scripts/services.sh if down).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/topdown
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: help run test lint format bench services system-deps gpu-check clean

help:
	@echo "make run     set up (venv, migrations, demo course) and start web + worker + beat"
	@echo "make test    lint and run the whole test suite against PostgreSQL and Redis"
	@echo "make lint    ruff check, ruff format --check and mypy"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make bench   run the benchmarks in benchmarks/ (slow)"
	@echo "make gpu-check  on a GPU machine: the sandbox on CUDA and its containment checks"

# The venv is rebuilt when a requirements file changes; the stamp records what was installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $(VENV)/.base-installed $@

run: $(VENV)/.base-installed
	@mkdir -p var/static
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_load
	$(BIN)/python manage.py baselines_run --now
	@echo ""
	@echo "  Topdown is starting at http://$(HOST):$(PORT)/"
	@echo "  Demo logins: student / topdown-demo    instructor / topdown-demo"
	@echo "  Ctrl-C stops the web server, the worker and beat together."
	@echo ""
	HOST=$(HOST) PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile 2>&1 || true

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

services:
	@bash scripts/services.sh

# Debian packages the tests need: Chromium for the browser tests, bubblewrap for the sandbox.
system-deps:
	@command -v chromium >/dev/null && command -v bwrap >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium bubblewrap >/dev/null)

test: $(VENV)/.dev-installed services system-deps lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

# The grader benchmark trains a small CNN: it needs the worker requirements (torch).
$(VENV)/.worker-installed: requirements/base.txt requirements/worker.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/worker.txt
	touch $@

BENCHMARKS := web grader live_latency pages forum burst faults

bench: $(VENV)/.dev-installed $(VENV)/.worker-installed services system-deps
	@worst=0; for name in $(BENCHMARKS); do \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python benchmarks/$$name.py; \
		status=$$?; [ $$status -gt $$worst ] && worst=$$status; \
	done; exit $$worst

# On a GPU machine: the sandbox on CUDA with the MNIST CNN, and the GPU containment checks.
# Uses that machine's python3 (with numpy and torch); needs bubblewrap for the real sandbox.
gpu-check:
	python3 scripts/gpu_check.py

clean:
	rm -rf var test-artifacts .pytest_cache .ruff_cache
