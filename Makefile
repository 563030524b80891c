# Odradek: set-up, run and test. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-all lint codegen bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Start the broker on localhost:9092 with its data in ./data.
run: $(STAMP)
	$(VENV)/bin/odradek serve --override log.dirs=$(CURDIR)/data

# The test suite that CI runs (slow-marked tests excluded).
test: $(STAMP)
	$(PY) -m pytest

# Everything, including slow-marked tests (large fuzzing budgets).
test-all: $(STAMP)
	$(PY) -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check broker protocol storage tests bench
	$(VENV)/bin/mypy

# Regenerate protocol/messages from ../shared/kafka-protocol.
codegen: $(STAMP)
	$(PY) -m protocol.codegen

bench: $(STAMP)
	$(PY) bench/protocol_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
