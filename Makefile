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

DEMO_DATA = examples/shop/data

$(DEMO_DATA)/customers.csv: examples/shop/generate.py
	$(BIN)/python examples/shop/generate.py $(DEMO_DATA)

demo: $(BIN)/.installed $(DEMO_DATA)/customers.csv
	$(BIN)/crmrules check examples/shop/shop.crm
	$(BIN)/crmrules test examples/shop/shop.crm
	$(BIN)/crmrules run examples/shop/shop.crm --data $(DEMO_DATA) --as-of 2026-06-30
	$(BIN)/crmrules profile examples/shop/shop.crm --segment coat_fans --vs dormant --data $(DEMO_DATA) --as-of 2026-06-30
	$(BIN)/crmrules campaigns list examples/shop/shop.crm --data $(DEMO_DATA) --as-of 2026-06-01
	$(BIN)/crmrules campaigns simulate examples/shop/shop.crm --data $(DEMO_DATA) --from 2026-06-01 --to 2026-06-30 --format summary
	rm -rf build/demo && mkdir -p build/demo
	$(BIN)/crmrules campaigns run examples/shop/shop.crm --data $(DEMO_DATA) --outbox build/demo/outbox.db --since 2026-06-01 --now 2026-06-30 > /dev/null
	$(BIN)/crmrules campaigns deliver --outbox build/demo/outbox.db --channels examples/shop/channels-demo.toml --data $(DEMO_DATA) --now 2026-06-30
	$(BIN)/crmrules campaigns report examples/shop/shop.crm --data $(DEMO_DATA) --outbox build/demo/outbox.db --as-of 2026-06-30 --window 14d

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_matches.py
	$(BIN)/python benchmarks/bench_sql.py
	$(BIN)/python benchmarks/bench_campaigns.py
	$(BIN)/python benchmarks/bench_delivery.py
	$(BIN)/python benchmarks/bench_report.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
