# rust_python_benchmark: `make reproduce` builds, runs and reports; `make test` tests.
SHELL := /bin/bash
PYTHON ?= python3
HARNESS ?= $(PYTHON) -m harness.cli
# Cores pinned for each benchmark container: 2 where the host has them.
CPUS ?= $(shell n=$$(nproc); if [ $$n -ge 2 ]; then echo 2; else echo 1; fi)
PROFILE ?= default
# Build stages trust this CA bundle too (TLS-intercepting proxies); empty = none.
EXTRA_CA ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
BUILD_FLAGS = $(if $(EXTRA_CA),--extra-ca $(EXTRA_CA),)

.DEFAULT_GOAL := help
.PHONY: help install build run report reproduce experiments test test-unit test-docker lint clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## Install the harness and its dev tools into the current Python
	$(PYTHON) -m pip install -q -c constraints.txt -e '.[dev]'

build: ## Build the Debian base and the pinned toolchain images
	$(HARNESS) build $(BUILD_FLAGS)

run: ## Run the suite pinned to CPUS cores (writes results/<host>/<run-id>/)
	$(HARNESS) run --cpus $(CPUS) --profile $(PROFILE)

report: ## Write summary.csv, report.md and report.html into the latest bundle
	$(HARNESS) report

reproduce: build ## Build, run and report; prints where the report is
	@bundle=$$($(HARNESS) run --cpus $(CPUS) --profile $(PROFILE)) && \
	  $(HARNESS) report "$$bundle" && \
	  echo "Report: $$bundle/report.html (and report.md)"

experiments: build ## Check the protocol here: A/A, stability, pinning, container cost (~20 min)
	for e in aa stability pinning overhead; do experiments/$$e.sh || exit 1; done

test: lint test-unit test-docker ## Lint, unit tests, then integration tests on the real engine

test-unit: ## Unit tests only (no Docker)
	$(PYTHON) -m pytest -m "not docker" -q
	cd rust && cargo test --locked -q

test-docker: ## Integration tests: build real images, run a quick suite, check bundle and reports
	$(PYTHON) -m pytest -m docker -q

lint: ## ruff and mypy on harness/; cargo fmt and clippy on rust/
	$(PYTHON) -m ruff check harness tests
	$(PYTHON) -m ruff format --check harness tests
	$(PYTHON) -m mypy harness
	cd rust && cargo fmt --check && cargo clippy --all-targets --locked -q -- -D warnings

clean: ## Remove the kit's containers and dangling images (results stay)
	$(HARNESS) clean
