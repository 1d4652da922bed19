# The project's front door. Each target bootstraps what it needs into .venv, so a
# fresh machine with only Python 3.11+ (and make) goes straight to work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meltica-trio demo --seconds 20

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict meltica_trio

pytest: $(STAMP)
	$(BIN)/pytest --cov=meltica_trio --cov-report=term --cov-fail-under=85

bench: $(STAMP)
	$(BIN)/python bench/bench_lifecycle.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_books.py

bench-quick: $(STAMP)
	$(BIN)/python bench/bench_lifecycle.py --quick
	$(BIN)/python bench/bench_pipeline.py --quick
	$(BIN)/python bench/bench_books.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
