# papertide: the two commands of the README, and a few conveniences.
#   make demo   installs papertide in .venv, loads the demo corpus and serves it on 127.0.0.1:8000 (offline)
#   make test   installs papertide with its test extras in .venv and runs the test suite
#               (the browser tests need Chromium: without it they are skipped, except in CI,
#               where `make test` installs it through apt first and they must pass)
#   make chromium  installs Debian's Chromium through apt if it is missing (Playwright never downloads one)
#   make postgresql  installs Debian's PostgreSQL through apt when the tests find no server binaries
#               (pgserver from the test extra is the usual source; CI runs this before the tests,
#               whose PostgreSQL part must run there: tests/pgcluster.py)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean chromium postgresql

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CI_RUN := $(filter-out 0 false no,$(CI))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/papertide demo
	$(BIN)/papertide serve

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

postgresql: $(VENV)/.installed
	@$(BIN)/python tests/pgcluster.py || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql && \
	  $(BIN)/python tests/pgcluster.py; }

test: $(VENV)/.installed $(if $(CI_RUN),chromium postgresql)
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) build *.egg-info bench/out
