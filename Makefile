# `make run`: set up and serve on 127.0.0.1:8000 (SQLite in ./instance).
# `make test`: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import portal" && touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import portal, pytest, playwright" && touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/portal init
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The whole suite, then the OAuth and API suites again with JWT access tokens.
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	ACCESS_TOKEN_FORMAT=jwt $(BIN)/python -m pytest -p no:cacheprovider tests/oauth tests/api tests/test_jwt_tokens.py $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
