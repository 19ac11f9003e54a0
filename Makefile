# papertide: the two commands of the README, and a few conveniences.
#   make demo   installs papertide in .venv, loads the demo corpus and serves it on 127.0.0.1:8000 (offline)
#   make test   installs papertide with its test extras in .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/papertide demo
	$(BIN)/papertide serve

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) build *.egg-info bench/out
