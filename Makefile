# Shop API. `make run` serves on the embedded defaults; `make test` runs the suite.
PYTHON ?= python3
PIP_VERSION := 26.3
VENV := .venv
BIN := $(VENV)/bin
# Runtime packages are enough to serve; the test, lint and type tools come on top.
RUNTIME_STAMP := $(VENV)/.runtime-installed
STAMP := $(VENV)/.installed
SOURCES := app core schemas store services handlers models tasks tests bench fuzz
# Schemathesis lives in a virtualenv of its own: its pytest plugins stay out of `make test`.
FUZZ_VENV := .venv-fuzz
FUZZ_STAMP := $(FUZZ_VENV)/.installed
# `make run` is a local development server: DEBUG on, and a key kept in var/ so
# tokens survive restarts. Production sets SECRET_KEY and leaves DEBUG off.
DEV_KEY_FILE := var/dev-secret-key
# Compiled gettext catalogs are build output, made from the committed .po files.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/shop.po))

.PHONY: install run test test-fast lint format messages bench fuzz clean

install: $(STAMP)

# The venv starts without pip and gets the pinned one straight away: seconds faster
# than bootstrapping the bundled pip and then upgrading it.
$(RUNTIME_STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

$(DEV_KEY_FILE):
	mkdir -p var
	$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(48))" > $(DEV_KEY_FILE)

locale/%/LC_MESSAGES/shop.mo: locale/%/LC_MESSAGES/shop.po $(RUNTIME_STAMP)
	$(BIN)/pybabel compile -i $< -o $@

run: $(RUNTIME_STAMP) $(MO_FILES) $(DEV_KEY_FILE)
	DEBUG=$${DEBUG:-true} SECRET_KEY=$${SECRET_KEY:-$$(cat $(DEV_KEY_FILE))} $(BIN)/python -m app migrate
	DEBUG=$${DEBUG:-true} SECRET_KEY=$${SECRET_KEY:-$$(cat $(DEV_KEY_FILE))} $(BIN)/python -m app seed-demo
	DEBUG=$${DEBUG:-true} SECRET_KEY=$${SECRET_KEY:-$$(cat $(DEV_KEY_FILE))} $(BIN)/python -m app serve

test: $(STAMP) $(MO_FILES)
	$(BIN)/pytest

# The unit and in-process tier: no slow tests, no real processes, no browser.
test-fast: $(STAMP) $(MO_FILES)
	$(BIN)/pytest -m "not slow and not subprocess and not browser"

lint: $(STAMP)
	$(BIN)/black --check $(SOURCES)
	$(BIN)/flake8 $(SOURCES)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r app core schemas store services handlers models tasks

format: $(STAMP)
	$(BIN)/black $(SOURCES)

# Extract msgids into locale/shop.pot, merge them into each language's .po, compile.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -o locale/shop.pot --no-location --omit-header .
	$(BIN)/pybabel update -i locale/shop.pot -d locale -D shop --no-fuzzy-matching --no-location
	$(BIN)/pybabel compile -d locale -D shop --statistics

bench: $(STAMP)
	$(BIN)/python -m bench

$(FUZZ_STAMP): requirements-fuzz.txt constraints-fuzz.txt
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(FUZZ_VENV)/bin/pip install --quiet -r requirements-fuzz.txt -c constraints-fuzz.txt
	touch $(FUZZ_STAMP)

# The running service against its OpenAPI document (fuzz/__main__.py); not part of `test`.
fuzz: $(STAMP) $(MO_FILES) $(FUZZ_STAMP)
	$(BIN)/python -m fuzz --schemathesis $(FUZZ_VENV)/bin/st

clean:
	rm -rf $(VENV) $(FUZZ_VENV) .mypy_cache .pytest_cache
