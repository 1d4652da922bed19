"""What keeping a venue book costs: per Binance diff, per OKX update with its checksum.

A thin wrapper: the benchmark lives in ``meltica_trio.benchmarks`` (its ``_books``
module documents the method), so ``meltica-trio bench`` runs the same code. Run with
``.venv/bin/python bench/bench_books.py [--quick]``; it writes ``bench/results/books.json``
and exits 1 when the OKX update goal is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from meltica_trio.benchmarks import books_main

RESULTS = Path(__file__).resolve().parent / "results" / "books.json"

if __name__ == "__main__":
    sys.exit(books_main(default_json=RESULTS))
