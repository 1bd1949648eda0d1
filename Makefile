# `make demo` sets up .venv and runs the demo; `make test` runs the whole test suite.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,spark]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/crmrules check examples/shop.crm
	$(BIN)/crmrules test examples/shop.crm
	$(BIN)/crmrules eval examples/shop.crm --segment big_coat_buyers --customer examples/customers.json --as-of 2026-06-30

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_matches.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
