"""What the whole pipeline costs, next to raw trio doing the same fan-out by hand.

A thin wrapper: the benchmarks live in ``meltica_trio.benchmarks`` (its ``_data_plane``
module documents the method), so ``meltica-trio bench`` runs the same code. Run with
``.venv/bin/python bench/bench_pipeline.py [--quick] [--only NAME]``; it writes
``bench/results/pipeline.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from meltica_trio.benchmarks import pipeline_main

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"

if __name__ == "__main__":
    sys.exit(pipeline_main(default_json=RESULTS))
