# The project's front door. Each target bootstraps what it needs into .venv, so a
# fresh machine with only Python 3.11+ (and make) goes straight to work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck pytest docs docs-serve bench bench-quick bench-suite soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,redis,docs]'
	touch $(STAMP)

# The benchmark peers (the `bench` extra: nautilus_trader, cryptofeed's order_book,
# matplotlib), wheels only, about 30 s here. pytest needs them because it runs the quick
# suite as CI's smoke test; without them the suite names what is missing and runs the rest.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/meltica-trio demo --seconds 20

test: lint typecheck pytest docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict meltica_trio

pytest: $(STAMP) $(BENCH_STAMP)
	$(BIN)/pytest --cov=meltica_trio --cov-report=term --cov-fail-under=85

# The documentation site: zero warnings or it fails (mkdocs.yml sets the checks).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

bench: $(BENCH_STAMP)
	$(BIN)/python bench/bench_lifecycle.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_books.py

bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/bench_lifecycle.py --quick
	$(BIN)/python bench/bench_pipeline.py --quick
	$(BIN)/python bench/bench_books.py --quick

# The whole suite in one process, with the peers; figures, JSON and plots as in the README.
bench-suite: $(BENCH_STAMP)
	$(BIN)/meltica-trio bench --json bench/results/suite.json --plots bench/results/plots

soak: $(BENCH_STAMP)
	$(BIN)/meltica-trio soak --deliveries 10000000 --json bench/results/soak.json \
		--plot bench/results/plots/soak.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage site
