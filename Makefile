# Shuyu: `make up` runs the whole system on this machine, `make test` runs the whole suite.
# Both install what they need (Python venv, system packages, services) when it is missing.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# uv lives in its own small venv: `uv pip sync` would uninstall it from the project venv
TOOLS  := $(VENV)/tools
UV     := $(TOOLS)/bin/uv
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
DATA_DIR ?= var

.PHONY: install up down test test-fast bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	bash deploy/bootstrap/python.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || { $(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet uv==0.13.9; }
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
# the analyst client (import shuyu), editable, so tests drive the same code the image installs
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e sandbox_image/client
	rm -f $(VENV)/.installed-* && touch $@

up: install
	bash deploy/up.sh $(DATA_DIR)

down:
	bash deploy/down.sh $(DATA_DIR)

test: install
	bash deploy/bootstrap/test-deps.sh
	bash deploy/bootstrap/docker.sh
	bash deploy/bootstrap/proxy.sh
	bash deploy/bootstrap/browser.sh
	bash deploy/bootstrap/compose.sh
	$(BIN)/pytest -p no:cacheprovider

test-fast: install
	$(BIN)/pytest -p no:cacheprovider -m "not postgres and not golang and not slow and not docker"

bench: install
	$(BIN)/python -m bench

lock: install
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
