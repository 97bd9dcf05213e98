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
PIP_INSTALL ?= $(PYTHON) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
# True when PYTHON has the kit installed and can import the harness and its dev tools.
HAS_HARNESS = $(PYTHON) -c 'import importlib.metadata as m; m.version("rust-python-benchmark"); \
	import harness, typer, docker, pytest, ruff, mypy'
# When the last install was made: a newer pyproject.toml or constraints.txt installs again.
STAMP ?= build/.installed

.DEFAULT_GOAL := help
.PHONY: help install installed build run report reproduce experiments test test-unit test-browser \
	test-docker \
	lint clean lock

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## Install the harness and its dev tools into the current Python
	$(PIP_INSTALL)
	@mkdir -p $(dir $(STAMP)) && touch $(STAMP)

# Every target that runs the harness or its tools depends on this, so a fresh clone works
# without `make install`; once installed, nothing is installed again until the dependencies
# change (or PYTHON lacks them, e.g. another virtualenv).
installed: ## Install the harness and its dev tools if this Python lacks them
	@if ! $(HAS_HARNESS) 2>/dev/null || [ ! -e $(STAMP) ] \
	  || [ pyproject.toml -nt $(STAMP) ] || [ constraints.txt -nt $(STAMP) ]; then \
	  echo "Installing the harness and its dev tools into $(PYTHON) (make install)"; \
	  $(PIP_INSTALL) && mkdir -p $(dir $(STAMP)) && touch $(STAMP); \
	fi

build: installed ## Build the Debian base and the pinned toolchain images
	$(HARNESS) build $(BUILD_FLAGS)

run: installed ## Run the suite pinned to CPUS cores (writes results/<host>/<run-id>/)
	$(HARNESS) run --cpus $(CPUS) --profile $(PROFILE)

report: installed ## Write summary.csv, report.md and report.html into the latest bundle
	$(HARNESS) report

lock: installed ## Pin the Debian archive's current versions into the suite; regenerate python/requirements.lock
	$(HARNESS) lock $(BUILD_FLAGS)

reproduce: build ## Build, run and report; prints where the report is
	@bundle=$$($(HARNESS) run --cpus $(CPUS) --profile $(PROFILE)) && \
	  $(HARNESS) report "$$bundle" && \
	  echo "Report: $$bundle/report.html (and report.md)"

experiments: build ## Check the protocol here: A/A, stability, pinning, container cost (~20 min)
	for e in aa stability pinning overhead; do experiments/$$e.sh || exit 1; done

test: lint test-unit test-browser test-docker ## Lint, unit tests, browser, then integration tests on the real engine

test-unit: installed ## Unit tests only (no Docker, no browser)
	$(PYTHON) -m pytest -m "not docker and not browser" -q
	cd rust && cargo test --locked -q
	cd rust/runner && cargo test --locked -q

test-browser: installed ## Reports and compare pages in headless Chromium (chromium, chromium-driver)
	$(PYTHON) -m pytest -m browser -q

test-docker: installed ## Integration tests: build real images, run a quick suite, check bundle and reports
	$(PYTHON) -m pytest -m docker -q

lint: installed ## ruff and mypy on harness/; cargo fmt and clippy on rust/
	$(PYTHON) -m ruff check harness tests
	$(PYTHON) -m ruff format --check harness tests
	$(PYTHON) -m mypy harness
	cd rust && cargo fmt --check && cargo clippy --all-targets --locked -q -- -D warnings
	cd rust/runner && cargo fmt --check && cargo clippy --all-targets --locked -q -- -D warnings

clean: installed ## Remove the kit's containers and dangling images (results stay)
	$(HARNESS) clean
