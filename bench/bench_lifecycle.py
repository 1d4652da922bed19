"""What a pooled fan-out duplicate costs, next to allocating a fresh envelope.

A thin wrapper: the benchmark lives in ``meltica_trio.benchmarks`` (its ``_lifecycle``
module documents the method), so ``meltica-trio bench`` runs the same code. Run with
``make bench`` or ``.venv/bin/python bench/bench_lifecycle.py [--quick]``; it writes
``bench/results/lifecycle.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from meltica_trio.benchmarks import lifecycle_main

RESULTS = Path(__file__).resolve().parent / "results" / "lifecycle.json"

if __name__ == "__main__":
    sys.exit(lifecycle_main(default_json=RESULTS))
