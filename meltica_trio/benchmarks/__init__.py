"""The benchmark suite: meltica-trio against raw trio, nautilus_trader and cryptofeed.

``meltica-trio bench`` runs every family in one process on the same inputs and prints a
table, writes JSON and PNG plots; ``meltica-trio soak`` runs a sustained load and judges
memory growth after warm-up. The ``bench/`` scripts run single families through the
``*_main`` functions here. Peers come from the ``bench`` extra; a missing one is reported
and its cases are left out.
"""

from __future__ import annotations

from meltica_trio.benchmarks._books import main as books_main
from meltica_trio.benchmarks._commands import (
    add_bench_arguments,
    add_soak_arguments,
    run_bench_command,
    run_soak_command,
)
from meltica_trio.benchmarks._data_plane import main as pipeline_main
from meltica_trio.benchmarks._lifecycle import main as lifecycle_main
from meltica_trio.benchmarks._soak import SoakSample, SoakVerdict, run_soak
from meltica_trio.benchmarks._suite import FAMILIES, SuiteConfig, run_suite

__all__ = [
    "FAMILIES",
    "SoakSample",
    "SoakVerdict",
    "SuiteConfig",
    "add_bench_arguments",
    "add_soak_arguments",
    "books_main",
    "lifecycle_main",
    "pipeline_main",
    "run_bench_command",
    "run_soak",
    "run_soak_command",
    "run_suite",
]
