# edaml: `make demo` runs the whole loop, `make test` runs every test. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv from the venv (installed there on first use) or, when the machine has one, from PATH.
# Chosen by the shell when the line runs: make expands a recipe before it runs its first line.
UV = $$(test -x $(BIN)/uv && echo $(BIN)/uv || echo uv)

.PHONY: install postgres-check demo test test-unit lint bench stack-up stack-down clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "edaml needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || command -v uv >/dev/null || $(BIN)/python -m pip install -q uv
	$(UV) pip install -q --python $(BIN)/python -r requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	@$(MAKE) --no-print-directory postgres-check
	@touch $(STAMP)

# The stack's production profile (and its tests) runs PostgreSQL from the machine's server
# binaries: installed with apt where we are root on Debian, otherwise a note says what to do.
postgres-check:
	@$(BIN)/python -c 'from edaml.postgres import missing_tools as m; raise SystemExit(bool(m()))' \
	|| { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	       echo "installing PostgreSQL's server (apt-get install postgresql)"; \
	       apt-get install -y -q postgresql >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }; \
	     else \
	       echo "note: PostgreSQL's server (initdb, postgres) was not found: the production profile and its tests need it; install Debian's postgresql package or put its bin folder on PATH"; \
	     fi; }

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	$(UV) pip compile -q pyproject.toml --extra dev -o requirements.lock --python-version 3.11

demo: install
	$(BIN)/edaml demo

test: install
	$(BIN)/python -m pytest -q --durations=25

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	# The layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
	$(BIN)/lint-imports
	# The code location loads as `dg dev` and as workspace.yaml load it (both ways, no servers).
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/dg check defs
	$(BIN)/dagster definitions validate -w workspace.yaml

# Every bench in quick mode (sizes that keep the whole run under 20 minutes on 2 shared cores);
# EDAML_BENCH_FULL=1 make bench for the full sizes. Each script rewrites its own ## section of
# bench/RESULTS.md (bench/_harness.py).
bench: install
	@start=$$(date +%s); for b in bench/bench_*.py; do echo "== $$b"; \
	  EDAML_BENCH_QUICK=1 $(BIN)/python $$b || exit 1; done; \
	  echo "make bench: $$(( $$(date +%s) - start )) s"

stack-up: install
	$(BIN)/edaml stack up

stack-down:
	$(BIN)/edaml stack down

clean:
	-$(BIN)/edaml stack down
	rm -rf .edaml
