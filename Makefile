# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_ARGS ?= --devices 200 --kinds grid,battery,vehicle,machine --rate 1

.PHONY: demo test bootstrap lint typecheck unit integration clean

## Install everything a fresh machine lacks, then run the pipeline with a live summary.
demo: bootstrap
	$(BIN)/envirostream up $(DEMO_ARGS)

## Lint, format check, type check and every test (unit + integration with real services).
test: bootstrap lint typecheck
	$(BIN)/python -m pytest

bootstrap: $(STAMP)
	$(BIN)/python -m infra.kafka fetch
	sh infra/prometheus/install.sh

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 not found as '$(PYTHON)': install it (apt-get install python3.11 python3.11-venv) or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m infra.prereqs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: bootstrap
	$(BIN)/python -m pytest tests/integration

clean:
	rm -rf $(VENV) .cache .envirostream .mypy_cache .ruff_cache .pytest_cache
