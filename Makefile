# `make run`: set up and serve on 127.0.0.1:8000 (SQLite in ./instance).
# `make test`: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# --no-compile: each module is compiled when first imported instead (`make test` keeps that
# bytecode under .cache/pycache, where Python would not look for pip's copies).
PIP := $(BIN)/pip install --quiet --disable-pip-version-check --no-compile

.PHONY: run test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import portal" && touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import portal, pytest, playwright" && $(BIN)/ruff --version >/dev/null && touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# axe-core for the accessibility checks (tests/admin/test_layout_a11y.py), from the lock file.
JS_TEST_TOOLS := tests/js/node_modules/.package-lock.json
$(JS_TEST_TOOLS): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

run: install
	$(BIN)/portal init
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# pytest-xdist workers, each with its own PostgreSQL database (tests/conftest.py); the tests
# that share a server, a browser or a build run on one worker, and xdist hands those groups
# out first, in the order tests/conftest.py sorts them (--no-loadscope-reorder). On 2 cores,
# 3 workers were no faster than 2 (the suite is CPU-bound). TEST_WORKERS=0: one process.
# The main pass lists its 30 slowest steps at the end.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# ruff's lint rules first (pyproject.toml: [tool.ruff]); then the whole suite in one run (the
# tests whose outcome the access-token format can change, marked token_format, run once per
# format: tests/conftest.py).
# Compiled modules (and pytest's rewritten test modules) kept under .cache/pycache, even where
# PYTHONDONTWRITEBYTECODE is set: every gunicorn, `portal` command and xdist worker would
# compile them again, and the source tree stays free of __pycache__ folders.
test: export PYTHONDONTWRITEBYTECODE =
test: export PYTHONPYCACHEPREFIX = $(CURDIR)/.cache/pycache
test: install-dev $(JS_TEST_TOOLS)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(XDIST) --durations=30 $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache tests/js/node_modules
