# The two commands of the README: `make demo` and `make test`.
# The first of these that is Python 3.11 or newer (override: make PYTHON=/path/to/python3.x).
ifndef PYTHON
PYTHON := $(shell for p in python3.11 python3.12 python3.13 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; \
	done)
endif
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_ARGS ?= --devices 200 --kinds grid,battery,vehicle,machine --rate 1

.PHONY: demo test bootstrap lint typecheck unit integration screenshots clean

## Install everything a fresh machine lacks, then run the pipeline with a live summary.
demo: bootstrap
	$(BIN)/envirostream up $(DEMO_ARGS)

## Lint, format check, type check and every test (unit + integration with real services).
test: bootstrap lint typecheck
	$(BIN)/python -m pytest

bootstrap: $(STAMP)
	$(BIN)/python -c 'from streams.detect.seasonal_kernel import compile_all; compile_all()'
	$(BIN)/python -m infra.kafka fetch
	sh infra/prometheus/install.sh
	sh infra/install_mosquitto.sh
	sh infra/install_kcat.sh
	sh infra/install_chromium.sh

## The exact versions of requirements.lock (tested), then the package itself without deps.
$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer not found (tried python3.11, python3.12, python3.13, python3): install one (apt-get install python3.11 python3.11-venv) or run make PYTHON=/path/to/python3.x" >&2; exit 1; }
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "'$(PYTHON)' not found: install Python 3.11 or newer or run make PYTHON=/path/to/python3.x" >&2; exit 1; }
	$(PYTHON) -m infra.prereqs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: bootstrap
	$(BIN)/python -m pytest tests/integration tests/browser

## Regenerate docs/screenshots/{board,device}.png from a private run (headless Chromium).
screenshots: bootstrap
	$(BIN)/python -m tests.browser.screenshots

clean:
	rm -rf $(VENV) .cache .envirostream .mypy_cache .ruff_cache .pytest_cache
